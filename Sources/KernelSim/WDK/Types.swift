// WDK base types, status codes and kernel structures, shaped the way a C header imports into Swift:
// structs are zero-initialised by `init()` and expose the wdm.h field names as public `var`s.

public typealias UCHAR = UInt8
public typealias CHAR = Int8
public typealias CCHAR = Int8
public typealias SHORT = Int16
public typealias USHORT = UInt16
public typealias LONG = Int32
public typealias ULONG = UInt32
public typealias LONG_PTR = Int
public typealias ULONG_PTR = UInt
public typealias SIZE_T = ULONG_PTR
public typealias LONGLONG = Int64
public typealias ULONGLONG = UInt64
public typealias ULONG64 = UInt64
public typealias BOOLEAN = UCHAR
public typealias KIRQL = UCHAR
public typealias PKIRQL = UnsafeMutablePointer<KIRQL>
public typealias KPRIORITY = LONG
public typealias ACCESS_MASK = ULONG
public typealias NTSTATUS = LONG
public typealias PVOID = UnsafeMutableRawPointer?
public typealias HANDLE = PVOID
public typealias PHANDLE = UnsafeMutablePointer<HANDLE>
/// A kernel thread object. Opaque in wdm.h; here it points at a `KTHREAD`, so it can be stored
/// in `FAST_MUTEX.Owner` (a `PVOID`) and compared with it.
public typealias PKTHREAD = UnsafeMutableRawPointer

public let TRUE: BOOLEAN = 1
public let FALSE: BOOLEAN = 0

// MARK: Status codes (ntstatus.h)

public let STATUS_SUCCESS: NTSTATUS = 0x0000_0000
public let STATUS_WAIT_0: NTSTATUS = 0x0000_0000
public let STATUS_ABANDONED: NTSTATUS = 0x0000_0080
public let STATUS_ABANDONED_WAIT_0: NTSTATUS = 0x0000_0080
public let STATUS_USER_APC: NTSTATUS = 0x0000_00C0
public let STATUS_KERNEL_APC: NTSTATUS = 0x0000_0100
public let STATUS_ALERTED: NTSTATUS = 0x0000_0101
public let STATUS_TIMEOUT: NTSTATUS = 0x0000_0102
public let STATUS_PENDING: NTSTATUS = 0x0000_0103
public let STATUS_UNSUCCESSFUL = NTSTATUS(bitPattern: 0xC000_0001)
public let STATUS_ACCESS_VIOLATION = NTSTATUS(bitPattern: 0xC000_0005)
public let STATUS_INVALID_HANDLE = NTSTATUS(bitPattern: 0xC000_0008)
public let STATUS_INVALID_PARAMETER = NTSTATUS(bitPattern: 0xC000_000D)
public let STATUS_INSUFFICIENT_RESOURCES = NTSTATUS(bitPattern: 0xC000_009A)
public let STATUS_MUTANT_NOT_OWNED = NTSTATUS(bitPattern: 0xC000_0046)
public let STATUS_MUTANT_LIMIT_EXCEEDED = NTSTATUS(bitPattern: 0xC000_0191)

/// `NT_SUCCESS(Status)`: success and informational codes are non-negative.
public func NT_SUCCESS(_ Status: NTSTATUS) -> Bool { Status >= 0 }

// MARK: Enumerations (imported C enums become RawRepresentable structs with global constants)

public struct EVENT_TYPE: RawRepresentable, Equatable, Sendable {
    public var rawValue: Int32
    public init(rawValue: Int32) { self.rawValue = rawValue }
}
public let NotificationEvent = EVENT_TYPE(rawValue: 0)
public let SynchronizationEvent = EVENT_TYPE(rawValue: 1)

