/// Simulated user mode: runs `body` as the kernel side of a system call that a user-mode thread made
/// (`DeviceIoControl` reaching a driver's dispatch routine, say), on the calling thread, then makes
/// the checks Windows makes before the thread returns to user mode (KiSystemServiceExit; ReactOS
/// KiExitSystemCallDebugChecks): an IRQL above PASSIVE_LEVEL is 0x4A (P2 = the IRQL), checked
/// first; APCs left disabled, a critical or guarded region entered and not left, is 0x1 with
/// P4 = 0, "system call" (P3 = CombinedApcDisable). P1 of both, the system call, is 0 here.
/// A user thread enters the kernel at PASSIVE_LEVEL with kernel APCs enabled; a system thread
/// created by `PsCreateSystemThread` starts in a critical region, so its own count at the call is
/// the one that must come back.
/// https://learn.microsoft.com/windows-hardware/drivers/debugger/bug-check-0x4a--irql-gt-zero-at-system-service
/// https://learn.microsoft.com/windows-hardware/drivers/debugger/bug-check-0x1--apc-index-mismatch
@discardableResult
public func KsSystemService<Result>(file: String = #filePath, line: Int = #line, _ body: () -> Result) -> Result {
    let m = enterKernel("KsSystemService", file, line)
    guard m.irql == PASSIVE_LEVEL else {
        fatalError("KsSystemService at \(file):\(line): called at IRQL \(m.irql); a system call enters the kernel "
            + "from user mode, at PASSIVE_LEVEL.")
    }
    let t = m.current!
    let entryApcDisable = t.kthread.pointee.CombinedApcDisable
    let result = body()
    let exit = t.kthread.pointee
    if m.irql != PASSIVE_LEVEL {
        m.bugCheck(IRQL_GT_ZERO_AT_SYSTEM_SERVICE, 0, ULONG_PTR(m.irql), 0, 0,
                   note: "The system call returned to user mode at IRQL \(m.irql): a raise without its lower, "
                      + "or a spin lock or fast mutex still held?")
    }
    if exit.CombinedApcDisable != entryApcDisable {
        m.bugCheck(APC_INDEX_MISMATCH, 0, 0, ULONG_PTR(exit.CombinedApcDisable), 0,
                   note: "The system call returned to user mode with KernelApcDisable \(exit.KernelApcDisable) and "
                      + "SpecialApcDisable \(exit.SpecialApcDisable): a critical or guarded region was entered and "
                      + "not left (or left too often).")
    }
    return result
}
