// Deferred procedure calls. Each processor has a DPC queue that it retires at DISPATCH_LEVEL
// whenever its IRQL drops below DISPATCH_LEVEL (the IRQL setter in Machine.swift is the single
// place that happens) or when a thread on it reaches a scheduling point below that level.
// A processor that no thread runs on retires its DPCs (and takes interrupts) in an idle context:
// a simulated thread pinned to that processor, which the seeded scheduler may choose like any
// other thread whenever that processor has pending work. Windows' idle loop does the same job
// (KiIdleLoop → KiRetireDpcList).

public typealias PKDPC = UnsafeMutablePointer<KDPC>
public typealias PRKDPC = PKDPC

/// `PKDEFERRED_ROUTINE`: called with the DPC, its `DeferredContext`, and the two system arguments
/// given to the KeInsertQueueDpc call that queued it.
public typealias PKDEFERRED_ROUTINE = (
    _ Dpc: PKDPC, _ DeferredContext: PVOID, _ SystemArgument1: PVOID, _ SystemArgument2: PVOID
) -> Void

/// `KDPC_IMPORTANCE` (wdm.h).
public struct KDPC_IMPORTANCE: RawRepresentable, Equatable, Sendable {
    public var rawValue: Int32
    public init(rawValue: Int32) { self.rawValue = rawValue }
}
public let LowImportance = KDPC_IMPORTANCE(rawValue: 0)
public let MediumImportance = KDPC_IMPORTANCE(rawValue: 1)
public let HighImportance = KDPC_IMPORTANCE(rawValue: 2)
public let MediumHighImportance = KDPC_IMPORTANCE(rawValue: 3)

/// `KOBJECTS` value of `KDPC.Type`.
public let DpcObject: UCHAR = 19

/// KeSetTargetProcessorDpc stores `Number + MAXIMUM_PROCESSORS`, so that `Number == 0` keeps
/// meaning "the processor that queues it" (ReactOS ntoskrnl/ke/dpc.c; 64 on x64).
let MAXIMUM_PROCESSORS: USHORT = 64

/// A DPC object, with the wdm.h field names. `DpcData` is non-NULL exactly while it is queued.
public struct KDPC {
    public var `Type`: UCHAR = 0
    public var Importance: UCHAR = 0
    public var Number: USHORT = 0
    public var DeferredRoutine: PKDEFERRED_ROUTINE?
    public var DeferredContext: PVOID = nil
    public var SystemArgument1: PVOID = nil
    public var SystemArgument2: PVOID = nil
    public var DpcData: PVOID = nil
    public init() {}
}

/// Per-processor DPC state (the PRCB's DPC fields).
struct DpcState {
    var queue: [PKDPC] = []
    /// `Prcb->DpcRoutineActive`: a DPC routine is running on this processor.
    var routineActive = false
    /// Simulated time at which the running DPC routine started (for the single-DPC watchdog).
    var routineStart: LONGLONG = 0
    /// The processor's idle context, created the first time it has work and no thread.
    var idle: SimThread?
    /// What a queued DPC's `DpcData` points at: this processor's (opaque) KDPC_DATA.
    let data = UnsafeMutableRawPointer.allocate(byteCount: 16, alignment: 8)
}

/// How long one DPC routine may run before the DPC watchdog fires with P1 = 0 (10 ms of
/// simulated time: shorter than the cumulative limit, as Windows' DPC time limit is).
let dpcTimeLimit: LONGLONG = 100_000

/// Sets Type, MediumImportance, no target processor, the routine and its context, and
/// `DpcData = NULL`; the system arguments are left as they were (kmtest KeDpc.c:77-89).
/// https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-keinitializedpc
public func KeInitializeDpc(_ Dpc: PRKDPC, _ DeferredRoutine: PKDEFERRED_ROUTINE?, _ DeferredContext: PVOID,
                            file: String = #filePath, line: Int = #line) {
    let m = enterKernel("KeInitializeDpc", file, line)
    m.kernelObject(Dpc)
    m.deferredNames[address(Dpc)] = "the DPC initialized at \(file):\(line)"
    Dpc.pointee.Type = DpcObject
    Dpc.pointee.Importance = UCHAR(MediumImportance.rawValue)
    Dpc.pointee.Number = 0
    Dpc.pointee.DeferredRoutine = DeferredRoutine
    Dpc.pointee.DeferredContext = DeferredContext
    Dpc.pointee.DpcData = nil
}

