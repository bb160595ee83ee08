// Fast mutexes, with the Windows 8+ lock-bit encoding of Count (reactos-sync-semantics.md §2.7.B),
// which guarded mutexes (GuardedMutex.swift) share:
// Count = (free ? FM_LOCK_BIT : 0) | (a woken waiter is in flight ? FM_LOCK_WAITER_WOKEN : 0)
//         + FM_LOCK_WAITER_INC × sleeping waiters.
// Each interlocked operation on Count is its own scheduling step, so other threads can observe
// every intermediate value, and waiters sleep on the mutex's own KEVENT.

public let FM_LOCK_BIT: LONG = 0x1
public let FM_LOCK_BIT_V: LONG = 0x0
public let FM_LOCK_WAITER_WOKEN: LONG = 0x2
public let FM_LOCK_WAITER_INC: LONG = 0x4

public struct FAST_MUTEX {
    public var Count: LONG = 0
    /// The owning thread (a PKTHREAD), or nil.
    public var Owner: PVOID = nil
    /// The number of contended acquisitions; never reset.
    public var Contention: ULONG = 0
    /// A SynchronizationEvent that sleeping waiters wait on.
    public var Event = KEVENT()
    /// The IRQL saved by ExAcquireFastMutex / ExTryToAcquireFastMutex, restored by the release.
    public var OldIrql: ULONG = 0
    public init() {}
}
public typealias PFAST_MUTEX = UnsafeMutablePointer<FAST_MUTEX>

/// The wdm.h inline: Count = FM_LOCK_BIT, Owner = NULL, Contention = 0, and a non-signaled
/// synchronization event. OldIrql is left as it was.
/// https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-exinitializefastmutex
public func ExInitializeFastMutex(_ FastMutex: PFAST_MUTEX, file: String = #filePath, line: Int = #line) {
    enterKernel("ExInitializeFastMutex", file, line).initializeFastMutex(FastMutex)
}

/// Raises to APC_LEVEL and acquires the mutex, sleeping while another thread owns it.
/// Call at IRQL ≤ APC_LEVEL. Not recursive: a second acquire by the owner deadlocks.
/// https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-exacquirefastmutex
public func ExAcquireFastMutex(_ FastMutex: PFAST_MUTEX, file: String = #filePath, line: Int = #line) {
    let m = enterKernel("ExAcquireFastMutex", file, line)
    m.registerFastMutex(FastMutex)
    if m.options.verifier && m.irql > APC_LEVEL {
        m.bugCheck(DRIVER_VERIFIER_DETECTED_VIOLATION, 0x33, ULONG_PTR(m.irql), address(FastMutex), 0)
    }
    // A plain CR8 write: on a free build an acquire at DISPATCH_LEVEL lowers to APC_LEVEL (kmtest item 3).
    let old = m.irql
    m.irql = APC_LEVEL
    m.acquireFastMutex(FastMutex, as: .fastMutex)
    FastMutex.pointee.OldIrql = ULONG(old)
}

/// Acquires the mutex at APC_LEVEL if it is free; returns TRUE then, else FALSE with the IRQL
/// unchanged. A failed try does not count as contention.
/// https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-extrytoacquirefastmutex
public func ExTryToAcquireFastMutex(_ FastMutex: PFAST_MUTEX, file: String = #filePath, line: Int = #line) -> BOOLEAN {
    let m = enterKernel("ExTryToAcquireFastMutex", file, line)
    m.registerFastMutex(FastMutex)
    // Verifier's automatic check "acquiring or releasing a fast mutex with IRQL > APC_LEVEL" covers
    // the try as well (DDI rule IrqlExApcLte1 names both routines).
    // https://learn.microsoft.com/windows-hardware/drivers/devtest/wdm-irqlexapclte1
    if m.options.verifier && m.irql > APC_LEVEL {
        m.bugCheck(DRIVER_VERIFIER_DETECTED_VIOLATION, 0x33, ULONG_PTR(m.irql), address(FastMutex), 0)
    }
    let old = m.irql
    m.irql = APC_LEVEL
    guard m.tryToAcquireFastMutex(FastMutex, as: .fastMutex) else {
        m.irql = old
        return FALSE
    }
    FastMutex.pointee.OldIrql = ULONG(old)
    return TRUE
}

