/// `KSTART_ROUTINE`: the entry point of a system thread.
public typealias KSTART_ROUTINE = (_ StartContext: PVOID) -> Void

enum ThreadState { case ready, running, waiting, terminated }

/// A simulated kernel thread: a context of its own, run while the scheduler has switched to it.
final class SimThread {
    let id: Int
    /// Where the thread came from, for reports ("KsRunMachine body", "PsCreateSystemThread at …").
    let origin: String
    let kthread: UnsafeMutablePointer<KTHREAD>
    fileprivate let body: () -> Void
    var context: Context!
    /// PCT priority: higher runs first.
    var priority = 0
    /// Locks held, oldest first, for Driver Verifier's deadlock detection.
    var heldLocks: [HeldLock] = []
    /// The race contexts running on this thread: its own, then any DPC, ISR or APC it is running.
    var raceContexts: [RaceContext] = []
    var state = ThreadState.ready
    var processor: Processor?
    /// The IRQL to restore when the thread is put back on a processor.
    var savedIrql = PASSIVE_LEVEL
    /// The first object the thread waits on, while it waits on dispatcher objects.
    var waitObject: UnsafeMutableRawPointer?
    /// The wait blocks linked into the wait lists of the objects it waits on (KTHREAD.WaitBlockList).
    var waitBlockList: PKWAIT_BLOCK?
    var waitBlockCount = 0
    /// When a timed wait or delay expires, in simulated time.
    var deadline: LONGLONG?
    var waitStatus = STATUS_SUCCESS
    var apc = ApcState()
    /// Set for a processor's idle context, which runs only there.
    var pinnedProcessor: Processor?
    /// Kernel calls, most recent last. Trimmed to the last `recentCallLimit` only once it holds
    /// twice that many, so recording a call does not shift the array every time.
    private var calls: [CallSite] = []

    static let recentCallLimit = 10

    init(id: Int, origin: String, body: @escaping () -> Void) {
        self.id = id
        self.origin = origin
        self.body = body
        calls.reserveCapacity(2 * Self.recentCallLimit)
        kthread = .allocate(capacity: 1)
        kthread.initialize(to: KTHREAD())
        kthread.pointee.Header.Type = ThreadObject
        InitializeListHead(waitListHead(UnsafeMutableRawPointer(kthread)))
        InitializeListHead(mutantListHead(kthread))
    }

    /// `&Thread->WaitBlock[0]`: the built-in wait blocks, laid out as the C array they stand for.
    var builtInWaitBlocks: PKWAIT_BLOCK {
        (UnsafeMutableRawPointer(kthread) + MemoryLayout<KTHREAD>.offset(of: \.WaitBlock)!)
            .assumingMemoryBound(to: KWAIT_BLOCK.self)
    }

    func record(_ call: CallSite) {
        if calls.count == 2 * Self.recentCallLimit { calls.removeFirst(Self.recentCallLimit) }
        calls.append(call)
    }

    /// The most recent kernel calls, oldest first.
    var recentCalls: [CallSite] { Array(calls.suffix(Self.recentCallLimit)) }

    /// The kernel call the thread is in.
    var lastCall: CallSite? { calls.last }

    var name: String { pinnedProcessor.map { "idle thread of processor \($0.number)" } ?? "thread \(id)" }
}

/// Where a thread's context starts. Returning, rather than switching away from inside the body's
/// frames, releases every reference they held (the machine's among them) before
/// ks_context_start resumes the stack pointer this returns.
func threadMain(_ thread: UnsafeMutableRawPointer?) -> UnsafeMutableRawPointer {
    activeMachine!.forgetStackBelow()
    Unmanaged<SimThread>.fromOpaque(thread!).takeUnretainedValue().body()
    return activeMachine!.exitThread(returning: true)
}

extension Machine {
    /// Creates a ready thread that runs `body` once the scheduler first switches to it.
    func spawn(origin: String, _ body: @escaping () -> Void) -> SimThread {
        let t = SimThread(id: threads.count + 1, origin: origin, body: body)
        threadCreated(t)
        threads.append(t)
        readyQueue.append(t)
        launch(t)
        return t
    }

    /// A system thread must end at PASSIVE_LEVEL with its critical and guarded regions balanced
    /// and no kernel APC left queued: "A thread exits with a nonzero APC disable count ... or at
    /// IRQL ≠ 0" is 0x20, P1 = the pending APC (as WRK's PspExitThread raises it). The exit path
    /// first leaves the critical region PsCreateSystemThread started the thread in, if the thread
    /// is still in a region (it cannot tell that one from a region the thread entered itself),
    /// which lets queued kernel APCs run. Returns the stack pointer to leave the thread for.
    /// https://learn.microsoft.com/windows-hardware/drivers/debugger/bug-check-0x20--kernel-apc-pending-during-exit
    func exitThread(returning: Bool) -> UnsafeMutableRawPointer {
        let t = current!
        if t.apc.startedInCriticalRegion && t.kthread.pointee.KernelApcDisable < 0 {
            t.kthread.pointee.KernelApcDisable &+= 1
            deliverApcs()
        }
        let k = t.kthread.pointee
        if irql != PASSIVE_LEVEL || k.KernelApcDisable != 0 || k.SpecialApcDisable != 0 || !t.apc.queue.isEmpty {
            let how = returning ? "returned from its start routine" : "called PsTerminateSystemThread"
            let pending = t.apc.queue.isEmpty ? "" : " with \(t.apc.queue.count) kernel APC(s) still queued"
            bugCheck(KERNEL_APC_PENDING_DURING_EXIT, address(t.apc.queue.first), ULONG_PTR(k.CombinedApcDisable),
                     ULONG_PTR(irql), 0,
                     note: "\(t.name) \(how) at IRQL \(irql) with KernelApcDisable \(k.KernelApcDisable) "
                        + "and SpecialApcDisable \(k.SpecialApcDisable)\(pending)." + heldMutexesNote(t))
        }
        rundownMutants()
        threadWillBeDeleted()
        return terminateCurrentThread()
    }

