// Bug check codes (bugcodes.h names), their documented parameters, and KeBugCheckEx.
// Parameter meanings are from the Microsoft bug check reference pages linked in each entry.

public let APC_INDEX_MISMATCH: ULONG = 0x1
public let INVALID_PROCESS_ATTACH_ATTEMPT: ULONG = 0x5
public let IRQL_NOT_DISPATCH_LEVEL: ULONG = 0x8
public let IRQL_NOT_GREATER_OR_EQUAL: ULONG = 0x9
public let IRQL_NOT_LESS_OR_EQUAL: ULONG = 0xA
public let MAXIMUM_WAIT_OBJECTS_EXCEEDED: ULONG = 0xC
public let SPIN_LOCK_ALREADY_OWNED: ULONG = 0xF
public let SPIN_LOCK_NOT_OWNED: ULONG = 0x10
public let THREAD_NOT_MUTEX_OWNER: ULONG = 0x11
public let BAD_POOL_HEADER: ULONG = 0x19
public let NO_SPIN_LOCK_AVAILABLE: ULONG = 0x1D
public let KERNEL_APC_PENDING_DURING_EXIT: ULONG = 0x20
public let SYSTEM_EXIT_OWNED_MUTEX: ULONG = 0x39
public let IRQL_GT_ZERO_AT_SYSTEM_SERVICE: ULONG = 0x4A
public let PAGE_FAULT_IN_NONPAGED_AREA: ULONG = 0x50
public let SYSTEM_THREAD_EXCEPTION_NOT_HANDLED: ULONG = 0x7E
public let ATTEMPTED_SWITCH_FROM_DPC: ULONG = 0xB8
public let MUTEX_ALREADY_OWNED: ULONG = 0xBF
public let BAD_POOL_CALLER: ULONG = 0xC2
public let DRIVER_VERIFIER_DETECTED_VIOLATION: ULONG = 0xC4
public let DRIVER_CORRUPTED_EXPOOL: ULONG = 0xC5
public let DRIVER_CAUGHT_MODIFYING_FREED_POOL: ULONG = 0xC6
public let TIMER_OR_DPC_INVALID: ULONG = 0xC7
public let IRQL_UNEXPECTED_VALUE: ULONG = 0xC8
public let DRIVER_IRQL_NOT_LESS_OR_EQUAL: ULONG = 0xD1
public let DRIVER_PORTION_MUST_BE_NONPAGED: ULONG = 0xD3
public let DRIVER_PAGE_FAULT_IN_FREED_SPECIAL_POOL: ULONG = 0xD5
public let DRIVER_PAGE_FAULT_BEYOND_END_OF_ALLOCATION: ULONG = 0xD6
public let WORKER_THREAD_RETURNED_AT_BAD_IRQL: ULONG = 0xE1
public let WORKER_INVALID: ULONG = 0xE4
public let CLOCK_WATCHDOG_TIMEOUT: ULONG = 0x101
public let DPC_WATCHDOG_TIMEOUT: ULONG = 0x102
public let DPC_WATCHDOG_VIOLATION: ULONG = 0x133
public let THREAD_TERMINATE_HELD_MUTEX: ULONG = 0x4000_008A

/// What Microsoft documents about one bug check code.
struct BugCheckInfo {
    let code: ULONG
    let name: String
    let summary: String
    /// Meanings of Parameters 1–4.
    let parameters: [String]
    let page: String

    var url: String { "https://learn.microsoft.com/windows-hardware/drivers/debugger/" + page }
}

private let undocumented = ["Undocumented", "Undocumented", "Undocumented", "Undocumented"]

