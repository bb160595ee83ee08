// The event trace: a bounded, structured record of what every simulated thread did, for tests,
// for replaying a failing schedule in words, and for report pictures.

/// What happened in one event.
public enum KsEventKind: Hashable, Sendable {
    /// The event's thread was created by thread `by` (0: the machine's first thread).
    case threadStart(by: Int)
    case threadEnd
    /// The event's thread was put on the event's processor, preempting thread `from` if any.
    case contextSwitch(from: Int?)
    /// The scheduler switched to the event's thread: it executes the next step (the interleaving).
    case run
    case irql(from: KIRQL, to: KIRQL)
    case acquire(KsLock)
    case release(KsLock)
    /// The event's thread started waiting on the dispatcher object at `object` (0: a delay).
    case wait(object: ULONG_PTR)
    /// The event's thread started waiting for thread `thread` to end (named by ID rather than by
    /// its KTHREAD's address, which differs from run to run, so equal seeds give equal traces).
    case waitForThread(Int)
    /// The event's thread made thread `thread` ready, ending its wait with `status`.
    case wake(thread: Int, status: NTSTATUS)
    /// The event's processor ran the DPC at `dpc` at DISPATCH_LEVEL (in the event's thread).
    case dpc(ULONG_PTR)
    /// The event's thread ran the kernel APC at `apc` (`normal`: its normal routine too).
    case apc(ULONG_PTR, normal: Bool)
    /// The event's processor ran the ISR of the KINTERRUPT at `interrupt` at DIRQL `irql`.
    case interrupt(ULONG_PTR, irql: KIRQL)
    case bugCheck(code: ULONG)
    case deadlock
}

/// One event, stamped with simulated time, the scheduling step, processor, thread and the
/// kernel call (file:line) the thread was in.
public struct KsEvent: Hashable, Sendable, CustomStringConvertible {
    /// Simulated system time in 100 ns units.
    public var time: LONGLONG
    /// Scheduling decisions made before the event.
    public var step: Int
    /// Processor number, or -1 when the thread is not on one.
    public var processor: Int
    /// Thread ID (1 is the machine's first thread).
    public var thread: Int
    public var kind: KsEventKind
    /// The kernel routine the thread was in ("start", with an empty file, before its first call).
    public var routine: String
    public var file: String
    public var line: Int

    public var description: String {
        let cpu = processor < 0 ? "-" : String(processor)
        return "\(pad(String(step), 6)) \(pad(String(time / 10), 8))us  CPU \(cpu)  thread \(pad(String(thread), 2))  "
            + "\(kindText)  \(place)"
    }

    /// Where the thread was: "ExAcquireFastMutex at file:line", or "start".
    public var place: String { file.isEmpty ? routine : "\(routine) at \(file):\(line)" }

    private var kindText: String {
        switch kind {
        case .threadStart(let by): return by == 0 ? "starts" : "started by thread \(by)"
        case .threadEnd: return "ends"
        case .contextSwitch(let from): return from.map { "switched in, preempting thread \($0)" } ?? "switched in"
        case .run: return "runs"
        case .irql(let from, let to): return "IRQL \(from) -> \(to)"
        case .acquire(let lock): return "acquires \(lock)"
        case .release(let lock): return "releases \(lock)"
        case .wait(let object): return object == 0 ? "sleeps" : "waits on \(hex(object))"
        case .waitForThread(let thread): return "waits for thread \(thread) to end"
        case .wake(let thread, let status): return "wakes thread \(thread) (status 0x\(String(UInt32(bitPattern: status), radix: 16)))"
        case .dpc(let dpc): return "runs DPC \(hex(dpc))"
        case .apc(let apc, let normal): return "runs kernel APC \(hex(apc))" + (normal ? " and its normal routine" : "")
        case .interrupt(let interrupt, let irql): return "runs the ISR of \(hex(interrupt)) at IRQL \(irql)"
        case .bugCheck(let code): return "bug check 0x\(String(code, radix: 16, uppercase: true))"
        case .deadlock: return "deadlock"
        }
    }
}

/// The events of one machine run: the last `KsTrace.capacity` of them, oldest first.
public struct KsTrace: Hashable, Sendable {
    /// How many events the trace keeps: a program that polls forever must not grow it without bound.
    public static let capacity = 8_192

    public var events: [KsEvent]
    /// Events recorded before `events[0]` and dropped.
    public var dropped: Int

    /// The last `count` switches between threads: which thread ran, on which processor, from
    /// which kernel call.
    public func interleaving(last count: Int = 30) -> [KsEvent] {
        Array(events.lazy.filter { $0.kind == .run }.suffix(count))
    }

    /// `interleaving(last:)` as a listing a learner can read next to the code.
    public func interleavingText(last count: Int = 30) -> String {
        let runs = events.filter { $0.kind == .run }
        let shown = runs.suffix(count)
        var lines = ["Interleaving (the last \(shown.count) of \(runs.count) thread switches"
            + (dropped > 0 ? " in the last \(events.count) events" : "") + "):",
            "  step     time      CPU   thread     resumes in"]
        for e in shown {
            let cpu = e.processor < 0 ? "-" : String(e.processor)
            lines.append("  \(pad(String(e.step), 6)) \(pad(String(e.time / 10), 8))us  CPU \(cpu)  thread \(pad(String(e.thread), 2))  "
                + e.place)
        }
        return lines.joined(separator: "\n") + "\n"
    }
}

private func pad(_ text: String, _ width: Int) -> String {
    text.count >= width ? text : String(repeating: " ", count: width - text.count) + text
}

/// A ring of the most recent events.
struct EventLog {
    private var buffer: [KsEvent] = []
    /// When full, the index of the oldest event.
    private var oldest = 0
    private(set) var total = 0

    mutating func append(_ event: consuming KsEvent) {
        total += 1
        if buffer.count < KsTrace.capacity {
            buffer.append(event)
        } else {
            buffer[oldest] = event
            oldest = (oldest + 1) % KsTrace.capacity
        }
    }

    mutating func reserveCapacity(_ count: Int) { buffer.reserveCapacity(min(count, KsTrace.capacity)) }

    /// Until the ring wraps, the trace shares the log's storage instead of copying it.
    var trace: KsTrace {
        KsTrace(events: oldest == 0 ? buffer : Array(buffer[oldest...] + buffer[..<oldest]), dropped: total - buffer.count)
    }
}

nonisolated(unsafe) var lastTrace = KsTrace(events: [], dropped: 0)

/// The event trace of the machine `KsRunMachine` (or the last schedule `KsExplore`) ran last.
public func KsLastTrace() -> KsTrace { lastTrace }

extension Machine {
    /// Records an event of `thread` (by default the running one) at the kernel call it is in.
    /// Lock kinds that other files add report through `lockAcquired`/`lockReleased`, which call this.
    func recordEvent(_ kind: KsEventKind, thread: SimThread? = nil) {
        guard let t = thread ?? current else { return }
        let site = t.lastCall ?? CallSite(routine: "start", file: "", line: 0)
        events.append(KsEvent(time: clock, step: steps, processor: t.processor?.number ?? -1, thread: t.id,
                              kind: kind, routine: site.routine, file: site.file, line: site.line))
    }
}
