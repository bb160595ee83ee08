// Waiting on dispatcher objects (events and threads), with timeouts in simulated time.

/// The `WaitListHead` of the dispatcher object at `object`.
func waitListHead(_ object: UnsafeMutableRawPointer) -> PLIST_ENTRY {
    (object + MemoryLayout<DISPATCHER_HEADER>.offset(of: \.WaitListHead)!).assumingMemoryBound(to: LIST_ENTRY.self)
}

/// Waits until `Object` (a KEVENT or a thread) is signaled, or until `Timeout` expires
/// (negative: relative, in 100 ns units; positive: absolute simulated time; zero: just test).
/// Returns STATUS_WAIT_0 or STATUS_TIMEOUT.
/// https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-kewaitforsingleobject
@discardableResult
public func KeWaitForSingleObject(
    _ Object: PVOID, _ WaitReason: KWAIT_REASON, _ WaitMode: KPROCESSOR_MODE, _ Alertable: BOOLEAN,
    _ Timeout: PLARGE_INTEGER?, file: String = #filePath, line: Int = #line
) -> NTSTATUS {
    let m = enterKernel("KeWaitForSingleObject", file, line)
    guard let object = Object else { fatalError("KeWaitForSingleObject at \(file):\(line): Object is NULL") }
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
        bugCheck(DRIVER_VERIFIER_DETECTED_VIOLATION, subcode, ULONG_PTR(irql), address(object),
                 timeout.map { address($0) } ?? 0)
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

    /// The simulated time at which a KeWaitXxx/KeDelayExecutionThread interval ends.
    func deadline(for interval: LARGE_INTEGER) -> LONGLONG {
        interval.QuadPart < 0 ? clock - interval.QuadPart : interval.QuadPart
    }

    /// The wait list of `object`, or a bug check if it was never initialised: the kernel would
    /// follow the NULL links of a zeroed header and fault at raised IRQL.
    func initializedWaitList(_ object: UnsafeMutableRawPointer, writing: Bool) -> PLIST_ENTRY {
        let head = waitListHead(object)
        if head.pointee.Flink == nil || head.pointee.Blink == nil {
            bugCheck(IRQL_NOT_LESS_OR_EQUAL, 0, ULONG_PTR(SYNCH_LEVEL), writing ? 1 : 0, 0,
                     note: "The dispatcher object at \(hex(address(object))) has a NULL wait list: it was "
                        + "never initialised (KeInitializeEvent not called?), so the kernel dereferenced NULL "
                        + "while holding the dispatcher lock.")
        }
        return head
    }

    /// Waits on one dispatcher object with an already-validated IRQL.
    func wait(on object: UnsafeMutableRawPointer, timeout: PLARGE_INTEGER?) -> NTSTATUS {
        let header = object.assumingMemoryBound(to: DISPATCHER_HEADER.self)
        let list = initializedWaitList(object, writing: true)
        switch header.pointee.Type {
        case EventNotificationObject, EventSynchronizationObject, ThreadObject: break
        default:
            fatalError("KernelSim: waiting on dispatcher object type \(header.pointee.Type) is not simulated")
        }
        let deadline = timeout.map { self.deadline(for: $0.pointee) }
        let t = current!
        repeat {
            if header.pointee.SignalState > 0 {
                if header.pointee.Type == EventSynchronizationObject { header.pointee.SignalState = 0 }
                return STATUS_WAIT_0
            }
            if let deadline, deadline <= clock { return STATUS_TIMEOUT }
            requireSwitchable(waitingOn: object)
            t.kthread.pointee.WaitBlock.Thread = PKTHREAD(t.kthread)
            t.kthread.pointee.WaitBlock.Object = object
            InsertTailList(list, t.waitListEntry)
            t.waitObject = object
            t.deadline = deadline
            t.state = .waiting
            block()
        } while kernelApcInterruptedWait()
        return t.waitStatus
    }

    /// The thread whose wait block is linked at `entry`.
    private func waiter(at entry: PLIST_ENTRY) -> SimThread {
        let block = UnsafeMutableRawPointer(entry) - MemoryLayout<KWAIT_BLOCK>.offset(of: \.WaitListEntry)!
        return thread(for: block.assumingMemoryBound(to: KWAIT_BLOCK.self).pointee.Thread)!
    }

    /// Releases the oldest waiter (wait lists are FIFO). False if there was none.
    func wakeFirst(_ object: UnsafeMutableRawPointer) -> Bool {
        let head = initializedWaitList(object, writing: false)
        guard let first = head.pointee.Flink, first != head else { return false }
        wake(waiter(at: first), STATUS_WAIT_0)
        return true
    }

    /// Releases every waiter, oldest first.
    func wakeAll(_ object: UnsafeMutableRawPointer) {
        while wakeFirst(object) {}
    }
}
