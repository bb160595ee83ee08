// Waiting on dispatcher objects (events, kernel mutexes, semaphores, threads), with timeouts in
// simulated time: one engine, modelled on the kernel's KiWaitTest, serves every KeWaitXxx.

/// The `WaitListHead` of the dispatcher object at `object`.
func waitListHead(_ object: UnsafeMutableRawPointer) -> PLIST_ENTRY {
    (object + MemoryLayout<DISPATCHER_HEADER>.offset(of: \.WaitListHead)!).assumingMemoryBound(to: LIST_ENTRY.self)
}

/// Waits until `Object` (a KEVENT, KMUTEX, KSEMAPHORE or thread) is signaled, and takes it (a
/// synchronization event resets, a semaphore counts down, a mutex becomes the caller's), or until
/// `Timeout` expires (negative: relative, in 100 ns units; positive: absolute system time since 1601; zero:
/// just test). Returns STATUS_WAIT_0, STATUS_ABANDONED_WAIT_0 or STATUS_TIMEOUT.
/// https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-kewaitforsingleobject
@discardableResult
public func KeWaitForSingleObject(
    _ Object: PVOID, _ WaitReason: KWAIT_REASON, _ WaitMode: KPROCESSOR_MODE, _ Alertable: BOOLEAN,
    _ Timeout: PLARGE_INTEGER?, file: String = #filePath, line: Int = #line
) -> NTSTATUS {
    let m = enterKernel("KeWaitForSingleObject", file, line)
    guard let object = Object else { fatalError("KeWaitForSingleObject at \(file):\(line): Object is NULL") }
    m.resumeWaitNext()
    m.checkWaitIrql(object: object, timeout: Timeout)
    return m.wait(on: object, timeout: Timeout)
}

extension Machine {
    /// "If Timeout = NULL or *Timeout != 0, the caller must be running at IRQL <= APC_LEVEL";
    /// only a zero timeout (a poll) is allowed at DISPATCH_LEVEL. Driver Verifier checks this at
    /// the call (0xC4/0x120, 0x121, 0x122); without it the fault comes only if the thread must
    /// actually block (see `requireSwitchable`).
    /// https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-kewaitforsingleobject
    func checkWaitIrql(object: UnsafeMutableRawPointer, timeout: PLARGE_INTEGER?) {
        guard options.verifier, irql >= DISPATCH_LEVEL else { return }
        let subcode: ULONG_PTR
        if irql > DISPATCH_LEVEL {
            subcode = 0x120
        } else if let timeout {
            guard timeout.pointee.QuadPart != 0 else { return }
            subcode = 0x122
        } else {
            subcode = 0x121
        }
        let irqlValue = currentProcessor.irqlValue
        irqlValue.pointee = irql
        bugCheck(DRIVER_VERIFIER_DETECTED_VIOLATION, subcode, address(irqlValue), address(object),
                 timeout.map { address($0) } ?? 0, note: "The IRQL was \(irql).")
    }

    /// A thread at DISPATCH_LEVEL or above cannot be switched out: "calling KeWaitForSingleObject
    /// ... to wait for a nonzero interval causes a fatal error". The documented bug check for
    /// "calling a routine that cannot be called at DISPATCH_LEVEL while at DISPATCH_LEVEL" is 0xA.
    /// Inside a DPC routine it is 0xB8, whatever the IRQL (`checkNotInDpc`).
    /// https://learn.microsoft.com/windows-hardware/drivers/kernel/managing-hardware-priorities
    /// https://learn.microsoft.com/windows-hardware/drivers/debugger/bug-check-0xa--irql-not-less-or-equal
    func requireSwitchable(waitingOn object: UnsafeMutableRawPointer?) {
        checkNotInDpc()
        guard irql >= DISPATCH_LEVEL else { return }
        bugCheck(IRQL_NOT_LESS_OR_EQUAL, object.map { address($0) } ?? 0, ULONG_PTR(irql), 0, 0,
                 note: "The thread had to wait (give up its processor) while at IRQL \(irql); "
                    + "no thread switch is possible at DISPATCH_LEVEL or above.")
    }


    /// The wait list of `object`, or a bug check if it was never initialised: the kernel would
    /// follow the NULL links of a zeroed header and fault at raised IRQL.
    func initializedWaitList(_ object: UnsafeMutableRawPointer, writing: Bool) -> PLIST_ENTRY {
        let head = waitListHead(object)
        kernelObject(address(object), size: dispatcherObjectSize(object))
        if head.pointee.Flink == nil || head.pointee.Blink == nil {
            bugCheck(IRQL_NOT_LESS_OR_EQUAL, 0, ULONG_PTR(SYNCH_LEVEL), writing ? 1 : 0, 0,
                     note: "The dispatcher object at \(hex(address(object))) has a NULL wait list: it was "
                        + "never initialised (KeInitializeEvent not called?), so the kernel dereferenced NULL "
                        + "while holding the dispatcher lock.")
        }
        return head
    }