/// Releases the mutex, hands it to the oldest sleeping waiter, and lowers to the saved IRQL.
/// Must be called at APC_LEVEL by the thread that acquired it.
/// https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-exreleasefastmutex
public func ExReleaseFastMutex(_ FastMutex: PFAST_MUTEX, file: String = #filePath, line: Int = #line) {
    let m = enterKernel("ExReleaseFastMutex", file, line)
    m.registerFastMutex(FastMutex)
    if m.options.verifier && m.irql != APC_LEVEL {
        m.bugCheck(DRIVER_VERIFIER_DETECTED_VIOLATION, 0x34, ULONG_PTR(m.irql),
                   ULONG_PTR(m.current.kthread.pointee.CombinedApcDisable), address(FastMutex))
    }
    let old = KIRQL(truncatingIfNeeded: FastMutex.pointee.OldIrql)
    m.releaseFastMutex(FastMutex, as: .fastMutex)
    m.irql = old
}

/// Acquires the mutex without changing the IRQL. Call at APC_LEVEL or inside a critical region.
/// https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-exacquirefastmutexunsafe
public func ExAcquireFastMutexUnsafe(_ FastMutex: PFAST_MUTEX, file: String = #filePath, line: Int = #line) {
    let m = enterKernel("ExAcquireFastMutexUnsafe", file, line)
    m.registerFastMutex(FastMutex)
    m.checkUnsafeContext(FastMutex, subcode: 0x39)
    m.acquireFastMutex(FastMutex, as: .fastMutex)
}

/// Releases a mutex taken with ExAcquireFastMutexUnsafe, without changing the IRQL.
/// https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-exreleasefastmutexunsafe
public func ExReleaseFastMutexUnsafe(_ FastMutex: PFAST_MUTEX, file: String = #filePath, line: Int = #line) {
    let m = enterKernel("ExReleaseFastMutexUnsafe", file, line)
    m.registerFastMutex(FastMutex)
    m.checkUnsafeContext(FastMutex, subcode: 0x3A)
    m.releaseFastMutex(FastMutex, as: .fastMutex)
}

/// The mutex as Driver Verifier's deadlock detection tracks it (LockOrder.swift): a fast or a
/// guarded mutex, whichever routine family the caller used.
private func lockOf(_ mutex: PFAST_MUTEX, _ kind: KsLockKind) -> KsLock { KsLock(kind, address(mutex)) }

/// The fast mutex's embedded event.
func eventOf(_ mutex: PFAST_MUTEX) -> PRKEVENT {
    (UnsafeMutableRawPointer(mutex) + MemoryLayout<FAST_MUTEX>.offset(of: \.Event)!).assumingMemoryBound(to: KEVENT.self)
}

extension Machine {
    /// The body of ExInitializeFastMutex and KeInitializeGuardedMutex.
    func initializeFastMutex(_ mutex: PFAST_MUTEX) {
        kernelObject(mutex)
        registerFastMutex(mutex)
        setCount(mutex, FM_LOCK_BIT)
        mutex.pointee.Owner = nil
        mutex.pointee.Contention = 0
        initializeEvent(eventOf(mutex), SynchronizationEvent, FALSE)
    }

    /// Takes the mutex (sleeping while it is owned) and records the caller as its owner. `kind`
    /// is what lock order reports it as: guarded mutexes share this code (they are fast mutexes
    /// since Windows 8) but are acquired through the KeXxxGuardedMutex routines.
    func acquireFastMutex(_ mutex: PFAST_MUTEX, as kind: KsLockKind) {
        lockWillBeAcquired(lockOf(mutex, kind))
        acquireCount(mutex)
        mutex.pointee.Owner = UnsafeMutableRawPointer(current.kthread)
        lockAcquired(lockOf(mutex, kind))
    }

    /// Takes the mutex only if it is free; a failed try does not count as contention.
    func tryToAcquireFastMutex(_ mutex: PFAST_MUTEX, as kind: KsLockKind) -> Bool {
        guard testAndResetLockBit(mutex) else { return false }
        mutex.pointee.Owner = UnsafeMutableRawPointer(current.kthread)
        lockAcquired(lockOf(mutex, kind))
        return true
    }

