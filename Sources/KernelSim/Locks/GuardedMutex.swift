// Guarded regions (the thread's SpecialApcDisable count) and guarded mutexes. Since Windows 8
// "guarded mutexes and fast mutexes are implemented identically": KGUARDED_MUTEX is FAST_MUTEX and
// shares its Count algorithm (FastMutex.swift); what differs is that acquiring enters a guarded
// region instead of raising the IRQL (reactos-sync-semantics.md §2.8, §4.2).
// https://learn.microsoft.com/windows-hardware/drivers/kernel/fast-mutexes-and-guarded-mutexes

public typealias KGUARDED_MUTEX = FAST_MUTEX
public typealias PKGUARDED_MUTEX = UnsafeMutablePointer<KGUARDED_MUTEX>

/// Disables all APCs (special kernel APCs too) for the calling thread until the matching
/// KeLeaveGuardedRegion. Regions nest. Call at IRQL ≤ APC_LEVEL.
/// https://learn.microsoft.com/windows-hardware/drivers/ddi/ntddk/nf-ntddk-keenterguardedregion
public func KeEnterGuardedRegion(file: String = #filePath, line: Int = #line) {
    let m = enterKernel("KeEnterGuardedRegion", file, line)
    m.requireApcLte(ddiRule: 0x2_0010, "IrqlKeApcLte2")
    m.current.kthread.pointee.SpecialApcDisable &-= 1
}

/// Leaves a guarded region; APCs come back when the outermost one is left. Leaving a region the
/// thread is not in breaks the DDI rule GuardedRegions (0xC4/0x4000E under Driver Verifier); a
/// free build just counts past zero, to SpecialApcDisable = +1 (KeApc.c:113-133).
/// https://learn.microsoft.com/windows-hardware/drivers/ddi/ntddk/nf-ntddk-keleaveguardedregion
/// https://learn.microsoft.com/windows-hardware/drivers/devtest/wdm-guardedregions
public func KeLeaveGuardedRegion(file: String = #filePath, line: Int = #line) {
    let m = enterKernel("KeLeaveGuardedRegion", file, line)
    let thread = m.current.kthread
    if m.options.verifier && thread.pointee.SpecialApcDisable >= 0 {
        m.bugCheck(DRIVER_VERIFIER_DETECTED_VIOLATION, 0x4_000E, 0, 0, 0,
                   note: "DDI compliance rule GuardedRegions: KeLeaveGuardedRegion without a matching "
                    + "KeEnterGuardedRegion (SpecialApcDisable \(thread.pointee.SpecialApcDisable)).")
    }
    m.requireApcLte(ddiRule: 0x2_0010, "IrqlKeApcLte2")
    m.leaveGuardedRegion()
}

/// Initialises a free guarded mutex: the ExInitializeFastMutex fields (Count = FM_LOCK_BIT).
/// https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-keinitializeguardedmutex
public func KeInitializeGuardedMutex(_ Mutex: PKGUARDED_MUTEX, file: String = #filePath, line: Int = #line) {
    enterKernel("KeInitializeGuardedMutex", file, line).initializeFastMutex(Mutex)
}

/// Enters a guarded region and acquires the mutex, sleeping while another thread owns it. The
/// IRQL does not change and OldIrql is not written. Call at IRQL ≤ APC_LEVEL. Not recursive: a
/// second acquire by the owner deadlocks.
/// https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-keacquireguardedmutex
public func KeAcquireGuardedMutex(_ Mutex: PKGUARDED_MUTEX, file: String = #filePath, line: Int = #line) {
    let m = enterGuardedMutexRoutine("KeAcquireGuardedMutex", Mutex, file, line)
    m.current.kthread.pointee.SpecialApcDisable &-= 1
    m.acquireFastMutex(Mutex, as: .guardedMutex)
}

