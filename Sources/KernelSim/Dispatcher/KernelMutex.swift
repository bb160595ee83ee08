// Kernel mutexes (KMUTEX), acquired through the KeWaitXxx routines (reactos-sync-semantics.md §2.6).
// SignalState is 1 when free, 0 when owned once, −n when owned n + 1 times (recursion); the first
// acquisition puts the owner in a critical region (KernelApcDisable −= ApcDisable) and links the
// mutex into the owner's MutantListHead; the last release undoes both.

/// `KMUTANT`, which wdm.h also names `KMUTEX` (x64 layout: 0x38 bytes).
public struct KMUTANT {
    public var Header = DISPATCHER_HEADER()
    /// Links the mutex into its owner's `KTHREAD.MutantListHead`.
    public var MutantListEntry = LIST_ENTRY()
    public var OwnerThread: PKTHREAD?
    public var Abandoned: BOOLEAN = 0
    /// 1 for a KMUTEX: owning it disables normal kernel APCs.
    public var ApcDisable: UCHAR = 0
    public init() {}
}
public typealias KMUTEX = KMUTANT
public typealias PKMUTEX = UnsafeMutablePointer<KMUTEX>
public typealias PRKMUTEX = UnsafeMutablePointer<KMUTEX>

/// Initialises a signaled (free) mutex. `Level` is ignored, as in Windows (KeMutex.c:215-217);
/// `MutantListEntry` and header bytes 1 and 3 are not written.
/// https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-keinitializemutex
public func KeInitializeMutex(_ Mutex: PRKMUTEX, _ Level: ULONG, file: String = #filePath, line: Int = #line) {
    enterKernel("KeInitializeMutex", file, line).kernelObject(Mutex)
    Mutex.pointee.Header.Type = MutantObject
    Mutex.pointee.Header.Size = UCHAR(MemoryLayout<KMUTANT>.stride / 4)
    Mutex.pointee.Header.SignalState = 1
    InitializeListHead(waitListHead(UnsafeMutableRawPointer(Mutex)))
    Mutex.pointee.OwnerThread = nil
    Mutex.pointee.Abandoned = FALSE
    Mutex.pointee.ApcDisable = 1
}

/// The mutex's SignalState: 1 if free, 0 or less while owned.
/// https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-kereadstatemutex
public func KeReadStateMutex(_ Mutex: PRKMUTEX, file: String = #filePath, line: Int = #line) -> LONG {
    _ = enterKernel("KeReadStateMutex", file, line)
    return Mutex.pointee.Header.SignalState
}

/// `#define KeWaitForMutexObject KeWaitForSingleObject` in wdm.h.
/// https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-kewaitformutexobject
@discardableResult
public func KeWaitForMutexObject(
    _ Mutex: PVOID, _ WaitReason: KWAIT_REASON, _ WaitMode: KPROCESSOR_MODE, _ Alertable: BOOLEAN,
    _ Timeout: PLARGE_INTEGER?, file: String = #filePath, line: Int = #line
) -> NTSTATUS {
    KeWaitForSingleObject(Mutex, WaitReason, WaitMode, Alertable, Timeout, file: file, line: line)
}

/// Releases one acquisition of the mutex and returns its previous SignalState (0: it is now free).
/// The last release leaves the owner's critical region and hands the mutex to the oldest waiter.
/// Releasing a mutex the caller does not own raises STATUS_MUTANT_NOT_OWNED (STATUS_ABANDONED if it
/// was abandoned); unhandled, that is bug check 0x7E. `Wait` works as in KeSetEvent.
/// https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-kereleasemutex
@discardableResult
public func KeReleaseMutex(_ Mutex: PRKMUTEX, _ Wait: BOOLEAN, file: String = #filePath, line: Int = #line) -> LONG {
    let m = enterKernel("KeReleaseMutex", file, line)
    m.requireDispatchLte(Mutex)
    let object = UnsafeMutableRawPointer(Mutex)
    _ = m.initializedWaitList(object, writing: true)
    let me = m.current!
    let previous = Mutex.pointee.Header.SignalState
    // ReactOS mutex.c:119-126: the state is left alone and the exception raised.
    guard Mutex.pointee.OwnerThread == UnsafeMutableRawPointer(me.kthread) else {
        let owner = Mutex.pointee.OwnerThread.map { m.thread(for: $0)?.name ?? hex(address($0)) } ?? "no thread"
        m.raiseException(Mutex.pointee.Abandoned != 0 ? STATUS_ABANDONED : STATUS_MUTANT_NOT_OWNED,
                         note: "KeReleaseMutex on KMUTEX \(hex(address(Mutex))), which \(me.name) does not own "
                            + "(owner: \(owner), SignalState \(previous)).")
    }
    // Only the release that frees the mutex (SignalState 0 → 1) releases it for lock order.
    if previous == 0 { m.lockWillBeReleased(lockOf(Mutex)) }
    Mutex.pointee.Header.SignalState = previous + 1
    let released = previous + 1 == 1
    if released {
        RemoveEntryList(mutantListEntry(Mutex))
        Mutex.pointee.OwnerThread = nil
        m.waitTest(object)
    }
    if Wait != 0 { m.keepSynchLevelForNextWait() }
    if released {
        // KeLeaveCriticalRegion (mutex.c:177), which delivers the kernel APCs the mutex held back.
        me.kthread.pointee.KernelApcDisable &+= SHORT(Mutex.pointee.ApcDisable)
        m.deliverApcs()
    }
    return previous
}

