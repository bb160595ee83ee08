// Kernel-mode asynchronous procedure calls (ReactOS ntoskrnl/ke/apc.c: KeInitializeApc,
// KeInsertQueueApc, KiDeliverApc). A thread's kernel APC queue holds special APCs (no normal
// routine) ahead of normal ones. They are delivered on the target thread:
//  - special: while it runs below APC_LEVEL outside guarded regions (SpecialApcDisable == 0);
//  - normal: while it runs at PASSIVE_LEVEL outside critical and guarded regions and no normal
//    APC is already in progress: the kernel routine at APC_LEVEL, then the normal routine at
//    PASSIVE_LEVEL.
// Delivery points: the thread's IRQL dropping below APC_LEVEL, leaving its outermost critical
// region, every scheduling point of the thread, and waits: an APC that can be delivered to a
// waiting thread wakes it, runs, and the wait resumes (the kernel's STATUS_KERNEL_APC loop).
// User-mode APCs, alerts and alertable waits (STATUS_USER_APC, STATUS_ALERTED) are not
// simulated: system threads never return to user mode.

public typealias PKAPC = UnsafeMutablePointer<KAPC>
public typealias PRKAPC = PKAPC

/// `PKNORMAL_ROUTINE`: runs at PASSIVE_LEVEL with the (possibly updated) context and arguments.
public typealias PKNORMAL_ROUTINE = (_ NormalContext: PVOID, _ SystemArgument1: PVOID, _ SystemArgument2: PVOID) -> Void
/// `PKKERNEL_ROUTINE`: runs at APC_LEVEL and may change, or clear, what the normal routine gets.
public typealias PKKERNEL_ROUTINE = (
    _ Apc: PKAPC, _ NormalRoutine: UnsafeMutablePointer<PKNORMAL_ROUTINE?>, _ NormalContext: UnsafeMutablePointer<PVOID>,
    _ SystemArgument1: UnsafeMutablePointer<PVOID>, _ SystemArgument2: UnsafeMutablePointer<PVOID>
) -> Void
/// `PKRUNDOWN_ROUTINE`: called for a user-mode APC flushed when its thread ends. Stored but never
/// called: user-mode APCs are not simulated, and a kernel APC still queued at exit is 0x20.
public typealias PKRUNDOWN_ROUTINE = (_ Apc: PKAPC) -> Void

/// `KAPC_ENVIRONMENT`. Simulated threads never attach to another process, so every environment
/// is the thread's original one.
public struct KAPC_ENVIRONMENT: RawRepresentable, Equatable, Sendable {
    public var rawValue: Int32
    public init(rawValue: Int32) { self.rawValue = rawValue }
}
public let OriginalApcEnvironment = KAPC_ENVIRONMENT(rawValue: 0)
public let AttachedApcEnvironment = KAPC_ENVIRONMENT(rawValue: 1)
public let CurrentApcEnvironment = KAPC_ENVIRONMENT(rawValue: 2)
public let InsertApcEnvironment = KAPC_ENVIRONMENT(rawValue: 3)

/// `KOBJECTS` value of `KAPC.Type`.
public let ApcObject: UCHAR = 18

/// An APC object, with the ReactOS/WRK field names.
public struct KAPC {
    public var `Type`: UCHAR = 0
    public var Size: UCHAR = 0
    public var Thread: PKTHREAD?
    public var KernelRoutine: PKKERNEL_ROUTINE?
    public var RundownRoutine: PKRUNDOWN_ROUTINE?
    public var NormalRoutine: PKNORMAL_ROUTINE?
    public var NormalContext: PVOID = nil
    public var SystemArgument1: PVOID = nil
    public var SystemArgument2: PVOID = nil
    public var ApcStateIndex: CCHAR = 0
    public var ApcMode = KernelMode
    public var Inserted: BOOLEAN = FALSE
    public init() {}
}

/// A thread's kernel APC state.
struct ApcState {
    /// Queued kernel APCs: special ones first, each kind oldest first.
    var queue: [PKAPC] = []
    /// `ApcState.KernelApcInProgress`: a normal routine is running.
    var kernelApcInProgress = false
    /// The critical region PsCreateSystemThread starts the thread in, which the exit path leaves.
    var startedInCriticalRegion = false
}

/// Initializes an APC for `Thread`. Without a `NormalRoutine` it is a special kernel APC (mode
/// KernelMode, NormalContext NULL). Undocumented; the signature and effects are ReactOS's.
public func KeInitializeApc(
    _ Apc: PRKAPC, _ Thread: PKTHREAD, _ Environment: KAPC_ENVIRONMENT, _ KernelRoutine: @escaping PKKERNEL_ROUTINE,
    _ RundownRoutine: PKRUNDOWN_ROUTINE?, _ NormalRoutine: PKNORMAL_ROUTINE?, _ ApcMode: KPROCESSOR_MODE,
    _ NormalContext: PVOID, file: String = #filePath, line: Int = #line
) {
    let m = enterKernel("KeInitializeApc", file, line)
    m.kernelObject(Apc)
    m.deferredNames[address(Apc)] = "the APC initialized at \(file):\(line)"
    Apc.pointee.Type = ApcObject
    Apc.pointee.Size = UCHAR(truncatingIfNeeded: MemoryLayout<KAPC>.size)
    Apc.pointee.ApcStateIndex = Environment == CurrentApcEnvironment ? 0 : CCHAR(Environment.rawValue)
    Apc.pointee.Thread = Thread
    Apc.pointee.KernelRoutine = KernelRoutine
    Apc.pointee.RundownRoutine = RundownRoutine
    Apc.pointee.NormalRoutine = NormalRoutine
    Apc.pointee.ApcMode = NormalRoutine == nil ? KernelMode : ApcMode
    Apc.pointee.NormalContext = NormalRoutine == nil ? nil : NormalContext
    Apc.pointee.Inserted = FALSE
}

