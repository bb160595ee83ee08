// Semaphores (KSEMAPHORE): SignalState is the count, signaled while positive; each satisfied wait
// takes one, KeReleaseSemaphore adds `Adjustment` up to `Limit`.

public let STATUS_SEMAPHORE_LIMIT_EXCEEDED = NTSTATUS(bitPattern: 0xC000_0047)

/// `SemaphoreObject` in KOBJECTS: the `DISPATCHER_HEADER.Type` of a KSEMAPHORE.
public let SemaphoreObject: UCHAR = 5

public struct KSEMAPHORE {
    public var Header = DISPATCHER_HEADER()
    public var Limit: LONG = 0
    public init() {}
}
public typealias PKSEMAPHORE = UnsafeMutablePointer<KSEMAPHORE>
public typealias PRKSEMAPHORE = UnsafeMutablePointer<KSEMAPHORE>

/// Initialises a semaphore with count `Count` and maximum `Limit`.
/// https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-keinitializesemaphore
public func KeInitializeSemaphore(_ Semaphore: PRKSEMAPHORE, _ Count: LONG, _ Limit: LONG,
                                  file: String = #filePath, line: Int = #line) {
    enterKernel("KeInitializeSemaphore", file, line).kernelObject(Semaphore)
    Semaphore.pointee.Header.Type = SemaphoreObject
    Semaphore.pointee.Header.Size = UCHAR(MemoryLayout<KSEMAPHORE>.stride / 4)
    Semaphore.pointee.Header.SignalState = Count
    InitializeListHead(waitListHead(UnsafeMutableRawPointer(Semaphore)))
    Semaphore.pointee.Limit = Limit
}

/// The semaphore's count: nonzero means signaled.
/// https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-kereadstatesemaphore
public func KeReadStateSemaphore(_ Semaphore: PRKSEMAPHORE, file: String = #filePath, line: Int = #line) -> LONG {
    _ = enterKernel("KeReadStateSemaphore", file, line)
    return Semaphore.pointee.Header.SignalState
}

/// Adds `Adjustment` to the count, satisfies as many waits as the new count allows (oldest first),
/// and returns the previous count. A count that would pass `Limit` (or a negative `Adjustment`,
/// which ReactOS rejects the same way, semaphor.c) is left alone and raises
/// STATUS_SEMAPHORE_LIMIT_EXCEEDED; unhandled, that is bug check 0x7E. `Increment` (a priority
/// boost) is not modelled; `Wait` works as in KeSetEvent.
/// https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-kereleasesemaphore
@discardableResult
public func KeReleaseSemaphore(_ Semaphore: PRKSEMAPHORE, _ Increment: KPRIORITY, _ Adjustment: LONG, _ Wait: BOOLEAN,
                               file: String = #filePath, line: Int = #line) -> LONG {
    let m = enterKernel("KeReleaseSemaphore", file, line)
    let object = UnsafeMutableRawPointer(Semaphore)
    _ = m.initializedWaitList(object, writing: true)
    let previous = Semaphore.pointee.Header.SignalState
    let (count, overflow) = previous.addingReportingOverflow(Adjustment)
    if overflow || count > Semaphore.pointee.Limit || count < previous {
        m.raiseException(STATUS_SEMAPHORE_LIMIT_EXCEEDED,
                         note: "KeReleaseSemaphore(\(Adjustment)) on KSEMAPHORE \(hex(address(Semaphore))) with count "
                            + "\(previous) and Limit \(Semaphore.pointee.Limit).")
    }
    Semaphore.pointee.Header.SignalState = count
    if previous == 0 { m.waitTest(object) }
    if Wait != 0 { m.keepSynchLevelForNextWait() }
    return previous
}
