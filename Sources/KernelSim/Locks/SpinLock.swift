// Executive spin locks with x64 multiprocessor semantics: the lock word is 0 when free and 1 when
// held; acquiring raises to DISPATCH_LEVEL, so the holder keeps its processor until it releases.

public typealias KSPIN_LOCK = ULONG_PTR
public typealias PKSPIN_LOCK = UnsafeMutablePointer<KSPIN_LOCK>

/// Sets the lock word to 0 (free).
/// https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-keinitializespinlock
public func KeInitializeSpinLock(_ SpinLock: PKSPIN_LOCK, file: String = #filePath, line: Int = #line) {
    let m = enterKernel("KeInitializeSpinLock", file, line)
    m.kernelObject(SpinLock)
    m.spinLockOwners[SpinLock] = nil
    SpinLock.pointee = 0
}

/// Raises to DISPATCH_LEVEL, saves the previous IRQL in `*OldIrql`, and spins until the lock is free.
/// https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-keacquirespinlock
public func KeAcquireSpinLock(_ SpinLock: PKSPIN_LOCK, _ OldIrql: PKIRQL, file: String = #filePath, line: Int = #line) {
    let m = enterKernel("KeAcquireSpinLock", file, line)
    m.kernelObject(OldIrql)
    OldIrql.pointee = m.acquireSpinLockRaisingToDpc(SpinLock)
}

/// KeAcquireSpinLock returning the previous IRQL; on x64, KeAcquireSpinLock is a macro for it.
/// https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-keacquirespinlockraisetodpc
public func KeAcquireSpinLockRaiseToDpc(_ SpinLock: PKSPIN_LOCK, file: String = #filePath, line: Int = #line) -> KIRQL {
    enterKernel("KeAcquireSpinLockRaiseToDpc", file, line).acquireSpinLockRaisingToDpc(SpinLock)
}

/// Releases the lock and lowers to `NewIrql`, the value KeAcquireSpinLock saved. Call at DISPATCH_LEVEL.
/// https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-kereleasespinlock
public func KeReleaseSpinLock(_ SpinLock: PKSPIN_LOCK, _ NewIrql: KIRQL, file: String = #filePath, line: Int = #line) {
    let m = enterKernel("KeReleaseSpinLock", file, line)
    if m.options.verifier && m.irql != DISPATCH_LEVEL {
        m.bugCheck(DRIVER_VERIFIER_DETECTED_VIOLATION, 0x32, ULONG_PTR(m.irql), address(SpinLock), 0)
    }
    m.releaseSpinLock(SpinLock)
    m.lowerIrql(to: NewIrql)
}

/// Acquires the lock without changing the IRQL; the caller must already be at DISPATCH_LEVEL.
/// https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-keacquirespinlockatdpclevel
public func KeAcquireSpinLockAtDpcLevel(_ SpinLock: PKSPIN_LOCK, file: String = #filePath, line: Int = #line) {
    let m = enterKernel("KeAcquireSpinLockAtDpcLevel", file, line)
    m.requireDispatchLevel(SpinLock, subcode: 0x40)
    m.acquireSpinLock(SpinLock)
}

/// Releases a lock taken with KeAcquireSpinLockAtDpcLevel, without changing the IRQL.
/// https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-kereleasespinlockfromdpclevel
public func KeReleaseSpinLockFromDpcLevel(_ SpinLock: PKSPIN_LOCK, file: String = #filePath, line: Int = #line) {
    let m = enterKernel("KeReleaseSpinLockFromDpcLevel", file, line)
    m.requireDispatchLevel(SpinLock, subcode: 0x41)
    m.releaseSpinLock(SpinLock)
}

/// Acquires the lock if it is free (TRUE), else returns FALSE at once. Call at DISPATCH_LEVEL.
/// https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-ketrytoacquirespinlockatdpclevel
public func KeTryToAcquireSpinLockAtDpcLevel(_ SpinLock: PKSPIN_LOCK, file: String = #filePath, line: Int = #line) -> BOOLEAN {
    let m = enterKernel("KeTryToAcquireSpinLockAtDpcLevel", file, line)
    m.requireDispatchLevel(SpinLock, subcode: 0x40)
    guard SpinLock.pointee == 0 else { return FALSE }
    m.takeSpinLock(SpinLock)
    return TRUE
}