public struct KWAIT_REASON: RawRepresentable, Equatable, Sendable {
    public var rawValue: Int32
    public init(rawValue: Int32) { self.rawValue = rawValue }
}
public let Executive = KWAIT_REASON(rawValue: 0)
public let FreePage = KWAIT_REASON(rawValue: 1)
public let PageIn = KWAIT_REASON(rawValue: 2)
public let DelayExecution = KWAIT_REASON(rawValue: 4)
public let Suspended = KWAIT_REASON(rawValue: 5)
public let UserRequest = KWAIT_REASON(rawValue: 6)
public let WrExecutive = KWAIT_REASON(rawValue: 7)
public let WrMutex = KWAIT_REASON(rawValue: 29)
public let WrGuardedMutex = KWAIT_REASON(rawValue: 36)

/// In wdm.h `KPROCESSOR_MODE` is a `CCHAR` and `KernelMode`/`UserMode` are `MODE` enumerators.
public struct KPROCESSOR_MODE: RawRepresentable, Equatable, Sendable {
    public var rawValue: CCHAR
    public init(rawValue: CCHAR) { self.rawValue = rawValue }
}
public let KernelMode = KPROCESSOR_MODE(rawValue: 0)
public let UserMode = KPROCESSOR_MODE(rawValue: 1)

/// Dispatcher object type codes (`KOBJECTS`); `DISPATCHER_HEADER.Type` holds one of these.
public let EventNotificationObject: UCHAR = 0
public let EventSynchronizationObject: UCHAR = 1
public let MutantObject: UCHAR = 2
public let ThreadObject: UCHAR = 6

// MARK: Priority increments

public let IO_NO_INCREMENT: KPRIORITY = 0
public let EVENT_INCREMENT: KPRIORITY = 1
public let MUTANT_INCREMENT: KPRIORITY = 1
public let SEMAPHORE_INCREMENT: KPRIORITY = 1
public let IO_DISK_INCREMENT: KPRIORITY = 1
public let IO_NETWORK_INCREMENT: KPRIORITY = 2
public let IO_KEYBOARD_INCREMENT: KPRIORITY = 6
public let IO_SOUND_INCREMENT: KPRIORITY = 8

// MARK: Access rights

public let SYNCHRONIZE: ACCESS_MASK = 0x0010_0000
public let STANDARD_RIGHTS_REQUIRED: ACCESS_MASK = 0x000F_0000
public let THREAD_ALL_ACCESS: ACCESS_MASK = STANDARD_RIGHTS_REQUIRED | SYNCHRONIZE | 0xFFFF

// MARK: Structures

/// `LARGE_INTEGER`: the C union, with `QuadPart` as the storage and the 32-bit halves as views.
public struct LARGE_INTEGER: Equatable, Sendable {
    public var QuadPart: LONGLONG
    public init() { QuadPart = 0 }
    public init(QuadPart: LONGLONG) { self.QuadPart = QuadPart }
    public var LowPart: ULONG {
        get { ULONG(truncatingIfNeeded: QuadPart) }
        set { QuadPart = (QuadPart & ~0xFFFF_FFFF) | LONGLONG(newValue) }
    }
    public var HighPart: LONG {
        get { LONG(truncatingIfNeeded: QuadPart >> 32) }
        set { QuadPart = (LONGLONG(newValue) << 32) | (QuadPart & 0xFFFF_FFFF) }
    }
}
public typealias PLARGE_INTEGER = UnsafeMutablePointer<LARGE_INTEGER>

/// A doubly linked list link, as in ntdef.h.
public struct LIST_ENTRY {
    public var Flink: PLIST_ENTRY?
    public var Blink: PLIST_ENTRY?
    public init() {}
}
public typealias PLIST_ENTRY = UnsafeMutablePointer<LIST_ENTRY>

/// The header every waitable (dispatcher) object starts with.
public struct DISPATCHER_HEADER {
    public var `Type`: UCHAR = 0
    public var Signalling: UCHAR = 0
    public var Size: UCHAR = 0
    public var Reserved1: UCHAR = 0
    public var SignalState: LONG = 0
    /// Threads waiting on the object, linked through their `KWAIT_BLOCK.WaitListEntry`, oldest first.
    public var WaitListHead = LIST_ENTRY()
    public init() {}
}