let bugCheckTable: [BugCheckInfo] = [
    BugCheckInfo(code: 0x1, name: "APC_INDEX_MISMATCH",
                 summary: "APC disable counts were unbalanced on return from a system call or worker routine.",
                 parameters: ["Address of the system call or worker routine", "Thread's ApcStateIndex",
                              "Thread's CombinedApcDisable (SpecialApcDisable << 16 | KernelApcDisable)",
                              "Call type: 0 = system call, 1 = worker routine"],
                 page: "bug-check-0x1--apc-index-mismatch"),
    BugCheckInfo(code: 0x5, name: "INVALID_PROCESS_ATTACH_ATTEMPT", summary: "An illegal process attach.",
                 parameters: ["Target process", "Process the thread is attached to", "Thread's APC state index",
                              "Nonzero if a DPC is running on this processor"],
                 page: "bug-check-0x5--invalid-process-attach-attempt"),
    BugCheckInfo(code: 0x8, name: "IRQL_NOT_DISPATCH_LEVEL", summary: "A routine needing DISPATCH_LEVEL ran below it.",
                 parameters: undocumented, page: "bug-check-0x8--irql-not-dispatch-level"),
    BugCheckInfo(code: 0x9, name: "IRQL_NOT_GREATER_OR_EQUAL",
                 summary: "KeRaiseIrql was given an IRQL lower than the current one.",
                 parameters: undocumented, page: "bug-check-0x9--irql-not-greater-or-equal"),
    BugCheckInfo(code: 0xA, name: "IRQL_NOT_LESS_OR_EQUAL",
                 summary: "Kernel code touched pageable or invalid memory, or did something forbidden, at too high an IRQL.",
                 parameters: ["Memory referenced", "IRQL at the time of the reference",
                              "Bit 0: 0 = read, 1 = write; bit 3: execute", "Instruction address (0 if unknown)"],
                 page: "bug-check-0xa--irql-not-less-or-equal"),
    BugCheckInfo(code: 0xC, name: "MAXIMUM_WAIT_OBJECTS_EXCEEDED", summary: "Too many objects in one wait.",
                 parameters: undocumented, page: "bug-check-0xc--maximum-wait-objects-exceeded"),
    BugCheckInfo(code: 0xF, name: "SPIN_LOCK_ALREADY_OWNED",
                 summary: "A recursive request for a spin lock the caller already holds.",
                 parameters: ["Spin lock address (as ReactOS debug builds report it; Microsoft: none)",
                              "Reserved", "Reserved", "Reserved"],
                 page: "bug-check-0xf--spin-lock-already-owned"),
    BugCheckInfo(code: 0x10, name: "SPIN_LOCK_NOT_OWNED",
                 summary: "A spin lock was released by a thread that does not hold it.",
                 parameters: ["Spin lock address (as ReactOS debug builds report it; Microsoft: none)",
                              "Reserved", "Reserved", "Reserved"],
                 page: "bug-check-0x10--spin-lock-not-owned"),
    BugCheckInfo(code: 0x11, name: "THREAD_NOT_MUTEX_OWNER", summary: "A mutex was released by a thread that does not own it.",
                 parameters: undocumented, page: "bug-check-0x11--thread-not-mutex-owner"),
    BugCheckInfo(code: 0x19, name: "BAD_POOL_HEADER", summary: "The pool was already corrupted at the time of the request.",
                 parameters: ["Subcode", "Depends on the subcode", "Depends on the subcode", "Depends on the subcode"],
                 page: "bug-check-0x19--bad-pool-header"),
    BugCheckInfo(code: 0x1D, name: "NO_SPIN_LOCK_AVAILABLE", summary: "No spin lock was available.",
                 parameters: undocumented, page: "bug-check-0x1d--no-spin-lock-available"),
    BugCheckInfo(code: 0x20, name: "KERNEL_APC_PENDING_DURING_EXIT",
                 summary: "A thread exited with a nonzero APC disable count or at an IRQL other than PASSIVE_LEVEL.",
                 parameters: ["Address of the pending APC", "Thread's APC disable count", "Current IRQL", "Reserved"],
                 page: "bug-check-0x20--kernel-apc-pending-during-exit"),
    BugCheckInfo(code: 0x39, name: "SYSTEM_EXIT_OWNED_MUTEX", summary: "A worker routine returned while owning a mutex.",
                 parameters: ["Worker routine address", "Parameter passed to it", "Work item address", "Reserved"],
                 page: "bug-check-0x39--system-exit-owned-mutex"),
    BugCheckInfo(code: 0x4A, name: "IRQL_GT_ZERO_AT_SYSTEM_SERVICE",
                 summary: "A thread returned to user mode from a system call at IRQL above PASSIVE_LEVEL.",
                 parameters: ["Address of the system call routine", "Current IRQL", "0", "0"],
                 page: "bug-check-0x4a--irql-gt-zero-at-system-service"),
    BugCheckInfo(code: 0x50, name: "PAGE_FAULT_IN_NONPAGED_AREA", summary: "Invalid system memory was referenced.",
                 parameters: ["Memory referenced", "0 read, 2 write, 10 execute", "Address that referenced memory",
                              "Fault type"],
                 page: "bug-check-0x50--page-fault-in-nonpaged-area"),
    BugCheckInfo(code: 0x7E, name: "SYSTEM_THREAD_EXCEPTION_NOT_HANDLED",
                 summary: "A system thread generated an exception that the error handler did not catch.",
                 parameters: ["The exception code that was not handled",
                              "The address where the exception occurred (0: the simulator has no code addresses)",
                              "The address of the exception record (0 here)", "The address of the context record (0 here)"],
                 page: "bug-check-0x7e--system-thread-exception-not-handled"),
    BugCheckInfo(code: 0xB8, name: "ATTEMPTED_SWITCH_FROM_DPC",
                 summary: "A wait operation, attach process, or yield was attempted from a DPC routine.",
                 parameters: ["Original thread", "New thread",
                              "Stack address of the original thread (0: simulated threads have no kernel stack)",
                              "Reserved"],
                 page: "bug-check-0xb8--attempted-switch-from-dpc"),
    BugCheckInfo(code: 0xBF, name: "MUTEX_ALREADY_OWNED",
                 summary: "A thread attempted to acquire ownership of a mutex it already owned.",
                 parameters: ["Address of the mutex", "Thread that caused the error", "0", "Reserved"],
                 page: "bug-check-0xbf--mutex-already-owned"),
    BugCheckInfo(code: 0xC2, name: "BAD_POOL_CALLER",
                 summary: "The current thread made an invalid pool request.",
                 parameters: ["Subcode", "Depends on the subcode", "Depends on the subcode", "Depends on the subcode"],
                 page: "bug-check-0xc2--bad-pool-caller"),
    BugCheckInfo(code: 0xC4, name: "DRIVER_VERIFIER_DETECTED_VIOLATION",
                 summary: "Driver Verifier caught the driver breaking a rule.",
                 parameters: ["Subcode", "Depends on the subcode", "Depends on the subcode", "Depends on the subcode"],
                 page: "bug-check-0xc4--driver-verifier-detected-violation"),
    BugCheckInfo(code: 0xC5, name: "DRIVER_CORRUPTED_EXPOOL",
                 summary: "The kernel touched invalid memory at high IRQL because a driver corrupted the pool.",
                 parameters: ["Memory referenced", "IRQL at the time of the reference", "0 read, 1 write",
                              "Address that referenced memory"],
                 page: "bug-check-0xc5--driver-corrupted-expool"),
    BugCheckInfo(code: 0xC6, name: "DRIVER_CAUGHT_MODIFYING_FREED_POOL", summary: "A driver used pool after freeing it.",
                 parameters: ["Memory referenced", "0 read, 1 write", "0 kernel mode, 1 user mode", "Reserved"],
                 page: "bug-check-0xc6--driver-caught-modifying-freed-pool"),
    BugCheckInfo(code: 0xC7, name: "TIMER_OR_DPC_INVALID", summary: "A timer or DPC object was in memory being freed, or a DPC changed the APC disable count.",
                 parameters: ["Type", "Object or routine address", "Start of range, or count before",
                              "End of range, or count after"],
                 page: "bug-check-0xc7--timer-or-dpc-invalid"),
    BugCheckInfo(code: 0xC8, name: "IRQL_UNEXPECTED_VALUE", summary: "A routine changed the IRQL and did not restore it.",
                 parameters: ["(CurrentIrql << 16) | (ExpectedIrql << 8) | UniqueValue", "Depends on UniqueValue",
                              "Depends on UniqueValue", "Depends on UniqueValue"],
                 page: "bug-check-0xc8--irql-unexpected-value"),
    BugCheckInfo(code: 0xD1, name: "DRIVER_IRQL_NOT_LESS_OR_EQUAL",
                 summary: "A driver accessed pageable (or invalid) memory, or ran pageable code, at too high an IRQL.",
                 parameters: ["Memory referenced", "IRQL at the time of the reference",
                              "0 = read, 1 = write, 2 or 8 = execute", "Address that referenced memory"],
                 page: "bug-check-0xd1--driver-irql-not-less-or-equal"),
    BugCheckInfo(code: 0xD3, name: "DRIVER_PORTION_MUST_BE_NONPAGED",
                 summary: "A driver marked its own code or data pageable and touched it at too high an IRQL.",
                 parameters: ["Memory referenced", "IRQL at the time of the reference", "0 read, 1 write",
                              "Address that referenced memory"],
                 page: "bug-check-0xd3--driver-portion-must-be-nonpaged"),
    BugCheckInfo(code: 0xD5, name: "DRIVER_PAGE_FAULT_IN_FREED_SPECIAL_POOL",
                 summary: "A driver referenced memory it had freed; Driver Verifier's Special Pool caught it.",
                 parameters: ["Memory address referenced", "0 = read, 1 = write", "Address that referenced memory",
                              "Reserved"],
                 page: "bug-check-0xd5--driver-page-fault-in-freed-special-pool"),
    BugCheckInfo(code: 0xD6, name: "DRIVER_PAGE_FAULT_BEYOND_END_OF_ALLOCATION",
                 summary: "A driver accessed memory beyond the end of its pool allocation; Driver Verifier's Special Pool caught it.",
                 parameters: ["Memory address referenced", "0 = read, 1 = write", "Address that referenced memory",
                              "Reserved"],
                 page: "bug-check-0xd6--driver-page-fault-beyond-end-of-allocation"),
    BugCheckInfo(code: 0xE1, name: "WORKER_THREAD_RETURNED_AT_BAD_IRQL",
                 summary: "A worker routine returned at a raised IRQL.",
                 parameters: ["Worker routine address", "IRQL the worker returned at", "Work item parameter",
                              "Work item address"],
                 page: "bug-check-0xe1--worker-thread-returned-at-bad-irql"),
    BugCheckInfo(code: 0xE4, name: "WORKER_INVALID",
                 summary: "A work item was queued again while still queued (P1 = 1), or freed while active.",
                 parameters: ["Kind (1: an active worker item was queued)", "Work item address", "Queue number",
                              "0"],
                 page: "bug-check-0xe4--worker-invalid"),
    BugCheckInfo(code: 0x101, name: "CLOCK_WATCHDOG_TIMEOUT",
                 summary: "A processor took no clock interrupt in time: it is hung or spinning with interrupts masked.",
                 parameters: ["Clock interrupt timeout interval (ticks)", "0", "PRCB of the unresponsive processor",
                              "Index of the hung processor"],
                 page: "bug-check-0x101---clock-watchdog-timeout"),
    BugCheckInfo(code: 0x102, name: "DPC_WATCHDOG_TIMEOUT", summary: "A DPC or ISR hung on one processor.",
                 parameters: ["DPC watchdog timeout interval (ticks)", "PRCB of the hung processor", "Reserved", "Reserved"],
                 page: "bug-check-0x102--dpc-watchdog-timeout"),
    BugCheckInfo(code: 0x133, name: "DPC_WATCHDOG_VIOLATION",
                 summary: "A DPC or ISR ran too long, or a processor spent too long at DISPATCH_LEVEL or above.",
                 parameters: ["0: one DPC or ISR ran too long; 1: too much cumulative time at ≥ DISPATCH_LEVEL",
                              "P1 = 0: DPC time count; P1 = 1: the watchdog period (100 ns units here)",
                              "P1 = 0: DPC time allotment (100 ns units here); P1 = 1: DPC_WATCHDOG_GLOBAL_TRIAGE_BLOCK (0 here)",
                              "P1 = 0: triage block (0 here); P1 = 1: reserved"],
                 page: "bug-check-0x133-dpc-watchdog-violation"),
    BugCheckInfo(code: 0x4000_008A, name: "THREAD_TERMINATE_HELD_MUTEX",
                 summary: "A thread exited while holding a kernel mutex.",
                 parameters: ["KTHREAD that owns the KMUTEX", "KMUTEX address", "Reserved", "Reserved"],
                 page: "bug-check-0x4000008a--thread-terminate-held-mutex"),
]