/// Queues the DPC on its target processor (by default the caller's) with the two system
/// arguments. Returns FALSE, keeping the first call's arguments, if it is already queued.
/// Queued at IRQL < DISPATCH_LEVEL on its own processor, it has run when this returns.
/// https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-keinsertqueuedpc
@discardableResult
public func KeInsertQueueDpc(_ Dpc: PRKDPC, _ SystemArgument1: PVOID, _ SystemArgument2: PVOID,
                             file: String = #filePath, line: Int = #line) -> BOOLEAN {
    let m = enterKernel("KeInsertQueueDpc", file, line)
    m.kernelObject(Dpc)
    guard Dpc.pointee.DpcData == nil else { return FALSE }
    m.workQueued(address(Dpc))
    let p = m.targetProcessor(of: Dpc, file: file, line: line)
    Dpc.pointee.SystemArgument1 = SystemArgument1
    Dpc.pointee.SystemArgument2 = SystemArgument2
    Dpc.pointee.DpcData = p.dpc.data
    if Dpc.pointee.Importance == UCHAR(HighImportance.rawValue) {
        p.dpc.queue.insert(Dpc, at: 0)
    } else {
        p.dpc.queue.append(Dpc)
    }
    if p === m.currentProcessor { m.retireDpcs() }
    return TRUE
}

/// Removes a queued DPC: TRUE if it was queued (it will not run), FALSE if it was not.
/// https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-keremovequeuedpc
@discardableResult
public func KeRemoveQueueDpc(_ Dpc: PRKDPC, file: String = #filePath, line: Int = #line) -> BOOLEAN {
    let m = enterKernel("KeRemoveQueueDpc", file, line)
    guard let data = Dpc.pointee.DpcData, let p = m.processors.first(where: { $0.dpc.data == data }) else {
        return FALSE
    }
    p.dpc.queue.removeAll { $0 == Dpc }
    Dpc.pointee.DpcData = nil
    return TRUE
}

/// Makes the DPC run on processor `Number` (zero-based) wherever it is queued from.
/// https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-kesettargetprocessordpc
public func KeSetTargetProcessorDpc(_ Dpc: PRKDPC, _ Number: CCHAR, file: String = #filePath, line: Int = #line) {
    _ = enterKernel("KeSetTargetProcessorDpc", file, line)
    Dpc.pointee.Number = USHORT(UInt8(bitPattern: Number)) + MAXIMUM_PROCESSORS
}

/// Sets the importance: HighImportance queues at the head of the target's DPC queue, the others
/// at the tail.
/// https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-kesetimportancedpc
public func KeSetImportanceDpc(_ Dpc: PRKDPC, _ Importance: KDPC_IMPORTANCE, file: String = #filePath, line: Int = #line) {
    _ = enterKernel("KeSetImportanceDpc", file, line)
    Dpc.pointee.Importance = UCHAR(Importance.rawValue)
}

/// Returns once every DPC queued on any processor, and every DPC routine running, has finished.
/// Call at PASSIVE_LEVEL: it waits, so inside a DPC it is 0xB8.
/// https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-keflushqueueddpcs
public func KeFlushQueuedDpcs(file: String = #filePath, line: Int = #line) {
    let m = enterKernel("KeFlushQueuedDpcs", file, line)
    while m.processors.contains(where: { !$0.dpc.queue.isEmpty || $0.dpc.routineActive }) {
        m.delay(until: m.clock + stepTime)
    }
    m.happensAfter(SyncKey.dpcsFlushed)
}

extension Machine {
    fileprivate func targetProcessor(of dpc: PKDPC, file: String, line: Int) -> Processor {
        let number = dpc.pointee.Number
        guard number >= MAXIMUM_PROCESSORS else { return currentProcessor }
        let target = Int(number - MAXIMUM_PROCESSORS)
        guard target < processors.count else {
            fatalError("KernelSim: KeInsertQueueDpc at \(file):\(line): the DPC targets processor \(target), "
                + "but the machine has \(processors.count) processors")
        }
        return processors[target]
    }

    /// Everything the current processor's IRQL (and its thread's APC state) now lets in, highest
    /// IRQL first: interrupts, then DPCs, then the thread's kernel APCs.
    func deliverPendingWork() {
        // Almost every scheduling point and IRQL drop has nothing to deliver: say so at once
        // rather than let each of the three find out.
        guard !interrupts.pending.isEmpty || !currentProcessor.dpc.queue.isEmpty || !current.apc.queue.isEmpty else {
            return
        }
        let me = current!
        let interruptedCall = me.lastCall
        deliverInterrupts()
        retireDpcs()
        deliverApcs()
        // ISRs, DPCs and APCs run in this thread's context and record their own kernel calls; the
        // thread is back in the call they interrupted, which is where reports must say it resumes.
        if let call = interruptedCall, me.lastCall != call { me.record(call) }
    }

