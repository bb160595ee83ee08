// In-stack queued spin locks (reactos-sync-semantics.md §1.2, §2.3, item 77). The lock word holds
// the tail of a queue of KSPIN_LOCK_QUEUE entries that live in the callers' KLOCK_QUEUE_HANDLEs:
// an acquirer swaps itself in as the tail and, if there was one, links behind it and spins on its
// own entry until the releaser hands ownership down the queue, so waiters get the lock in FIFO
// order. Each interlocked step is its own scheduling point.
// https://learn.microsoft.com/windows-hardware/drivers/kernel/queued-spin-locks

/// Bit 0 of `KSPIN_LOCK_QUEUE.Lock`: the entry is waiting for the lock.
public let LOCK_QUEUE_WAIT: ULONG_PTR = 1
/// Bit 1 of `KSPIN_LOCK_QUEUE.Lock`: the entry owns the lock.
public let LOCK_QUEUE_OWNER: ULONG_PTR = 2

public struct KSPIN_LOCK_QUEUE {
    /// The entry queued behind this one, or nil.
    public var Next: PKSPIN_LOCK_QUEUE?
    /// The spin lock, with LOCK_QUEUE_WAIT / LOCK_QUEUE_OWNER in its low bits.
    public var Lock: PKSPIN_LOCK?
    public init() {}
}
public typealias PKSPIN_LOCK_QUEUE = UnsafeMutablePointer<KSPIN_LOCK_QUEUE>

/// The caller's queue entry and saved IRQL; it must stay at the same address (typically on the
/// stack) from the acquire to the release.
public struct KLOCK_QUEUE_HANDLE {
    public var LockQueue = KSPIN_LOCK_QUEUE()
    public var OldIrql: KIRQL = 0
    public init() {}
}
public typealias PKLOCK_QUEUE_HANDLE = UnsafeMutablePointer<KLOCK_QUEUE_HANDLE>

/// Raises to DISPATCH_LEVEL (saving the previous IRQL in `LockHandle.OldIrql`) and acquires the
/// lock in FIFO order. Call at IRQL ≤ DISPATCH_LEVEL. Do not mix with the ordinary KeXxxSpinLock
/// routines on the same lock.
/// https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-keacquireinstackqueuedspinlock
public func KeAcquireInStackQueuedSpinLock(_ SpinLock: PKSPIN_LOCK, _ LockHandle: PKLOCK_QUEUE_HANDLE,
                                           file: String = #filePath, line: Int = #line) {
    let m = enterKernel("KeAcquireInStackQueuedSpinLock", file, line)
    m.prepare(LockHandle, for: SpinLock)
    LockHandle.pointee.OldIrql = m.raiseIrql(to: DISPATCH_LEVEL)
    m.acquireQueuedSpinLock(SpinLock, queue(of: LockHandle))
}

/// Acquires the lock without changing the IRQL; the caller is already at DISPATCH_LEVEL.
/// `OldIrql` is not written. No Driver Verifier check of the IRQL is documented for it.
/// https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-keacquireinstackqueuedspinlockatdpclevel
public func KeAcquireInStackQueuedSpinLockAtDpcLevel(_ SpinLock: PKSPIN_LOCK, _ LockHandle: PKLOCK_QUEUE_HANDLE,
                                                     file: String = #filePath, line: Int = #line) {
    let m = enterKernel("KeAcquireInStackQueuedSpinLockAtDpcLevel", file, line)
    m.prepare(LockHandle, for: SpinLock)
    m.acquireQueuedSpinLock(SpinLock, queue(of: LockHandle))
}

/// Releases the lock (to the next queued waiter, if any) and lowers to `LockHandle.OldIrql`.
/// https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-kereleaseinstackqueuedspinlock
public func KeReleaseInStackQueuedSpinLock(_ LockHandle: PKLOCK_QUEUE_HANDLE, file: String = #filePath, line: Int = #line) {
    let m = enterKernel("KeReleaseInStackQueuedSpinLock", file, line)
    m.releaseQueuedSpinLock(queue(of: LockHandle))
    m.lowerIrql(to: LockHandle.pointee.OldIrql)
}

/// Releases a lock taken with KeAcquireInStackQueuedSpinLockAtDpcLevel, without changing the IRQL.
/// https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-kereleaseinstackqueuedspinlockfromdpclevel
public func KeReleaseInStackQueuedSpinLockFromDpcLevel(_ LockHandle: PKLOCK_QUEUE_HANDLE,
                                                       file: String = #filePath, line: Int = #line) {
    let m = enterKernel("KeReleaseInStackQueuedSpinLockFromDpcLevel", file, line)
    m.releaseQueuedSpinLock(queue(of: LockHandle))
}

/// `&LockHandle->LockQueue`.
private func queue(of handle: PKLOCK_QUEUE_HANDLE) -> PKSPIN_LOCK_QUEUE {
    (UnsafeMutableRawPointer(handle) + MemoryLayout<KLOCK_QUEUE_HANDLE>.offset(of: \.LockQueue)!)
        .assumingMemoryBound(to: KSPIN_LOCK_QUEUE.self)
}

/// `entry->Lock` with the given low bits set and cleared.
private func setBits(_ entry: PKSPIN_LOCK_QUEUE, _ set: ULONG_PTR, clearing clear: ULONG_PTR = 0) {
    entry.pointee.Lock = PKSPIN_LOCK(bitPattern: (ULONG_PTR(bitPattern: entry.pointee.Lock) | set) & ~clear)
}