/// Subcode (Parameter 1) meanings of 0xC4 and 0xC2: a summary, then Parameters 2–4.
struct SubcodeInfo {
    let summary: String
    let parameters: [String]
}

let verifierSubcodes: [ULONG_PTR: SubcodeInfo] = [
    0x00: SubcodeInfo(summary: "Zero-byte pool allocation", parameters: ["Current IRQL", "Pool type", "Number of bytes"]),
    0x01: SubcodeInfo(summary: "Paged pool allocation at IRQL > APC_LEVEL", parameters: ["Current IRQL", "Pool type", "Size"]),
    0x02: SubcodeInfo(summary: "Nonpaged pool allocation at IRQL > DISPATCH_LEVEL", parameters: ["Current IRQL", "Pool type", "Size"]),
    0x10: SubcodeInfo(summary: "Free of an address that no allocation returned", parameters: ["Bad address", "0", "0"]),
    0x11: SubcodeInfo(summary: "Free of paged pool at IRQL > APC_LEVEL", parameters: ["Current IRQL", "Pool type", "Pool address"]),
    0x12: SubcodeInfo(summary: "Free of nonpaged pool at IRQL > DISPATCH_LEVEL", parameters: ["Current IRQL", "Pool type", "Pool address"]),
    0x30: SubcodeInfo(summary: "KeRaiseIrql to an IRQL lower than the current one (or above HIGH_LEVEL)",
                      parameters: ["Current IRQL", "Requested IRQL", "0"]),
    0x31: SubcodeInfo(summary: "KeLowerIrql to an IRQL higher than the current one (or above HIGH_LEVEL)",
                      parameters: ["Current IRQL", "Requested IRQL", "0 = new IRQL is bad; 1 = invalid inside a DPC"]),
    0x32: SubcodeInfo(summary: "KeReleaseSpinLock at an IRQL other than DISPATCH_LEVEL (a double release?)",
                      parameters: ["Current IRQL", "Spin lock address", "0"]),
    0x33: SubcodeInfo(summary: "Fast mutex acquired at IRQL > APC_LEVEL", parameters: ["Current IRQL", "Fast mutex address", "0"]),
    0x34: SubcodeInfo(summary: "Fast mutex released at an IRQL other than APC_LEVEL",
                      parameters: ["Current IRQL", "Thread APC disable count", "Fast mutex address"]),
    0x39: SubcodeInfo(summary: "ExAcquireFastMutexUnsafe at an IRQL other than APC_LEVEL, outside a critical region",
                      parameters: ["Current IRQL", "Thread APC disable count", "Fast mutex address"]),
    0x3A: SubcodeInfo(summary: "ExReleaseFastMutexUnsafe at an IRQL other than APC_LEVEL, outside a critical region",
                      parameters: ["Current IRQL", "Thread APC disable count", "Fast mutex address"]),
    0x3E: SubcodeInfo(summary: "KeLeaveCriticalRegion for a thread not in a critical region", parameters: ["0", "0", "0"]),
    0x40: SubcodeInfo(summary: "KeAcquireSpinLockAtDpcLevel (or KeTryToAcquireSpinLockAtDpcLevel) below DISPATCH_LEVEL",
                      parameters: ["Current IRQL", "Spin lock address", "0"]),
    0x41: SubcodeInfo(summary: "KeReleaseSpinLockFromDpcLevel below DISPATCH_LEVEL", parameters: ["Current IRQL", "Spin lock address", "0"]),
    0x42: SubcodeInfo(summary: "KeAcquireSpinLock at IRQL > DISPATCH_LEVEL", parameters: ["Current IRQL", "Spin lock address", "0"]),
    0x80: SubcodeInfo(summary: "KeSetEvent at IRQL > DISPATCH_LEVEL", parameters: ["Current IRQL", "Event address", "0"]),
    0x111: SubcodeInfo(summary: "An ISR returned at an IRQL other than the one it was called at",
                       parameters: ["ISR address", "IRQL before the ISR", "IRQL after the ISR"]),
    0x11A: SubcodeInfo(summary: "KeEnterCriticalRegion at IRQL > APC_LEVEL", parameters: ["Current IRQL", "0", "0"]),
    0x11B: SubcodeInfo(summary: "KeLeaveCriticalRegion at IRQL > APC_LEVEL", parameters: ["Current IRQL", "0", "0"]),
    0x120: SubcodeInfo(summary: "Wait at IRQL > DISPATCH_LEVEL",
                       parameters: ["Address of the IRQL value", "Object waited on", "Address of Timeout (0 = NULL)"]),
    0x121: SubcodeInfo(summary: "Wait at DISPATCH_LEVEL with Timeout = NULL",
                       parameters: ["Address of the IRQL value", "Object waited on", "Address of Timeout (0 = NULL)"]),
    0x122: SubcodeInfo(summary: "Wait at DISPATCH_LEVEL with a nonzero Timeout",
                       parameters: ["Address of the IRQL value", "Object waited on", "Address of Timeout"]),
    0x1000: SubcodeInfo(summary: "Deadlock Detection: self-deadlock, the current thread has tried to recursively "
                            + "acquire a resource",
                        parameters: ["Address of the resource", "Reserved", "Reserved"]),
    0x1001: SubcodeInfo(summary: "Deadlock Detection: the current thread is trying to acquire a resource that "
                            + "would cause a deadlock (a lock hierarchy violation; use !deadlock)",
                        parameters: ["Address of the resource that was the final cause of the deadlock", "Reserved", "Reserved"]),
    0x1003: SubcodeInfo(summary: "Deadlock Detection: resources released in the wrong order",
                        parameters: ["Resource being released", "Resource that should have been released first", "Reserved"]),
    0x1004: SubcodeInfo(summary: "Lock released by a thread other than the one that acquired it",
                        parameters: ["Lock address", "Thread that acquired it", "Current thread"]),
    0x1007: SubcodeInfo(summary: "Lock released before it was acquired", parameters: ["Lock address", "Reserved", "Reserved"]),
    0x1008: SubcodeInfo(summary: "Lock acquired with an API that does not match its type (ordinary vs in-stack queued spin lock)",
                        parameters: ["Lock address", "Reserved", "Reserved"]),
    0x100A: SubcodeInfo(summary: "Deadlock Detection: the terminated thread owns the lock",
                        parameters: ["Owner thread address", "Driver Verifier internal data (here: the lock's address)",
                                     "Not documented"]),
    0x2_000F: SubcodeInfo(summary: "DDI compliance rule IrqlKeApcLte1: KeXxxGuardedMutex and KeDelayExecutionThread need IRQL <= APC_LEVEL",
                          parameters: ["Rule description (not provided)", "Reserved", "Reserved"]),
    0x2_0010: SubcodeInfo(summary: "DDI compliance rule IrqlKeApcLte2: KeEnter/LeaveGuardedRegion need IRQL <= APC_LEVEL",
                          parameters: ["Rule description (not provided)", "Reserved", "Reserved"]),
    0x2_0011: SubcodeInfo(summary: "DDI compliance rule IrqlKeDispatchLte: KePulseEvent, KeReleaseMutex, ... need IRQL <= DISPATCH_LEVEL",
                          parameters: ["Rule description (not provided)", "Reserved", "Reserved"]),
    0x2_0016: SubcodeInfo(summary: "DDI compliance rule IrqlKeSetEvent: KeSetEvent with Wait = TRUE needs IRQL <= APC_LEVEL",
                          parameters: ["Rule description (not provided)", "Reserved", "Reserved"]),
    0x2_001C: SubcodeInfo(summary: "DDI compliance rule IrqlPsPassive: PsCreateSystemThread/PsTerminateSystemThread need PASSIVE_LEVEL",
                          parameters: ["Rule description (not provided)", "Reserved", "Reserved"]),
    0x4_000E: SubcodeInfo(summary: "DDI compliance rule GuardedRegions: KeLeaveGuardedRegion without a matching KeEnterGuardedRegion",
                          parameters: ["Rule description (not provided)", "Reserved", "Reserved"]),
]

