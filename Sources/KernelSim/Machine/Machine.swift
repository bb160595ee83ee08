import Glibc

/// The machine `KsRunMachine` is running, if any. Its simulated threads take turns on the OS
/// thread that called it, so its state needs no locking.
nonisolated(unsafe) var activeMachine: Machine?

/// One logical processor: its IRQL register and the thread it is running.
final class Processor {
    let number: Int
    var irql: KIRQL = PASSIVE_LEVEL
    var thread: SimThread?
    /// Simulated time at which the IRQL last rose to DISPATCH_LEVEL or above (for the DPC watchdog).
    var raisedSince: LONGLONG = 0
    var dpc = DpcState()
    /// Where a bug check whose parameter is documented as "Address of the IRQL value" (0xC4/0x120–
    /// 0x122) finds the IRQL: the PRCB's copy, written when the check is made.
    let irqlValue = UnsafeMutablePointer<KIRQL>.allocate(capacity: 1)

    init(number: Int) { self.number = number }
}

/// A kernel call site, kept per thread for crash reports.
struct CallSite: Equatable {
    let routine: String
    let file: String
    let line: Int
}

/// The simulated multiprocessor: processors, threads, simulated time and the seeded scheduler state.
final class Machine: @unchecked Sendable {
    let options: KsMachineOptions
    var rng: SplitMix64
    let processors: [Processor]
    /// Every thread ever created on this machine, in creation order (thread N is `threads[N - 1]`).
    var threads: [SimThread] = []
    /// Threads that can run but are not on a processor, oldest first.
    var readyQueue: [SimThread] = []
    /// The thread executing.
    var current: SimThread!
    /// The OS thread that runs the machine: its caller's.
    let host = pthread_self()
    /// The contexts of every thread and idle context, to recycle when the machine ends.
    var contexts: [Context] = []
    /// Simulated system time in 100 ns units.
    var clock: LONGLONG = 0
    /// No waiting thread's deadline is earlier (a woken thread's may have been, so it can be
    /// earlier than all of them).
    var earliestDeadline = LONGLONG.max
    /// Scheduling decisions made so far.
    var steps = 0
    /// Decisions that had more than one choice (PCT's k).
    var decisions = 0
    /// Reused by every decision, so scheduling allocates nothing per step; the current step's
    /// choices are a prefix (see `pick`).
    var choices: [SimThread] = []
    /// PCT's state, when the strategy is PCT.
    var pct: PctState?
    var events = EventLog()
    /// Driver Verifier's lock acquisition-order graph.
    var lockOrder = LockOrderGraph()
    var outcome: KsOutcome?
    /// Fast mutexes seen by any ExXxxFastMutex call, so deadlock reports can show their fields.
    var fastMutexes: [UnsafeMutablePointer<FAST_MUTEX>] = []
    /// Every value a fast mutex's Count took through the ExXxxFastMutex routines, in order.
    var countTrace: [(mutex: UnsafeMutablePointer<FAST_MUTEX>, count: LONG)] = []
    /// Which thread holds each spin lock (the lock word itself only says "held": 1 on x64 free builds).
    var spinLockOwners: [UnsafeMutablePointer<KSPIN_LOCK>: SimThread] = [:]
    var pool = PoolState()
    var interrupts = InterruptState()
    /// The data-race detector; `runMachine` gives every machine one (the same one, reset, from run
    /// to run), so nil only before it starts.
    var races: RaceDetector?
    /// The race context of each DPC, ISR and APC object, and how reports name it.
    var deferredContexts: [UInt: RaceContext] = [:]
    var deferredNames: [UInt: String] = [:]
    /// Set while the kernel itself raises or lowers to deliver DPCs or interrupts: the thread it
    /// borrows does not run code at DISPATCH_LEVEL, so it gets no ordering with the processor's DPCs.
    var deliveringWork = false

    init(options: KsMachineOptions) {
        precondition(options.processorCount >= 1, "KsMachineOptions.processorCount must be at least 1")
        self.options = options
        self.rng = SplitMix64(seed: options.seed)
        self.processors = (0..<options.processorCount).map(Processor.init)
    }

    var currentProcessor: Processor { current.processor! }

    /// The IRQL of the processor the current thread runs on (the CR8 register on x64). Every
    /// lowering goes through here, so this is where interrupts, DPCs and APCs it unmasks run; every
    /// raise too, so this is where Driver Verifier pages pageable pool out.
    var irql: KIRQL {
        get { currentProcessor.irql }
        set {
            let p = currentProcessor
            let old = p.irql
            if old < DISPATCH_LEVEL && newValue >= DISPATCH_LEVEL { p.raisedSince = clock }
            if newValue > old && newValue >= DISPATCH_LEVEL { pool.trim() }  // Force IRQL Checking
            if old != newValue { recordEvent(.irql(from: old, to: newValue)) }
            if races != nil && !deliveringWork {
                if old < DISPATCH_LEVEL && newValue >= DISPATCH_LEVEL { happensAfter(SyncKey.dpcsOf(p)) }
                if old >= DISPATCH_LEVEL && newValue < DISPATCH_LEVEL { happensBefore(SyncKey.threadsOf(p)) }
            }
            p.irql = newValue
            if newValue < old { deliverPendingWork() }
        }
    }

    func thread(for kthread: UnsafeRawPointer?) -> SimThread? {
        threads.first { UnsafeRawPointer($0.kthread) == kthread }
    }

    /// Whether the caller runs a simulated thread: the machine's OS thread, with a thread current.
    /// Code can also run on OS threads the simulator does not know (a chapter's own pthread, a
    /// signal on another thread); kernel calls from them are refused, their accesses ignored.
    var onSimulatedThread: Bool {
        current != nil && pthread_equal(host, pthread_self()) != 0
    }

    /// Sets the IRQL as the kernel's delivery of DPCs and interrupts does (see `deliveringWork`).
    func setIrqlForDelivery(_ level: KIRQL) {
        deliveringWork = true
        irql = level
        deliveringWork = false
    }

    func registerFastMutex(_ m: UnsafeMutablePointer<FAST_MUTEX>) {
        if !fastMutexes.contains(m) { fastMutexes.append(m) }
    }
}

/// The first step of every kernel routine: find the machine, check the caller is the running
/// simulated thread, remember the call site, and let the scheduler run someone else first.
func enterKernel(_ routine: String, _ file: String, _ line: Int) -> Machine {
    guard let m = activeMachine else {
        fatalError("KernelSim: \(routine) called at \(file):\(line) outside KsRunMachine. "
            + "Kernel routines can only run on a simulated thread.")
    }
    guard m.onSimulatedThread, let t = m.current else {
        fatalError("KernelSim: \(routine) called at \(file):\(line) from a thread the simulator does not run. "
            + "Create threads with PsCreateSystemThread.")
    }
    t.record(CallSite(routine: routine, file: file, line: line))
    m.schedulingPoint()
    return m
}