extension Machine {
    /// KxAcquireQueuedSpinLock: swap our entry in as the tail; with a predecessor, mark ourselves
    /// waiting, link behind it and spin until it hands us LOCK_QUEUE_OWNER.
    /// The caller's handle, on its stack, now stands for its place in `lock`'s queue; the kernel
    /// owns it until the release.
    fileprivate func prepare(_ handle: PKLOCK_QUEUE_HANDLE, for lock: PKSPIN_LOCK) {
        kernelObject(handle)
        handle.pointee.LockQueue.Next = nil
        handle.pointee.LockQueue.Lock = lock
    }

    fileprivate func acquireQueuedSpinLock(_ lock: PKSPIN_LOCK, _ entry: PKSPIN_LOCK_QUEUE) {
        schedulingPoint()
        if lock.pointee == 1 { queuedAcquireOfOrdinaryLock(lock) }
        lockWillBeAcquired(KsLock(.queuedSpinLock, address(lock)))
        if lock.pointee != 0 && spinLockOwners[lock] === current {
            // As for ordinary spin locks: Windows documents 0xF for a recursive request (Verifier
            // has already reported 0xC4/0x1000 above).
            bugCheck(SPIN_LOCK_ALREADY_OWNED, address(lock), 0, 0, 0,
                     note: "\(current.name) already holds this spin lock; a queued acquire would wait behind itself forever.")
        }
        let tail = lock.pointee
        lock.pointee = address(entry)
        if let predecessor = PKSPIN_LOCK_QUEUE(bitPattern: tail) {
            setBits(entry, LOCK_QUEUE_WAIT)
            schedulingPoint()
            predecessor.pointee.Next = entry
            while ULONG_PTR(bitPattern: entry.pointee.Lock) & LOCK_QUEUE_WAIT != 0 { schedulingPoint() }
        } else {
            setBits(entry, LOCK_QUEUE_OWNER)
        }
        spinLockOwners[lock] = current
        lockAcquired(KsLock(.queuedSpinLock, address(lock)))
        pool.trim()  // Force IRQL Checking trims on every spin lock acquisition, even at DISPATCH_LEVEL
    }

    /// KxReleaseQueuedSpinLock: give up ownership; if nobody is queued behind us, swing the lock
    /// word from our entry back to 0, else (waiting for a late successor to link itself) flip the
    /// successor's WAIT bit to OWNER.
    fileprivate func releaseQueuedSpinLock(_ entry: PKSPIN_LOCK_QUEUE) {
        let bits = ULONG_PTR(bitPattern: entry.pointee.Lock)
        let lock = PKSPIN_LOCK(bitPattern: bits & ~(LOCK_QUEUE_WAIT | LOCK_QUEUE_OWNER))
        // As KeReleaseSpinLock: Verifier's release checks (0x1003, 0x1004, 0x1007) come first;
        // without them, releasing a lock this handle does not hold is 0x10.
        if let lock { lockWillBeReleased(KsLock(.queuedSpinLock, address(lock))) }
        guard let lock, bits & LOCK_QUEUE_OWNER != 0, spinLockOwners[lock] === current else {
            bugCheck(SPIN_LOCK_NOT_OWNED, bits & ~(LOCK_QUEUE_WAIT | LOCK_QUEUE_OWNER), 0, 0, 0,
                     note: "KLOCK_QUEUE_HANDLE \(hex(address(entry))) does not own its spin lock: it was never "
                        + "acquired, or was already released.")
        }
        setBits(entry, 0, clearing: LOCK_QUEUE_OWNER)
        spinLockOwners[lock] = nil
        schedulingPoint()
        if entry.pointee.Next == nil && lock.pointee == address(entry) {
            lock.pointee = 0
            return
        }
        while entry.pointee.Next == nil { schedulingPoint() }
        setBits(entry.pointee.Next!, LOCK_QUEUE_OWNER, clearing: LOCK_QUEUE_WAIT)
        entry.pointee.Next = nil
    }

    /// A queued acquire of a lock held through KeAcquireSpinLock. Driver Verifier's deadlock
    /// detection flags one KSPIN_LOCK used both ways (0xC4/0x1008, "acquired with an API that does
    /// not match its type"). Without it, the exchange returns the ordinary lock's 1 as the
    /// "previous tail", and writing `tail->Next` faults on address 1 at DISPATCH_LEVEL: 0xA.
    /// https://learn.microsoft.com/windows-hardware/drivers/devtest/deadlock-detection
    private func queuedAcquireOfOrdinaryLock(_ lock: PKSPIN_LOCK) -> Never {
        let note = "KSPIN_LOCK \(hex(address(lock))) is held through KeAcquireSpinLock (lock word 1) and was "
            + "acquired as an in-stack queued spin lock: \"Drivers must not mix calls to the queued spin lock "
            + "routines and the ordinary KeXxxSpinLock routines on the same spin lock.\""
        if options.verifier { bugCheck(DRIVER_VERIFIER_DETECTED_VIOLATION, 0x1008, address(lock), 0, 0, note: note) }
        bugCheck(IRQL_NOT_LESS_OR_EQUAL, 1, ULONG_PTR(irql), 1, 0, note: note)
    }
}