let poolCallerSubcodes: [ULONG_PTR: SubcodeInfo] = [
    0x00: SubcodeInfo(summary: "Zero-byte allocation", parameters: ["0", "Pool type", "Pool tag"]),
    0x07: SubcodeInfo(summary: "Pool freed twice (already freed)",
                      parameters: ["Reserved", "Header contents (the block's tag)", "Address of the block being freed"]),
    0x08: SubcodeInfo(summary: "Allocation at an invalid IRQL", parameters: ["Current IRQL", "Pool type", "Size in bytes"]),
    0x09: SubcodeInfo(summary: "Free at an invalid IRQL", parameters: ["Current IRQL", "Pool type", "Address of pool"]),
    0x0A: SubcodeInfo(summary: "Free with the wrong tag", parameters: ["Address of pool", "Allocator's tag", "Tag used in the free"]),
    0x46: SubcodeInfo(summary: "Free of an invalid pool address", parameters: ["Starting address", "0", "0"]),
    0x9B: SubcodeInfo(summary: "Allocation with a tag of 0", parameters: ["Pool type", "Bytes requested", "Caller's address"]),
]

func bugCheckInfo(_ code: ULONG) -> BugCheckInfo? { bugCheckTable.first { $0.code == code } }

/// The documented symbolic name of a bug check code, e.g. 0xD1 → "DRIVER_IRQL_NOT_LESS_OR_EQUAL".
public func KsBugCheckName(_ code: ULONG) -> String? { bugCheckInfo(code)?.name }

