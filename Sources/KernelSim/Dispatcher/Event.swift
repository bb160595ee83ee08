// Event objects (KEVENT). The Type byte is the EVENT_TYPE; SignalState is 0 or 1 in correct use.

/// Initialises an event of `Type` (NotificationEvent or SynchronizationEvent) in `State`.
/// https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-keinitializeevent
public func KeInitializeEvent(_ Event: PRKEVENT, _ Type: EVENT_TYPE, _ State: BOOLEAN,
                              file: String = #filePath, line: Int = #line) {
    enterKernel("KeInitializeEvent", file, line).kernelObject(Event)
    initializeEvent(Event, Type, State)
}

/// The body of KeInitializeEvent, shared with the ExInitializeFastMutex inline. Header bytes 1 and 3
/// are not written, as in Windows (KeEvent.c:18 checks this).
func initializeEvent(_ event: PRKEVENT, _ type: EVENT_TYPE, _ state: BOOLEAN) {
    event.pointee.Header.Type = EventNotificationObject + UCHAR(type.rawValue)
    event.pointee.Header.Size = UCHAR(MemoryLayout<KEVENT>.size / 4)
    event.pointee.Header.SignalState = LONG(state)
    InitializeListHead(waitListHead(UnsafeMutableRawPointer(event)))
}

/// Signals the event and returns its previous state. A notification event releases every waiter
/// and stays signaled; a synchronization event releases the oldest waiter and, if it released
/// one, stays non-signaled. `Increment` (a priority boost) is accepted but not modelled: the
/// simulator has no priorities. With `Wait == TRUE` the call returns at SYNCH_LEVEL and the
/// KeWaitXxx that must follow it returns at the caller's IRQL; it needs IRQL ≤ APC_LEVEL.
/// https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-kesetevent
@discardableResult
public func KeSetEvent(_ Event: PRKEVENT, _ Increment: KPRIORITY, _ Wait: BOOLEAN,
                       file: String = #filePath, line: Int = #line) -> LONG {
    let m = enterKernel("KeSetEvent", file, line)
    if m.options.verifier && m.irql > DISPATCH_LEVEL {
        m.bugCheck(DRIVER_VERIFIER_DETECTED_VIOLATION, 0x80, ULONG_PTR(m.irql), address(Event), 0)
    }
    // DDI rule IrqlKeSetEvent: "at IRQL <= APC_LEVEL when Wait = TRUE".
    // https://learn.microsoft.com/windows-hardware/drivers/devtest/wdm-irqlkesetevent
    if m.options.verifier && Wait != 0 && m.irql > APC_LEVEL {
        m.bugCheck(DRIVER_VERIFIER_DETECTED_VIOLATION, 0x2_0016, 0, 0, 0,
                   note: "KeSetEvent with Wait = TRUE at IRQL \(m.irql).")
    }
    let previous = m.setEvent(Event)
    if Wait != 0 { m.keepSynchLevelForNextWait() }
    return previous
}

/// Signals the event just long enough to satisfy the waits it can, then resets it; returns the
/// previous state. A notification event releases every waiter, a synchronization event the
/// oldest; with no waiters it only ends up non-signaled. `Wait` works as in KeSetEvent.
/// https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-kepulseevent
@discardableResult
public func KePulseEvent(_ Event: PRKEVENT, _ Increment: KPRIORITY, _ Wait: BOOLEAN,
                         file: String = #filePath, line: Int = #line) -> LONG {
    let m = enterKernel("KePulseEvent", file, line)
    m.requireDispatchLte(Event)
    let previous = Event.pointee.Header.SignalState
    if previous == 0 {
        Event.pointee.Header.SignalState = 1
        m.waitTest(UnsafeMutableRawPointer(Event))
    }
    Event.pointee.Header.SignalState = 0
    if Wait != 0 { m.keepSynchLevelForNextWait() }
    return previous
}

extension Machine {
    func setEvent(_ event: PRKEVENT) -> LONG {
        let previous = event.pointee.Header.SignalState
        event.pointee.Header.SignalState = 1
        if previous == 0 { waitTest(UnsafeMutableRawPointer(event)) }
        return previous
    }

    /// DDI rule IrqlKeDispatchLte (KePulseEvent, KeReleaseMutex, …): IRQL ≤ DISPATCH_LEVEL.
    /// https://learn.microsoft.com/windows-hardware/drivers/devtest/wdm-irqlkedispatchlte
    func requireDispatchLte(_ object: UnsafeMutableRawPointer) {
        guard options.verifier, irql > DISPATCH_LEVEL else { return }
        bugCheck(DRIVER_VERIFIER_DETECTED_VIOLATION, 0x2_0011, 0, 0, 0,
                 note: "DDI compliance rule IrqlKeDispatchLte: \(current.lastCall!.routine) on "
                    + "\(hex(address(object))) at IRQL \(irql).")
    }
}

/// Sets the event to not-signaled and returns its previous state.
/// https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-keresetevent
@discardableResult
public func KeResetEvent(_ Event: PRKEVENT, file: String = #filePath, line: Int = #line) -> LONG {
    _ = enterKernel("KeResetEvent", file, line)
    let previous = Event.pointee.Header.SignalState
    Event.pointee.Header.SignalState = 0
    return previous
}

/// Sets the event to not-signaled.
/// https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-keclearevent
public func KeClearEvent(_ Event: PRKEVENT, file: String = #filePath, line: Int = #line) {
    _ = enterKernel("KeClearEvent", file, line)
    Event.pointee.Header.SignalState = 0
}

/// The event's current state: nonzero if signaled.
/// https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-kereadstateevent
public func KeReadStateEvent(_ Event: PRKEVENT, file: String = #filePath, line: Int = #line) -> LONG {
    let m = enterKernel("KeReadStateEvent", file, line)
    m.kernelObject(Event)
    // Reading the state KeSetEvent wrote sees what the setter did before it (an x64 load of a
    // value stored with a locked instruction), as a satisfied wait would.
    if Event.pointee.Header.SignalState != 0 { m.happensAfter(address(Event)) }
    return Event.pointee.Header.SignalState
}