/// The mutex as Driver Verifier's deadlock detection tracks it (LockOrder.swift).
private func lockOf(_ mutex: PRKMUTEX) -> KsLock { KsLock(.kernelMutex, address(mutex)) }

/// `&Thread->MutantListHead`.
func mutantListHead(_ thread: UnsafeMutablePointer<KTHREAD>) -> PLIST_ENTRY {
    (UnsafeMutableRawPointer(thread) + MemoryLayout<KTHREAD>.offset(of: \.MutantListHead)!)
        .assumingMemoryBound(to: LIST_ENTRY.self)
}

/// `&Mutex->MutantListEntry`.
func mutantListEntry(_ mutex: PRKMUTEX) -> PLIST_ENTRY {
    (UnsafeMutableRawPointer(mutex) + MemoryLayout<KMUTANT>.offset(of: \.MutantListEntry)!)
        .assumingMemoryBound(to: LIST_ENTRY.self)
}

extension Machine {
    /// KiSatisfyMutantWait for a free mutex or one `t` owns: count down SignalState; the first
    /// acquisition makes `t` the owner, enters its critical region and links the mutex into its
    /// list. A mutex owned MINLONG times raises STATUS_MUTANT_LIMIT_EXCEEDED (wait.c:480-485).
    func acquireMutant(_ mutex: PRKMUTEX, for t: SimThread) -> NTSTATUS {
        if mutex.pointee.Header.SignalState == LONG.min {
            raiseException(STATUS_MUTANT_LIMIT_EXCEEDED,
                           note: "\(t.name) acquired KMUTEX \(hex(address(mutex))) recursively MINLONG times.")
        }
        mutex.pointee.Header.SignalState -= 1
        guard mutex.pointee.Header.SignalState == 0 else { return STATUS_WAIT_0 }
        mutex.pointee.OwnerThread = PKTHREAD(t.kthread)
        lockAcquired(lockOf(mutex), by: t)
        t.kthread.pointee.KernelApcDisable &-= SHORT(mutex.pointee.ApcDisable)
        InsertTailList(mutantListHead(t.kthread), mutantListEntry(mutex))
        guard mutex.pointee.Abandoned != 0 else { return STATUS_WAIT_0 }
        mutex.pointee.Abandoned = FALSE
        return STATUS_ABANDONED_WAIT_0
    }

    /// Deadlock Detection for a KeWaitXxx that may block: each KMUTEX the wait will take that the
    /// caller does not own yet is checked and ordered as an acquisition (`lockWillBeAcquired`).
    /// One the caller owns is a legal recursive acquire and orders nothing. A WaitAny over several
    /// objects is skipped: which object it takes is known only when it is satisfied, possibly in
    /// another thread's release, and Microsoft does not document how Verifier orders it; the mutex
    /// still counts as held once taken.
    func mutexesWillBeAcquired(_ objects: [UnsafeMutableRawPointer], waitAll: Bool) {
        guard options.verifier, waitAll || objects.count == 1 else { return }
        for object in objects where object.assumingMemoryBound(to: DISPATCHER_HEADER.self).pointee.Type == MutantObject {
            let mutex = object.assumingMemoryBound(to: KMUTANT.self)
            if mutex.pointee.OwnerThread != PKTHREAD(current.kthread) { lockWillBeAcquired(lockOf(mutex)) }
        }
    }

    /// The KMUTEXes `t` owns, oldest first.
    func ownedMutexes(_ t: SimThread) -> [PRKMUTEX] {
        let head = mutantListHead(t.kthread)
        var result: [PRKMUTEX] = []
        var entry = head.pointee.Flink!
        while entry != head {
            let mutex = UnsafeMutableRawPointer(entry) - MemoryLayout<KMUTANT>.offset(of: \.MutantListEntry)!
            result.append(mutex.assumingMemoryBound(to: KMUTANT.self))
            entry = entry.pointee.Flink!
        }
        return result
    }

    /// KeRundownThread: a thread that ends owning a KMUTEX brings the system down. It runs after
    /// PspExitThread's CombinedApcDisable check (0x20), which a held KMUTEX already trips because its
    /// acquisition entered a critical region; so this fires when that count was balanced anyway.
    /// https://learn.microsoft.com/windows-hardware/drivers/debugger/bug-check-0x4000008a--thread-terminate-held-mutex
    func rundownMutants() {
        let t = current!
        guard let mutex = ownedMutexes(t).first else { return }
        bugCheck(THREAD_TERMINATE_HELD_MUTEX, address(t.kthread), address(mutex), 0, 0,
                 note: "\(t.name) ended owning KMUTEX \(hex(address(mutex))) (SignalState "
                    + "\(mutex.pointee.Header.SignalState)); every acquisition needs a KeReleaseMutex.")
    }

    /// For the 0x20 report: which held KMUTEXes account for a nonzero KernelApcDisable.
    func heldMutexesNote(_ t: SimThread) -> String {
        let held = ownedMutexes(t)
        guard !held.isEmpty else { return "" }
        return " It still owns KMUTEX " + held.map { hex(address($0)) }.joined(separator: ", ")
            + ": acquiring a KMUTEX enters a critical region, and only its last KeReleaseMutex leaves it."
    }
}