/// Acquires the mutex inside a guarded region if it is free (TRUE); otherwise leaves the region
/// again and returns FALSE. A failed try does not count as contention.
/// https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-ketrytoacquireguardedmutex
public func KeTryToAcquireGuardedMutex(_ Mutex: PKGUARDED_MUTEX, file: String = #filePath, line: Int = #line) -> BOOLEAN {
    let m = enterGuardedMutexRoutine("KeTryToAcquireGuardedMutex", Mutex, file, line)
    let thread = m.current.kthread
    thread.pointee.SpecialApcDisable &-= 1
    guard m.tryToAcquireFastMutex(Mutex, as: .guardedMutex) else {
        m.leaveGuardedRegion()
        return FALSE
    }
    return TRUE
}

/// Releases the mutex, hands it to the oldest sleeping waiter, and leaves a guarded region.
/// https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-kereleaseguardedmutex
public func KeReleaseGuardedMutex(_ Mutex: PKGUARDED_MUTEX, file: String = #filePath, line: Int = #line) {
    let m = enterGuardedMutexRoutine("KeReleaseGuardedMutex", Mutex, file, line)
    m.releaseFastMutex(Mutex, as: .guardedMutex)
    m.leaveGuardedRegion()
}

/// Acquires the mutex without entering a guarded region: the code up to the matching
/// KeReleaseGuardedMutexUnsafe must run at APC_LEVEL or inside a guarded region. Driver Verifier
/// documents no check for that condition, so only the IRQL ≤ APC_LEVEL rule is enforced.
/// https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-keacquireguardedmutexunsafe
public func KeAcquireGuardedMutexUnsafe(_ Mutex: PKGUARDED_MUTEX, file: String = #filePath, line: Int = #line) {
    enterGuardedMutexRoutine("KeAcquireGuardedMutexUnsafe", Mutex, file, line).acquireFastMutex(Mutex, as: .guardedMutex)
}

/// Releases a mutex without leaving a guarded region.
/// https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-kereleaseguardedmutexunsafe
public func KeReleaseGuardedMutexUnsafe(_ Mutex: PKGUARDED_MUTEX, file: String = #filePath, line: Int = #line) {
    enterGuardedMutexRoutine("KeReleaseGuardedMutexUnsafe", Mutex, file, line).releaseFastMutex(Mutex, as: .guardedMutex)
}

/// The common entry of the KeXxxGuardedMutex routines: all of them fall under the DDI rule
/// IrqlKeApcLte1 (0xC4/0x2000F under Driver Verifier). A free build does not check, and every
/// operation that need not sleep works at DISPATCH_LEVEL and above (KeGuardedMutex.c:404-416).
/// https://learn.microsoft.com/windows-hardware/drivers/devtest/wdm-irqlkeapclte1
private func enterGuardedMutexRoutine(_ routine: String, _ mutex: PKGUARDED_MUTEX,
               _ file: String, _ line: Int) -> Machine {
    let m = enterKernel(routine, file, line)
    m.registerFastMutex(mutex)
    m.requireApcLte(ddiRule: 0x2_000F, "IrqlKeApcLte1")
    return m
}

extension Machine {
    /// KeLeaveGuardedRegionThread: count the region off, then KiCheckForKernelApcDelivery runs the
    /// kernel APCs it held back, if nothing else (IRQL, another region) still does.
    func leaveGuardedRegion() {
        current.kthread.pointee.SpecialApcDisable &+= 1
        deliverApcs()
    }

    /// DDI compliance rules of the IrqlKeApcLteN family: IRQL ≤ APC_LEVEL. P2 would point at the
    /// rule's description string, which the simulator does not have.
    /// https://learn.microsoft.com/windows-hardware/drivers/devtest/ddi-compliance-checking
    func requireApcLte(ddiRule: ULONG_PTR, _ rule: String) {
        guard options.verifier, irql > APC_LEVEL else { return }
        bugCheck(DRIVER_VERIFIER_DETECTED_VIOLATION, ddiRule, 0, 0, 0,
                 note: "DDI compliance rule \(rule): \(current.lastCall!.routine) called at IRQL \(irql).")
    }
}