    /// Waits on one dispatcher object, in the thread's first built-in wait block, with an
    /// already-validated IRQL.
    func wait(on object: UnsafeMutableRawPointer, timeout: PLARGE_INTEGER?) -> NTSTATUS {
        wait(for: [object], waitAll: false, blocks: current.builtInWaitBlocks, timeout: timeout)
    }

    /// The wait engine of KeWaitForSingleObject and KeWaitForMultipleObjects. WaitAny returns
    /// STATUS_WAIT_0 + the lowest index it could satisfy; WaitAll returns STATUS_WAIT_0 once every
    /// object can be satisfied at the same moment, and only then takes any of them. Otherwise the
    /// thread links `blocks[i]` (WaitKey i) at the tail of object i's wait list and sleeps until
    /// `waitTest` satisfies it or the timeout expires; a kernel APC that interrupts the sleep runs,
    /// and the wait starts over.
    func wait(for objects: [UnsafeMutableRawPointer], waitAll: Bool, blocks: PKWAIT_BLOCK,
              timeout: PLARGE_INTEGER?) -> NTSTATUS {
        for object in objects { requireWaitable(object) }
        kernelObject(timeout)
        let t = current!
        let deadline = timeout.map { self.deadline(for: $0.pointee) }
        // A zero timeout only polls: like a try-acquire it never waits, so it orders nothing.
        if timeout?.pointee.QuadPart != 0 { mutexesWillBeAcquired(objects, waitAll: waitAll) }
        repeat {
            if let status = satisfy(objects, waitAll: waitAll, for: t) { return status }
            if let deadline, deadline <= clock { return STATUS_TIMEOUT }
            requireSwitchable(waitingOn: objects[0])
            for (key, object) in objects.enumerated() {
                let block = blocks + key
                block.pointee = KWAIT_BLOCK()
                block.pointee.Thread = PKTHREAD(t.kthread)
                block.pointee.Object = object
                block.pointee.WaitKey = USHORT(key)
                block.pointee.WaitType = UCHAR(waitAll ? WaitAll.rawValue : WaitAny.rawValue)
                InsertTailList(waitListHead(object), waitListEntry(of: block))
            }
            t.waitBlockList = blocks
            t.waitBlockCount = objects.count
            t.waitObject = objects[0]
            recordEvent(thread(for: objects[0]).map { .waitForThread($0.id) } ?? .wait(object: address(objects[0])))
            sleep(until: deadline)
        } while kernelApcInterruptedWait()
        return t.waitStatus
    }

    /// KiWaitTest: `object` has just become signaled, so satisfy the waits on it in wait-list (FIFO)
    /// order for as long as it stays signaled. A WaitAny block takes the object; a WaitAll block is
    /// satisfied only if all of its thread's objects can be taken now, and is skipped otherwise.
    func waitTest(_ object: UnsafeMutableRawPointer) {
        happensBefore(address(object))
        let head = initializedWaitList(object, writing: false)
        let header = object.assumingMemoryBound(to: DISPATCHER_HEADER.self)
        var entry = head.pointee.Flink!
        while entry != head && header.pointee.SignalState > 0 {
            let block = UnsafeMutableRawPointer(entry) - MemoryLayout<KWAIT_BLOCK>.offset(of: \.WaitListEntry)!
            let waitBlock = block.assumingMemoryBound(to: KWAIT_BLOCK.self).pointee
            let t = thread(for: waitBlock.Thread)!
            let status = waitBlock.WaitType == UCHAR(WaitAll.rawValue)
                ? satisfy(t.waitObjects, waitAll: true, for: t)
                : take(object, for: t) + NTSTATUS(waitBlock.WaitKey)
            if let status {
                wake(t, status)
                entry = head.pointee.Flink!
            } else {
                entry = entry.pointee.Flink!
            }
        }
    }

    /// Takes the objects for `t` if the wait can be satisfied now; nil if it cannot.
    private func satisfy(_ objects: [UnsafeMutableRawPointer], waitAll: Bool, for t: SimThread) -> NTSTATUS? {
        guard waitAll else {
            guard let key = objects.firstIndex(where: { isSignaled($0, for: t) }) else { return nil }
            return take(objects[key], for: t) + NTSTATUS(key)
        }
        guard objects.allSatisfy({ isSignaled($0, for: t) }) else { return nil }
        let held = t.heldLocks.count
        defer { locksAcquiredTogether(by: t, from: held) }
        return objects.map { take($0, for: t) }.max()!
    }

