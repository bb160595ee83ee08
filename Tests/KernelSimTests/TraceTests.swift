import XCTest
@testable import KernelSim

final class TraceTests: XCTestCase {
    private struct Entry: Equatable, CustomStringConvertible {
        var thread: Int
        var processor: Int
        var kind: KsEventKind
        var routine: String
        var line: Int
        var description: String { "thread \(thread) CPU \(processor) \(kind) \(routine):\(line)" }
    }

    func testTheEventsOfOneThreadTakingASpinLockAndAFastMutex() {
        var lock: KSPIN_LOCK = 0
        var mutex = FAST_MUTEX()
        let start = #line
        _ = KsRunMachine(KsMachineOptions(processorCount: 1)) {
            KeInitializeSpinLock(&lock)                              // +2
            var old: KIRQL = 0
            KeAcquireSpinLock(&lock, &old)                           // +4
            KeReleaseSpinLock(&lock, old)                            // +5
            ExInitializeFastMutex(&mutex)                            // +6
            ExAcquireFastMutex(&mutex)                               // +7
            ExReleaseFastMutex(&mutex)                               // +8
        }
        let spin = KsLock(.spinLock, addressOf(&lock)), fast = KsLock(.fastMutex, addressOf(&mutex))
        let entries = KsLastTrace().events.map {
            Entry(thread: $0.thread, processor: $0.processor, kind: $0.kind, routine: $0.routine,
                  line: $0.line == 0 ? 0 : $0.line - start)
        }
        XCTAssertEqual(entries, [
            Entry(thread: 1, processor: -1, kind: .threadStart(by: 0), routine: "start", line: 0),
            Entry(thread: 1, processor: 0, kind: .contextSwitch(from: nil), routine: "start", line: 0),
            Entry(thread: 1, processor: 0, kind: .run, routine: "start", line: 0),
            Entry(thread: 1, processor: 0, kind: .irql(from: 0, to: 2), routine: "KeAcquireSpinLock", line: 4),
            Entry(thread: 1, processor: 0, kind: .acquire(spin), routine: "KeAcquireSpinLock", line: 4),
            Entry(thread: 1, processor: 0, kind: .release(spin), routine: "KeReleaseSpinLock", line: 5),
            Entry(thread: 1, processor: 0, kind: .irql(from: 2, to: 0), routine: "KeReleaseSpinLock", line: 5),
            Entry(thread: 1, processor: 0, kind: .irql(from: 0, to: 1), routine: "ExAcquireFastMutex", line: 7),
            Entry(thread: 1, processor: 0, kind: .acquire(fast), routine: "ExAcquireFastMutex", line: 7),
            Entry(thread: 1, processor: 0, kind: .release(fast), routine: "ExReleaseFastMutex", line: 8),
            Entry(thread: 1, processor: 0, kind: .irql(from: 1, to: 0), routine: "ExReleaseFastMutex", line: 8),
            Entry(thread: 1, processor: 0, kind: .threadEnd, routine: "ExReleaseFastMutex", line: 8),
        ])
        XCTAssertTrue(KsLastTrace().events.allSatisfy { $0.file == #filePath || $0.file.isEmpty })
    }

    func testWaitsWakesAndThreadsOfAnEventHandOff() {
        let m = simulate(seed: 3) {
            let gate = Gate()
            let h = startThread { gate.pass() }
            waitUntil { waiters(&gate.event).count == 1 }
            gate.open()
            join(h)
        }
        assertCompleted(m)
        let events = m.events.trace.events
        let starts = events.filter { if case .threadStart = $0.kind { return true } else { return false } }
        XCTAssertEqual(starts.map(\.thread), [1, 2])
        XCTAssertEqual(starts.map(\.kind), [.threadStart(by: 0), .threadStart(by: 1)])
        // Thread 2 is woken by thread 1's KeSetEvent, with STATUS_WAIT_0.
        XCTAssertTrue(events.contains { $0.thread == 1 && $0.kind == .wake(thread: 2, status: STATUS_WAIT_0)
            && $0.routine == "KeSetEvent" }, "\(events)")
        XCTAssertEqual(events.last?.kind, .threadEnd)
        XCTAssertEqual(events.last?.thread, 1)
        XCTAssertEqual(events.filter { $0.kind == .threadEnd }.count, 2)
        XCTAssertTrue(zip(events, events.dropFirst()).allSatisfy { $0.time <= $1.time && $0.step <= $1.step })
    }

    /// The trace with lock and wait-object addresses left out: each run allocates its counter (and
    /// lock) afresh.
    private func shape(_ trace: KsTrace) -> [String] {
        trace.events.map { e in
            var e = e
            switch e.kind {
            case .acquire(let lock): e.kind = .acquire(KsLock(lock.kind, 0))
            case .release(let lock): e.kind = .release(KsLock(lock.kind, 0))
            case .wait: e.kind = .wait(object: 1)
            default: break
            }
            return e.description
        }
    }

    func testTheSameSeedGivesTheSameTrace() {
        var total = 0
        for strategy in [.random, .pct(depth: 3)] as [KsStrategy] {
            for seed in [0, 5, 99] as [UInt64] {
                let options = KsMachineOptions(seed: seed, strategy: strategy)
                _ = KsRunMachine(options, RacyCounter.body(locked: true) { total = $0 })
                let first = KsLastTrace()
                _ = KsRunMachine(options, RacyCounter.body(locked: true) { total = $0 })
                XCTAssertTrue(shape(KsLastTrace()) == shape(first), "\(strategy) seed \(seed)")
                XCTAssertGreaterThan(first.interleaving().count, 2)
                XCTAssertEqual(total, 20)
            }
        }
        _ = KsRunMachine(KsMachineOptions(seed: 1), RacyCounter.body(locked: true) { total = $0 })
        let one = shape(KsLastTrace())
        _ = KsRunMachine(KsMachineOptions(seed: 2), RacyCounter.body(locked: true) { total = $0 })
        XCTAssertFalse(shape(KsLastTrace()) == one, "another seed, another interleaving")
    }

    func testTheTraceKeepsTheLatestEventsWithinItsCapacity() {
        let rounds = 5_000
        _ = KsRunMachine {
            for _ in 0..<rounds {
                let old = KeRaiseIrqlToDpcLevel()
                KeLowerIrql(old)
            }
        }
        let trace = KsLastTrace()
        XCTAssertEqual(trace.events.count, KsTrace.capacity)
        XCTAssertEqual(trace.dropped, 3 + 2 * rounds + 1 - KsTrace.capacity)
        XCTAssertEqual(trace.events.last?.kind, .threadEnd)
        XCTAssertEqual(trace.events[trace.events.count - 2].kind, .irql(from: 2, to: 0))
    }

    func testABugCheckIsTheLastEvent() {
        _ = KsRunMachine { KeBugCheckEx(0xD1, 1, 2, 3, 4) }
        XCTAssertEqual(KsLastTrace().events.last?.kind, .bugCheck(code: 0xD1))
        XCTAssertEqual(KsLastTrace().events.last?.routine, "KeBugCheckEx")
    }
}

/// The trace records DPCs, APCs, interrupts and waits, each on the processor and thread it ran in.
final class DeferredWorkTraceTests: XCTestCase {
    func testDpcApcInterruptAndWaitEventsAreRecorded() {
        var dpc = KDPC()
        var event = KEVENT()
        var recording: RecordingApc?
        var device: Device?
        let m = simulate(processors: 1) {
            KeInitializeEvent(&event, NotificationEvent, FALSE)
            KeInitializeDpc(&dpc, { _, _, _, _ in KeSetEvent(&event, IO_NO_INCREMENT, FALSE) }, nil)
            device = Device(vector: 0x51, irql: 5, mask: 0b1)
            device!.body = { KeInsertQueueDpc(&dpc, nil, nil) }
            recording = RecordingApc("a", for: KeGetCurrentThread(), normal: false)
            var old: KIRQL = 0
            KeRaiseIrql(APC_LEVEL, &old)
            recording!.insert()       // delivered when the IRQL drops below APC_LEVEL
            KeLowerIrql(old)
            KsAssertInterrupt(device!.interrupt!)
            var zero = LARGE_INTEGER()
            KeWaitForSingleObject(&event, Executive, KernelMode, FALSE, &zero)
        }
        assertCompleted(m)
        let events = m.events.trace.events
        let apcAddress = withUnsafeMutablePointer(to: &recording!.apc) { addressOf($0) }
        let kinds = events.map(\.kind).filter {
            switch $0 {
            case .dpc, .apc, .interrupt, .wait: return true
            default: return false
            }
        }
        XCTAssertEqual(kinds, [
            .apc(apcAddress, normal: false),
            .interrupt(ULONG_PTR(bitPattern: device!.interrupt!), irql: 5),
            .dpc(addressOf(&dpc)),
        ], "a satisfied zero-timeout wait does not block, so it records no wait")
        XCTAssertTrue(events.filter { if case .dpc = $0.kind { return true } else { return false } }
            .allSatisfy { $0.processor == 0 && $0.thread == 1 })
    }

    func testABlockingWaitIsRecordedWithItsObject() {
        var event = KEVENT()
        let m = simulate {
            KeInitializeEvent(&event, NotificationEvent, FALSE)
            let h = startThread {
                waitUntil { waiters(&event).count == 1 }  // thread 1 is blocked on it
                KeSetEvent(&event, IO_NO_INCREMENT, FALSE)
            }
            KeWaitForSingleObject(&event, Executive, KernelMode, FALSE, nil)
            join(h)
        }
        assertCompleted(m)
        let waits = m.events.trace.events.filter { $0.kind == .wait(object: addressOf(&event)) }
        XCTAssertEqual(waits.map(\.thread), [1])
        XCTAssertEqual(waits.map(\.routine), ["KeWaitForSingleObject"])
    }

    /// A DPC that runs inside a thread's wait records its own kernel calls in that thread's
    /// context; when the thread resumes, the trace must say it resumes in the wait, not in the
    /// DPC's last call (which read like a thread migrating in the middle of a DPC).
    func testAThreadResumesInTheCallADpcInterrupted() {
        final class Queued { var dpc = KDPC() }
        var dpcsInsideTheWait = 0
        for seed: UInt64 in 0..<40 {
            let q = Queued()
            _ = simulate(seed: seed) {
                KeInitializeDpc(&q.dpc, { _, _, _, _ in KdPrint("") }, nil)
                KeSetTargetProcessorDpc(&q.dpc, 0)
                join(startThread {
                    KeInsertQueueDpc(&q.dpc, nil, nil)
                    var whileTheMainThreadWaits = LARGE_INTEGER(QuadPart: -1000)
                    KeDelayExecutionThread(KernelMode, FALSE, &whileTheMainThreadWaits)
                })
            }
            let events = KsLastTrace().events.filter { $0.thread == 1 }
            dpcsInsideTheWait += events.filter { $0.kind == .dpc(addressOf(&q.dpc)) && $0.routine == "ZwWaitForSingleObject" }.count
            guard let wait = events.firstIndex(where: { if case .waitForThread = $0.kind { return true }; return false }) else {
                continue   // the DPC ran and the thread ended before the main thread waited
            }
            for event in events[wait...] where event.kind == .run || event.kind == .waitForThread(2) {
                XCTAssertEqual(event.routine, "ZwWaitForSingleObject", "seed \(seed): \(event)")
            }
        }
        XCTAssertGreaterThan(dpcsInsideTheWait, 0, "some seed runs the DPC inside the main thread's wait")
    }
}