    /// Clears the owner and frees the mutex, handing it to the oldest sleeping waiter.
    /// Verifier's release checks (0x1003, 0x1004, 0x1007) are in `lockWillBeReleased`.
    func releaseFastMutex(_ mutex: PFAST_MUTEX, as kind: KsLockKind) {
        lockWillBeReleased(lockOf(mutex, kind))
        mutex.pointee.Owner = nil
        releaseCount(mutex)
    }

    /// Writes Count and records the change, so tests and reports can replay every value it took.
    func setCount(_ mutex: PFAST_MUTEX, _ value: LONG) {
        guard mutex.pointee.Count != value else { return }
        mutex.pointee.Count = value
        countTrace.append((mutex, value))
    }

    /// The Unsafe variants need APC_LEVEL, or PASSIVE_LEVEL inside a critical or guarded region
    /// (APCs disabled by the counters); Driver Verifier reports 0xC4/0x39 (acquire), 0x3A (release).
    /// https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-exacquirefastmutexunsafe
    fileprivate func checkUnsafeContext(_ mutex: PFAST_MUTEX, subcode: ULONG_PTR) {
        let apcDisable = current.kthread.pointee.CombinedApcDisable
        guard options.verifier, irql > APC_LEVEL || (irql < APC_LEVEL && apcDisable == 0) else { return }
        bugCheck(DRIVER_VERIFIER_DETECTED_VIOLATION, subcode, ULONG_PTR(irql), ULONG_PTR(apcDisable), address(mutex))
    }

    /// `InterlockedBitTestAndReset(&Count, FM_LOCK_BIT_V)`: true if the lock bit was set (we own it).
    fileprivate func testAndResetLockBit(_ mutex: PFAST_MUTEX) -> Bool {
        schedulingPoint()
        let old = mutex.pointee.Count
        setCount(mutex, old & ~FM_LOCK_BIT)
        return old & FM_LOCK_BIT != 0
    }

    /// `InterlockedCompareExchange` on Count as its own step, after a step that read `expected`.
    private func compareExchangeCount(_ mutex: PFAST_MUTEX, _ new: LONG, _ expected: LONG) -> Bool {
        schedulingPoint()
        guard mutex.pointee.Count == expected else { return false }
        setCount(mutex, new)
        return true
    }

    /// The Count side of acquisition: the fast path, or the slow path that registers as a waiter,
    /// sleeps on the mutex's event, and retries as the woken waiter.
    fileprivate func acquireCount(_ mutex: PFAST_MUTEX) {
        if testAndResetLockBit(mutex) { return }
        mutex.pointee.Contention &+= 1
        var remove = FM_LOCK_BIT
        var add = FM_LOCK_WAITER_INC
        while true {
            schedulingPoint()
            let count = mutex.pointee.Count
            if count & FM_LOCK_BIT != 0 {
                if compareExchangeCount(mutex, count ^ remove, count) { return }
            } else if compareExchangeCount(mutex, count + add, count) {
                _ = wait(on: UnsafeMutableRawPointer(eventOf(mutex)), timeout: nil)
                // Adding WOKEN while the woken bit is set re-registers as a sleeper and clears it.
                remove = FM_LOCK_BIT | FM_LOCK_WAITER_WOKEN
                add = FM_LOCK_WAITER_WOKEN
            }
        }
    }

    /// The Count side of release: set the lock bit; if waiters sleep and none is already woken,
    /// move one from "sleeping" to "woken" and signal the event (which wakes the oldest).
    fileprivate func releaseCount(_ mutex: PFAST_MUTEX) {
        schedulingPoint()
        let old = mutex.pointee.Count
        setCount(mutex, old &+ FM_LOCK_BIT)
        guard old != 0 && old & FM_LOCK_WAITER_WOKEN == 0 else { return }
        let released = old + FM_LOCK_BIT
        if compareExchangeCount(mutex, released - FM_LOCK_WAITER_INC + FM_LOCK_WAITER_WOKEN, released) {
            _ = setEvent(eventOf(mutex))
        }
    }
}