    /// A mutex its waiter already owns counts as signaled: KMUTEX acquisition is recursive.
    private func isSignaled(_ object: UnsafeMutableRawPointer, for t: SimThread) -> Bool {
        let header = object.assumingMemoryBound(to: DISPATCHER_HEADER.self).pointee
        if header.Type == MutantObject {
            return header.SignalState > 0
                || object.assumingMemoryBound(to: KMUTANT.self).pointee.OwnerThread == UnsafeMutableRawPointer(t.kthread)
        }
        return header.SignalState > 0
    }

    /// Satisfies one wait on a signaled object for `t` (KiSatisfyObjectWait): a synchronization
    /// event resets, a semaphore counts down, a mutex changes owner or recurses; notification
    /// events and threads stay signaled. Returns STATUS_WAIT_0, or STATUS_ABANDONED_WAIT_0 for an
    /// abandoned mutex.
    private func take(_ object: UnsafeMutableRawPointer, for t: SimThread) -> NTSTATUS {
        happensAfter(address(object), in: t)
        let header = object.assumingMemoryBound(to: DISPATCHER_HEADER.self)
        switch header.pointee.Type {
        case MutantObject:
            return acquireMutant(object.assumingMemoryBound(to: KMUTANT.self), for: t)
        case EventSynchronizationObject:
            header.pointee.SignalState = 0
        case SemaphoreObject:
            header.pointee.SignalState -= 1
        default:
            break
        }
        return STATUS_WAIT_0
    }

    /// The size of the dispatcher object at `object`, from its header's type.
    private func dispatcherObjectSize(_ object: UnsafeMutableRawPointer) -> Int {
        switch object.assumingMemoryBound(to: DISPATCHER_HEADER.self).pointee.Type {
        case EventNotificationObject, EventSynchronizationObject: return MemoryLayout<KEVENT>.size
        case MutantObject: return MemoryLayout<KMUTANT>.size
        case SemaphoreObject: return MemoryLayout<KSEMAPHORE>.size
        case ThreadObject: return MemoryLayout<KTHREAD>.size
        default: return MemoryLayout<DISPATCHER_HEADER>.size
        }
    }

    private func requireWaitable(_ object: UnsafeMutableRawPointer) {
        _ = initializedWaitList(object, writing: true)
        switch object.assumingMemoryBound(to: DISPATCHER_HEADER.self).pointee.Type {
        case EventNotificationObject, EventSynchronizationObject, MutantObject, SemaphoreObject, ThreadObject: break
        case let type: fatalError("KernelSim: waiting on dispatcher object type \(type) is not simulated")
        }
    }

    /// The `Wait == TRUE` contract of KeSetEvent, KePulseEvent, KeReleaseMutex and
    /// KeReleaseSemaphore: "the routine returns without lowering the IRQL", and the KeWaitXxx that
    /// must follow "restores the IRQL to its original value". The kernel keeps its dispatcher
    /// lock at SYNCH_LEVEL across the two calls (reactos-sync-semantics.md §2.4; Windows 10's exact
    /// level is undocumented, so SYNCH_LEVEL = 12 is our choice); no thread switch can happen on
    /// this processor in between, which the scheduler already guarantees at ≥ DISPATCH_LEVEL.
    /// https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-kesetevent
    func keepSynchLevelForNextWait() {
        let k = current.kthread
        k.pointee.WaitNext = TRUE
        k.pointee.WaitIrql = irql
        if irql < SYNCH_LEVEL { irql = SYNCH_LEVEL }
    }

    /// The first step of a KeWaitXxx: after a `Wait == TRUE` call, go back to the IRQL that call
    /// was entered at, so the wait's IRQL rules apply to the caller's own IRQL.
    func resumeWaitNext() {
        let k = current.kthread
        guard k.pointee.WaitNext != 0 else { return }
        k.pointee.WaitNext = FALSE
        lowerIrql(to: k.pointee.WaitIrql)
    }
}

/// `&Block->WaitListEntry`.
func waitListEntry(of block: PKWAIT_BLOCK) -> PLIST_ENTRY {
    (UnsafeMutableRawPointer(block) + MemoryLayout<KWAIT_BLOCK>.offset(of: \.WaitListEntry)!)
        .assumingMemoryBound(to: LIST_ENTRY.self)
}

extension SimThread {
    /// The objects of the current wait, in WaitKey order.
    var waitObjects: [UnsafeMutableRawPointer] {
        guard let blocks = waitBlockList else { return [] }
        return (0..<waitBlockCount).map { blocks[$0].Object! }
    }

    /// Takes the thread's wait blocks out of every wait list it is in.
    func unlinkWaitBlocks() {
        if let blocks = waitBlockList {
            for i in 0..<waitBlockCount { RemoveEntryList(waitListEntry(of: blocks + i)) }
        }
        waitBlockList = nil
        waitBlockCount = 0
        waitObject = nil
    }
}