/// Queues the APC to its thread with the two system arguments. FALSE if it is already queued or
/// the thread has ended. `Increment` (a priority boost) is accepted but not modelled.
@discardableResult
public func KeInsertQueueApc(_ Apc: PRKAPC, _ SystemArgument1: PVOID, _ SystemArgument2: PVOID,
                             _ Increment: KPRIORITY, file: String = #filePath, line: Int = #line) -> BOOLEAN {
    let m = enterKernel("KeInsertQueueApc", file, line)
    precondition(Apc.pointee.ApcMode == KernelMode,
                 "KeInsertQueueApc at \(file):\(line): user-mode APCs are not simulated")
    guard Apc.pointee.Inserted == FALSE, let t = m.thread(for: Apc.pointee.Thread), t.state != .terminated else {
        return FALSE
    }
    m.workQueued(address(Apc))
    Apc.pointee.SystemArgument1 = SystemArgument1
    Apc.pointee.SystemArgument2 = SystemArgument2
    Apc.pointee.Inserted = TRUE
    if Apc.pointee.NormalRoutine == nil {
        t.apc.queue.insert(Apc, at: t.apc.queue.firstIndex { $0.pointee.NormalRoutine != nil } ?? t.apc.queue.endIndex)
    } else {
        t.apc.queue.append(Apc)
    }
    if t === m.current {
        m.deliverApcs()
    } else if t.state == .waiting && m.canDeliverApc(to: t, at: t.savedIrql) {
        m.wake(t, STATUS_KERNEL_APC)
    }
    return TRUE
}

extension Machine {
    /// Whether the head of the thread's APC queue may run now, at `irql`.
    func canDeliverApc(to t: SimThread, at irql: KIRQL) -> Bool {
        guard let head = t.apc.queue.first, irql < APC_LEVEL, t.kthread.pointee.SpecialApcDisable == 0 else {
            return false
        }
        return head.pointee.NormalRoutine == nil
            || (t.kthread.pointee.KernelApcDisable == 0 && !t.apc.kernelApcInProgress)
    }

    /// KiDeliverApc for kernel mode: runs the current thread's deliverable APCs in queue order.
    func deliverApcs() {
        let t = current!
        while canDeliverApc(to: t, at: irql) {
            let apc = t.apc.queue.removeFirst()
            apc.pointee.Inserted = FALSE
            let interrupted = irql
            irql = APC_LEVEL
            let special = apc.pointee.NormalRoutine == nil
            var normalRoutine = apc.pointee.NormalRoutine
            var context = apc.pointee.NormalContext
            var argument1 = apc.pointee.SystemArgument1
            var argument2 = apc.pointee.SystemArgument2
            recordEvent(.apc(address(apc), normal: !special))
            inContext(of: address(apc), deferredNames[address(apc)] ?? "the APC at \(hex(address(apc)))") {
                apc.pointee.KernelRoutine!(apc, &normalRoutine, &context, &argument1, &argument2)
                checkApcIrql(APC_LEVEL, uniqueValue: 0, apc)
                if !special, let normalRoutine {
                    t.apc.kernelApcInProgress = true
                    irql = PASSIVE_LEVEL
                    normalRoutine(context, argument1, argument2)
                    checkApcIrql(PASSIVE_LEVEL, uniqueValue: 1, apc)
                    t.apc.kernelApcInProgress = false
                }
            }
            irql = interrupted
        }
    }

    /// An APC routine must return at the IRQL it was called at: 0xC8 with
    /// P1 = (CurrentIrql << 16) | (ExpectedIrql << 8) | UniqueValue, P3 = the APC. Microsoft
    /// documents UniqueValue 0 or 1 for APCs without saying which is which; the simulator uses 0
    /// after the kernel routine and 1 after the normal routine. P2 and P4 (the routines) are 0:
    /// closures have no address.
    /// https://learn.microsoft.com/windows-hardware/drivers/debugger/bug-check-0xc8--irql-unexpected-value
    private func checkApcIrql(_ expected: KIRQL, uniqueValue: ULONG_PTR, _ apc: PKAPC) {
        guard irql != expected else { return }
        let routine = uniqueValue == 0 ? "kernel" : "normal"
        bugCheck(IRQL_UNEXPECTED_VALUE, (ULONG_PTR(irql) << 16) | (ULONG_PTR(expected) << 8) | uniqueValue,
                 0, address(apc), 0,
                 note: "The \(routine) routine of the APC at \(hex(address(apc))) returned at IRQL \(irql) "
                    + "instead of \(expected).")
    }

    /// After `block()`: true if a kernel APC interrupted the wait (it has now run), so the caller
    /// must wait again.
    func kernelApcInterruptedWait() -> Bool {
        guard current.waitStatus == STATUS_KERNEL_APC else { return false }
        deliverApcs()
        return true
    }
}