    /// KiRetireDpcList: runs the current processor's queued DPCs at DISPATCH_LEVEL, oldest
    /// first, then restores the IRQL it interrupted.
    func retireDpcs() {
        let p = currentProcessor
        guard irql < DISPATCH_LEVEL, !p.dpc.routineActive, !p.dpc.queue.isEmpty else { return }
        let interrupted = irql
        setIrqlForDelivery(DISPATCH_LEVEL)
        p.dpc.routineActive = true
        while !p.dpc.queue.isEmpty {
            let dpc = p.dpc.queue.removeFirst()
            let k = dpc.pointee
            dpc.pointee.DpcData = nil
            p.dpc.routineStart = clock
            guard let routine = k.DeferredRoutine else {
                bugCheck(DRIVER_IRQL_NOT_LESS_OR_EQUAL, 0, ULONG_PTR(irql), 8, 0,
                         note: "The DPC at \(hex(address(dpc))) was queued with a NULL DeferredRoutine; "
                            + "the processor jumped to address 0 at DISPATCH_LEVEL.")
            }
            recordEvent(.dpc(address(dpc)))
            inContext(of: address(dpc), deferredNames[address(dpc)] ?? "the DPC at \(hex(address(dpc)))",
                      dispatchLevelOf: p) {
                routine(dpc, k.DeferredContext, k.SystemArgument1, k.SystemArgument2)
                happensBefore(SyncKey.dpcsFlushed)
            }
            if irql != DISPATCH_LEVEL {
                // Windows only ASSERTs here (WRK KiRetireDpcList, ReactOS dpc.c); the simulator
                // stops with 0xC8 using the "callout" form (UniqueValue 2: P3 = its parameter).
                // https://learn.microsoft.com/windows-hardware/drivers/debugger/bug-check-0xc8--irql-unexpected-value
                bugCheck(IRQL_UNEXPECTED_VALUE, (ULONG_PTR(irql) << 16) | (ULONG_PTR(DISPATCH_LEVEL) << 8) | 2,
                         0, address(k.DeferredContext), 0,
                         note: "The DPC routine of the KDPC at \(hex(address(dpc))) returned at IRQL \(irql); "
                            + "DPC routines must return at DISPATCH_LEVEL.")
            }
        }
        p.dpc.routineActive = false
        setIrqlForDelivery(interrupted)
    }

    /// "A wait operation, attach process, or yield was attempted from a DPC routine": Windows
    /// stops when the dispatcher would switch threads with `DpcRoutineActive` set. P1 is the
    /// thread the DPC interrupted, P2 the one that would have run (the idle thread if none is
    /// ready), P3 the original thread's stack (0: simulated threads have no kernel stack).
    /// https://learn.microsoft.com/windows-hardware/drivers/debugger/bug-check-0xb8--attempted-switch-from-dpc
    func checkNotInDpc() {
        let p = currentProcessor
        guard p.dpc.routineActive else { return }
        let next = readyQueue.first ?? idleContext(of: p)
        bugCheck(ATTEMPTED_SWITCH_FROM_DPC, address(current.kthread), address(next.kthread), 0, 0,
                 note: "A DPC routine on processor \(p.number) tried to wait; DPCs run in whatever thread "
                    + "they interrupted and can never give up the processor.")
    }

    /// The single-DPC form of 0x133 (P1 = 0): P2 is how long the DPC has run and P3 its allotment,
    /// both in 100 ns units here. Inlined: every scheduling point asks, and the answer is almost
    /// always no.
    /// https://learn.microsoft.com/windows-hardware/drivers/debugger/bug-check-0x133-dpc-watchdog-violation
    @inline(__always) func checkDpcTimeLimit(_ p: Processor) {
        guard p.dpc.routineActive, clock - p.dpc.routineStart > dpcTimeLimit else { return }
        bugCheck(DPC_WATCHDOG_VIOLATION, 0, ULONG_PTR(clock - p.dpc.routineStart), ULONG_PTR(dpcTimeLimit), 0,
                 note: "A single DPC routine ran on processor \(p.number) for more than "
                    + "\(dpcTimeLimit / 10_000) ms of simulated time.")
    }

    /// The processor's idle context: it does the processor's pending work, then gives the
    /// processor up again. It is not one of `threads`, so it never keeps the machine alive.
    func idleContext(of p: Processor) -> SimThread {
        if let idle = p.dpc.idle { return idle }
        let idle = SimThread(id: 0, origin: "the idle loop of processor \(p.number)") { [unowned self] in
            while true {
                deliverPendingWork()
                current.state = .waiting
                block()
            }
        }
        idle.pinnedProcessor = p
        // An interrupt it services takes the interrupt spin lock before any kernel call was made
        // in this context; lock bookkeeping and reports need a site to name.
        idle.record(CallSite(routine: "KiIdleLoop", file: "the idle loop of processor \(p.number)", line: 0))
        idle.state = .waiting
        p.dpc.idle = idle
        launch(idle)
        return idle
    }
}