/// TRUE if the lock word is 0. "It is a test for value == 0, not for bit 0" (KeSpinLock.c:384-394).
/// https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-ketestspinlock
public func KeTestSpinLock(_ SpinLock: PKSPIN_LOCK, file: String = #filePath, line: Int = #line) -> BOOLEAN {
    _ = enterKernel("KeTestSpinLock", file, line)
    return SpinLock.pointee == 0 ? TRUE : FALSE
}

extension Machine {
    fileprivate func acquireSpinLockRaisingToDpc(_ lock: PKSPIN_LOCK) -> KIRQL {
        if options.verifier && irql > DISPATCH_LEVEL {
            bugCheck(DRIVER_VERIFIER_DETECTED_VIOLATION, 0x42, ULONG_PTR(irql), address(lock), 0)
        }
        let old = irql
        irql = DISPATCH_LEVEL
        acquireSpinLock(lock)
        return old
    }

    /// The AtDpcLevel/FromDpcLevel routines need DISPATCH_LEVEL: Verifier reports 0xC4/0x40
    /// (acquire) and 0x41 (release) below it.
    fileprivate func requireDispatchLevel(_ lock: PKSPIN_LOCK, subcode: ULONG_PTR) {
        if options.verifier && irql < DISPATCH_LEVEL {
            bugCheck(DRIVER_VERIFIER_DETECTED_VIOLATION, subcode, ULONG_PTR(irql), address(lock), 0)
        }
    }

    /// Spins until the lock is free, one scheduling step per test so the holder gets to run.
    /// A recursive acquire can never succeed: Windows documents 0xF for it, which Verifier's
    /// Deadlock Detection pre-empts with 0xC4/0x1000 (in `lockWillBeAcquired`).
    /// https://learn.microsoft.com/windows-hardware/drivers/debugger/bug-check-0xf--spin-lock-already-owned
    func acquireSpinLock(_ lock: PKSPIN_LOCK) {
        // A word other than 0 or 1 is the tail of an in-stack queued acquisition: Deadlock Detection
        // flags the mixed use as "acquired with an API that does not match its type".
        // https://learn.microsoft.com/windows-hardware/drivers/devtest/deadlock-detection
        if options.verifier && lock.pointee > 1 {
            bugCheck(DRIVER_VERIFIER_DETECTED_VIOLATION, 0x1008, address(lock), 0, 0,
                     note: "KSPIN_LOCK \(hex(address(lock))) is held as an in-stack queued spin lock and was acquired "
                        + "with an ordinary KeXxxSpinLock routine.")
        }
        lockWillBeAcquired(KsLock(.spinLock, address(lock)))
        if lock.pointee != 0 && spinLockOwners[lock] === current {
            bugCheck(SPIN_LOCK_ALREADY_OWNED, address(lock), 0, 0, 0)
        }
        while lock.pointee != 0 { schedulingPoint(yielding: true) }
        takeSpinLock(lock)
    }

    fileprivate func takeSpinLock(_ lock: PKSPIN_LOCK) {
        pool.trim()  // Force IRQL Checking trims on every spin lock acquisition, even at DISPATCH_LEVEL
        lock.pointee = 1
        spinLockOwners[lock] = current
        lockAcquired(KsLock(.spinLock, address(lock)))
    }

    /// Releasing a lock that is free, or that another thread holds, is 0x10 (P1 = lock, as in
    /// ReactOS's debug build). https://learn.microsoft.com/windows-hardware/drivers/debugger/bug-check-0x10--spin-lock-not-owned
    func releaseSpinLock(_ lock: PKSPIN_LOCK) {
        lockWillBeReleased(KsLock(.spinLock, address(lock)))
        if lock.pointee == 0 || spinLockOwners[lock] !== current {
            bugCheck(SPIN_LOCK_NOT_OWNED, address(lock), 0, 0, 0)
        }
        lock.pointee = 0
        spinLockOwners[lock] = nil
    }
}