/// The code for a documented symbolic name, or nil.
public func KsBugCheckCode(named name: String) -> ULONG? { bugCheckTable.first { $0.name == name }?.code }

/// Brings the system down with `BugCheckCode` and four parameters. It does not return.
/// https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-kebugcheckex
public func KeBugCheckEx(
    _ BugCheckCode: ULONG, _ BugCheckParameter1: ULONG_PTR, _ BugCheckParameter2: ULONG_PTR,
    _ BugCheckParameter3: ULONG_PTR, _ BugCheckParameter4: ULONG_PTR, file: String = #filePath, line: Int = #line
) -> Never {
    enterKernel("KeBugCheckEx", file, line).bugCheck(
        BugCheckCode, BugCheckParameter1, BugCheckParameter2, BugCheckParameter3, BugCheckParameter4)
}

/// KeBugCheckEx with four zero parameters.
/// https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-kebugcheck
public func KeBugCheck(_ BugCheckCode: ULONG, file: String = #filePath, line: Int = #line) -> Never {
    enterKernel("KeBugCheck", file, line).bugCheck(BugCheckCode, 0, 0, 0, 0)
}

extension Machine {
    /// Stops the machine with a bug check raised by the current kernel call. The calling thread's
    /// context is abandoned; `KsRunMachine` returns the outcome to its caller.
    func bugCheck(_ code: ULONG, _ p1: ULONG_PTR, _ p2: ULONG_PTR, _ p3: ULONG_PTR, _ p4: ULONG_PTR,
                  note: String? = nil) -> Never {
        let t = current!
        let site = t.lastCall ?? CallSite(routine: "(start)", file: t.origin, line: 0)
        let parameters = [p1, p2, p3, p4]
        recordEvent(.bugCheck(code: code))
        outcome = .bugCheck(KsBugCheck(
            code: code, name: KsBugCheckName(code) ?? "UNKNOWN_BUGCHECK", parameters: parameters,
            file: site.file, line: site.line,
            report: crashReport(code: code, parameters: parameters, site: site, note: note)))
        t.context.abandon(for: .caller)
    }
}

func address(_ p: UnsafeRawPointer?) -> ULONG_PTR { ULONG_PTR(bitPattern: p) }

/// `p` as WinDbg prints a 64-bit value: 16 hex digits.
func hex(_ value: ULONG_PTR) -> String {
    let digits = String(value, radix: 16)
    return String(repeating: "0", count: max(0, 16 - digits.count)) + digits
}