    /// Routines documented for PASSIVE_LEVEL only; Driver Verifier's DDI compliance checking
    /// reports a violation as 0xC4 with the rule's ID, a free build does not check.
    /// https://learn.microsoft.com/windows-hardware/drivers/devtest/ddi-compliance-checking
    func requirePassive(ddiRule: ULONG_PTR, _ rule: String) {
        if options.verifier && irql != PASSIVE_LEVEL {
            bugCheck(DRIVER_VERIFIER_DETECTED_VIOLATION, ddiRule, 0, 0, 0,
                     note: "DDI compliance rule \(rule): called at IRQL \(irql).")
        }
    }
}

/// Creates a system thread that runs `StartRoutine(StartContext)` and stores a handle to it
/// (usable with `ZwWaitForSingleObject` and `ZwClose`). Call at PASSIVE_LEVEL. "The newly created
/// system thread runs at PASSIVE_LEVEL inside a critical region with normal kernel APCs disabled."
/// (WS03's PspSystemThreadStartup in the WRK did not enter one; Windows 10/11 follow the page.)
/// https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-pscreatesystemthread
@discardableResult
public func PsCreateSystemThread(
    _ ThreadHandle: PHANDLE, _ DesiredAccess: ULONG, _ ObjectAttributes: PVOID, _ ProcessHandle: HANDLE,
    _ ClientId: PCLIENT_ID?, _ StartRoutine: @escaping KSTART_ROUTINE, _ StartContext: PVOID,
    file: String = #filePath, line: Int = #line
) -> NTSTATUS {
    let m = enterKernel("PsCreateSystemThread", file, line)
    m.kernelObject(ThreadHandle)
    m.kernelObject(ClientId)
    m.requirePassive(ddiRule: 0x0002_001C, "IrqlPsPassive")
    let t = m.spawn(origin: "PsCreateSystemThread at \(file):\(line)") { StartRoutine(StartContext) }
    t.kthread.pointee.KernelApcDisable = -1
    t.apc.startedInCriticalRegion = true
    ThreadHandle.pointee = UnsafeMutableRawPointer(t.kthread)
    ClientId?.pointee.UniqueThread = UnsafeMutableRawPointer(bitPattern: t.id)
    return STATUS_SUCCESS
}

/// Ends the calling system thread. It does not return.
/// https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-psterminatesystemthread
@discardableResult
public func PsTerminateSystemThread(_ ExitStatus: NTSTATUS, file: String = #filePath, line: Int = #line) -> NTSTATUS {
    // The caller's frames are never unwound; those of this nested function are, with the
    // reference to the machine in them, before the thread's context is left.
    func exit() -> UnsafeMutableRawPointer {
        let m = enterKernel("PsTerminateSystemThread", file, line)
        m.requirePassive(ddiRule: 0x0002_001C, "IrqlPsPassive")
        return m.exitThread(returning: false)
    }
    ks_context_resume(exit())
}

/// The calling thread's kernel thread object.
public func KeGetCurrentThread(file: String = #filePath, line: Int = #line) -> PKTHREAD {
    PKTHREAD(enterKernel("KeGetCurrentThread", file, line).current.kthread)
}

/// Puts the calling thread to sleep for `Interval` (negative: relative, in 100 ns units; positive:
/// absolute system time, since 1601 as `KeQuerySystemTime` counts it). Call at IRQL ≤ APC_LEVEL.
/// https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-kedelayexecutionthread
@discardableResult
public func KeDelayExecutionThread(
    _ WaitMode: KPROCESSOR_MODE, _ Alertable: BOOLEAN, _ Interval: PLARGE_INTEGER,
    file: String = #filePath, line: Int = #line
) -> NTSTATUS {
    let m = enterKernel("KeDelayExecutionThread", file, line)
    m.kernelObject(Interval)
    m.delay(until: m.deadline(for: Interval.pointee))
    return STATUS_SUCCESS
}

extension Machine {
    /// Sleeps until simulated time `deadline`; kernel APCs delivered meanwhile do not shorten it.
    func delay(until deadline: LONGLONG) {
        repeat {
            guard deadline > clock else { return }
            requireSwitchable(waitingOn: nil)
            sleep(until: deadline)
        } while kernelApcInterruptedWait()
    }
}

/// Waits for a thread handle from `PsCreateSystemThread` to be signaled (the thread has ended).
/// https://learn.microsoft.com/windows-hardware/drivers/ddi/ntifs/nf-ntifs-zwwaitforsingleobject
@discardableResult
public func ZwWaitForSingleObject(
    _ Handle: HANDLE, _ Alertable: BOOLEAN, _ Timeout: PLARGE_INTEGER?,
    file: String = #filePath, line: Int = #line
) -> NTSTATUS {
    let m = enterKernel("ZwWaitForSingleObject", file, line)
    guard let object = Handle, m.thread(for: object) != nil else { return STATUS_INVALID_HANDLE }
    m.checkWaitIrql(object: object, timeout: Timeout)
    return m.wait(on: object, timeout: Timeout)
}

/// Closes a handle. Thread handles need no cleanup in the simulator beyond validation.
@discardableResult
public func ZwClose(_ Handle: HANDLE, file: String = #filePath, line: Int = #line) -> NTSTATUS {
    let m = enterKernel("ZwClose", file, line)
    guard let object = Handle, m.thread(for: object) != nil else { return STATUS_INVALID_HANDLE }
    return STATUS_SUCCESS
}
