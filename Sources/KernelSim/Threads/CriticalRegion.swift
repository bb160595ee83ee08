// Critical regions: the thread's KernelApcDisable count (reactos-sync-semantics.md §2.2).
// Guarded regions (SpecialApcDisable) share the counters and the queries below.

/// Disables normal kernel APCs for the calling thread until the matching KeLeaveCriticalRegion.
/// https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-keentercriticalregion
public func KeEnterCriticalRegion(file: String = #filePath, line: Int = #line) {
    let m = enterKernel("KeEnterCriticalRegion", file, line)
    // Force IRQL Checking: "can result in a system hang or memory corruption" above APC_LEVEL.
    // https://learn.microsoft.com/windows-hardware/drivers/devtest/force-irql-checking
    if m.options.verifier && m.irql > APC_LEVEL {
        m.bugCheck(DRIVER_VERIFIER_DETECTED_VIOLATION, 0x11A, ULONG_PTR(m.irql), 0, 0)
    }
    m.current.kthread.pointee.KernelApcDisable &-= 1
}

/// Re-enables normal kernel APCs once the outermost critical region is left. Leaving a region the
/// thread is not in is 0xC4/0x3E under Driver Verifier; a free build just counts past zero.
/// https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-keleavecriticalregion
public func KeLeaveCriticalRegion(file: String = #filePath, line: Int = #line) {
    let m = enterKernel("KeLeaveCriticalRegion", file, line)
    let thread = m.current.kthread
    if m.options.verifier {
        if thread.pointee.KernelApcDisable >= 0 {
            m.bugCheck(DRIVER_VERIFIER_DETECTED_VIOLATION, 0x3E, 0, 0, 0)
        }
        if m.irql > APC_LEVEL {
            m.bugCheck(DRIVER_VERIFIER_DETECTED_VIOLATION, 0x11B, ULONG_PTR(m.irql), 0, 0)
        }
    }
    thread.pointee.KernelApcDisable &+= 1
    // KiCheckForKernelApcDelivery (reactos-sync-semantics.md §2.2): at PASSIVE_LEVEL the APCs run
    // now; at APC_LEVEL they wait for the IRQL to drop.
    if thread.pointee.KernelApcDisable == 0 { m.deliverApcs() }
}

/// TRUE if the thread is inside a critical or guarded region (any nonzero count, IRQL ignored).
/// https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-keareapcsdisabled
public func KeAreApcsDisabled(file: String = #filePath, line: Int = #line) -> BOOLEAN {
    let m = enterKernel("KeAreApcsDisabled", file, line)
    return m.current.kthread.pointee.CombinedApcDisable != 0 ? TRUE : FALSE
}

/// TRUE if all APCs are disabled: inside a guarded region, or at IRQL ≥ APC_LEVEL.
/// https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-keareallapcsdisabled
public func KeAreAllApcsDisabled(file: String = #filePath, line: Int = #line) -> BOOLEAN {
    let m = enterKernel("KeAreAllApcsDisabled", file, line)
    return m.current.kthread.pointee.SpecialApcDisable != 0 || m.irql >= APC_LEVEL ? TRUE : FALSE
}