public struct KEVENT {
    public var Header = DISPATCHER_HEADER()
    public init() {}
}
public typealias PKEVENT = UnsafeMutablePointer<KEVENT>
public typealias PRKEVENT = UnsafeMutablePointer<KEVENT>

/// Links a waiting thread into an object's wait list.
public struct KWAIT_BLOCK {
    public var WaitListEntry = LIST_ENTRY()
    public var Thread: PKTHREAD?
    public var Object: PVOID = nil
    public var WaitKey: USHORT = 0
    public var WaitType: UCHAR = 0
    public init() {}
}

/// The part of the (opaque) kernel thread object the simulated primitives use. A thread is a
/// dispatcher object: it becomes signaled when it terminates, so it can be waited on.
public struct KTHREAD {
    public var Header = DISPATCHER_HEADER()
    /// Critical-region count: `KeEnterCriticalRegion` decrements it; ≤ 0 in correct use.
    public var KernelApcDisable: SHORT = 0
    /// Guarded-region count: `KeEnterGuardedRegion` decrements it.
    public var SpecialApcDisable: SHORT = 0
    /// The built-in wait blocks (`KWAIT_BLOCK WaitBlock[4]`): a single-object wait uses `WaitBlock.0`,
    /// KeWaitForMultipleObjects without a WaitBlockArray the first THREAD_WAIT_OBJECTS (3).
    public var WaitBlock = (KWAIT_BLOCK(), KWAIT_BLOCK(), KWAIT_BLOCK(), KWAIT_BLOCK())
    /// The KMUTEXes the thread owns, linked through `KMUTANT.MutantListEntry`, oldest first.
    public var MutantListHead = LIST_ENTRY()
    /// Set by a KeSetEvent/KePulseEvent/KeReleaseMutex/KeReleaseSemaphore with `Wait == TRUE`, which
    /// returns at SYNCH_LEVEL; the next KeWaitXxx clears it and returns at `WaitIrql`.
    public var WaitNext: BOOLEAN = 0
    /// The IRQL the `Wait == TRUE` call was entered at.
    public var WaitIrql: KIRQL = 0
    public init() {}

    /// The union view of both counters: `SpecialApcDisable` in the high half, `KernelApcDisable` in the low.
    public var CombinedApcDisable: ULONG {
        (ULONG(UInt16(bitPattern: SpecialApcDisable)) << 16) | ULONG(UInt16(bitPattern: KernelApcDisable))
    }
}

public struct CLIENT_ID {
    public var UniqueProcess: HANDLE = nil
    public var UniqueThread: HANDLE = nil
    public init() {}
}
public typealias PCLIENT_ID = UnsafeMutablePointer<CLIENT_ID>

// MARK: List helpers (wdm.h inlines)

public func InitializeListHead(_ ListHead: PLIST_ENTRY) {
    ListHead.pointee.Flink = ListHead
    ListHead.pointee.Blink = ListHead
}

public func IsListEmpty(_ ListHead: PLIST_ENTRY) -> BOOLEAN {
    ListHead.pointee.Flink == ListHead ? TRUE : FALSE
}

public func InsertTailList(_ ListHead: PLIST_ENTRY, _ Entry: PLIST_ENTRY) {
    let blink = ListHead.pointee.Blink!
    Entry.pointee.Flink = ListHead
    Entry.pointee.Blink = blink
    blink.pointee.Flink = Entry
    ListHead.pointee.Blink = Entry
}

/// Unlinks `Entry`; returns TRUE if the list is now empty.
@discardableResult
public func RemoveEntryList(_ Entry: PLIST_ENTRY) -> BOOLEAN {
    let flink = Entry.pointee.Flink!
    let blink = Entry.pointee.Blink!
    blink.pointee.Flink = flink
    flink.pointee.Blink = blink
    return flink == blink ? TRUE : FALSE
}
