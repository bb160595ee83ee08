// KeWaitForMultipleObjects: the wait engine of Wait.swift over several objects at once.

/// `WAIT_TYPE`: wait for all of the objects, or for any one of them.
public struct WAIT_TYPE: RawRepresentable, Equatable, Sendable {
    public var rawValue: Int32
    public init(rawValue: Int32) { self.rawValue = rawValue }
}
public let WaitAll = WAIT_TYPE(rawValue: 0)
public let WaitAny = WAIT_TYPE(rawValue: 1)

public typealias PKWAIT_BLOCK = UnsafeMutablePointer<KWAIT_BLOCK>

/// How many objects a wait can use the thread's built-in wait blocks for.
public let THREAD_WAIT_OBJECTS: ULONG = 3
/// The most objects one KeWaitForMultipleObjects can wait on.
public let MAXIMUM_WAIT_OBJECTS: ULONG = 64

/// Waits on `Count` dispatcher objects `Object[0..<Count]`. WaitAny returns STATUS_WAIT_0 + the
/// lowest index that can be satisfied; WaitAll returns STATUS_WAIT_0 once all of them can be taken
/// at the same moment (none is taken before then). STATUS_TIMEOUT if `Timeout` expires first.
/// More than THREAD_WAIT_OBJECTS objects need a caller-supplied `WaitBlockArray` of `Count`
/// blocks; more than MAXIMUM_WAIT_OBJECTS is bug check 0xC either way. IRQL rules are those of
/// KeWaitForSingleObject.
/// https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-kewaitformultipleobjects
@discardableResult
public func KeWaitForMultipleObjects(
    _ Count: ULONG, _ Object: UnsafeMutablePointer<PVOID>, _ WaitType: WAIT_TYPE, _ WaitReason: KWAIT_REASON,
    _ WaitMode: KPROCESSOR_MODE, _ Alertable: BOOLEAN, _ Timeout: PLARGE_INTEGER?, _ WaitBlockArray: PKWAIT_BLOCK?,
    file: String = #filePath, line: Int = #line
) -> NTSTATUS {
    let m = enterKernel("KeWaitForMultipleObjects", file, line)
    m.kernelObject(UInt(bitPattern: Object), size: Int(Count) * MemoryLayout<PVOID>.stride)
    if let WaitBlockArray { m.kernelObject(UInt(bitPattern: WaitBlockArray), size: Int(Count) * MemoryLayout<KWAIT_BLOCK>.stride) }
    m.resumeWaitNext()
    // https://learn.microsoft.com/windows-hardware/drivers/debugger/bug-check-0xc--maximum-wait-objects-exceeded
    if Count > (WaitBlockArray == nil ? THREAD_WAIT_OBJECTS : MAXIMUM_WAIT_OBJECTS) {
        m.bugCheck(MAXIMUM_WAIT_OBJECTS_EXCEEDED, 0, 0, 0, 0,
                   note: "KeWaitForMultipleObjects with Count = \(Count) "
                    + (WaitBlockArray == nil
                        ? "and no WaitBlockArray: the thread has only THREAD_WAIT_OBJECTS (3) wait blocks."
                        : "exceeds MAXIMUM_WAIT_OBJECTS (64)."))
    }
    precondition(WaitType == WaitAll || WaitType == WaitAny,
                 "KeWaitForMultipleObjects at \(file):\(line): WaitType must be WaitAll or WaitAny")
    let objects = (0..<Int(Count)).map { i in
        guard let object = Object[i] else { fatalError("KeWaitForMultipleObjects at \(file):\(line): Object[\(i)] is NULL") }
        return object
    }
    guard !objects.isEmpty else { fatalError("KeWaitForMultipleObjects at \(file):\(line): Count is 0") }
    m.checkWaitIrql(object: UnsafeMutableRawPointer(Object), timeout: Timeout)
    return m.wait(for: objects, waitAll: WaitType == WaitAll,
                  blocks: WaitBlockArray ?? m.current.builtInWaitBlocks, timeout: Timeout)
}
