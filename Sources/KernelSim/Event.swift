// Event objects (KEVENT). The Type byte is the EVENT_TYPE; SignalState is 0 or 1 in correct use.

/// Initialises an event of `Type` (NotificationEvent or SynchronizationEvent) in `State`.
/// https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-keinitializeevent
public func KeInitializeEvent(_ Event: PRKEVENT, _ Type: EVENT_TYPE, _ State: BOOLEAN,
                              file: String = #filePath, line: Int = #line) {
    _ = enterKernel("KeInitializeEvent", file, line)
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
/// one, stays non-signaled. `Increment` (a priority boost) and `Wait` are accepted but not
/// modelled: the simulator has no priorities and does not hold the dispatcher lock across calls.
/// https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-kesetevent
@discardableResult
public func KeSetEvent(_ Event: PRKEVENT, _ Increment: KPRIORITY, _ Wait: BOOLEAN,
                       file: String = #filePath, line: Int = #line) -> LONG {
    let m = enterKernel("KeSetEvent", file, line)
    if m.options.verifier && m.irql > DISPATCH_LEVEL {
        m.bugCheck(DRIVER_VERIFIER_DETECTED_VIOLATION, 0x80, ULONG_PTR(m.irql), address(Event), 0)
    }
    return m.setEvent(Event)
}

extension Machine {
    func setEvent(_ event: PRKEVENT) -> LONG {
        let object = UnsafeMutableRawPointer(event)
        let previous = event.pointee.Header.SignalState
        if previous == 0 && event.pointee.Header.Type == EventSynchronizationObject && wakeFirst(object) {
            return previous
        }
        event.pointee.Header.SignalState = 1
        if previous == 0 { wakeAll(object) }
        return previous
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
    _ = enterKernel("KeReadStateEvent", file, line)
    return Event.pointee.Header.SignalState
}
