// Pool allocations: zeroed memory tracked by address, with the documented IRQL, tag and
// double-free checks. Every block gets pages of its own (PoolMemory.swift), so the simulator can
// page paged pool out and fault on touches the way the MMU does. Freed blocks stay reserved until
// the machine ends, so a double free is always recognised instead of hitting a reused address.
import Glibc

public typealias POOL_FLAGS = ULONG64
public let POOL_FLAG_USE_QUOTA: POOL_FLAGS = 0x1
public let POOL_FLAG_UNINITIALIZED: POOL_FLAGS = 0x2
public let POOL_FLAG_SESSION: POOL_FLAGS = 0x4
public let POOL_FLAG_CACHE_ALIGNED: POOL_FLAGS = 0x8
public let POOL_FLAG_RAISE_ON_FAILURE: POOL_FLAGS = 0x20
public let POOL_FLAG_NON_PAGED: POOL_FLAGS = 0x40
public let POOL_FLAG_NON_PAGED_EXECUTE: POOL_FLAGS = 0x80
public let POOL_FLAG_PAGED: POOL_FLAGS = 0x100

/// `POOL_TYPE` values as bug check parameters report them.
let NonPagedPool: ULONG_PTR = 0
let PagedPool: ULONG_PTR = 1
let NonPagedPoolNx: ULONG_PTR = 0x200

/// Allocates `NumberOfBytes` of zeroed pool. Exactly one of POOL_FLAG_PAGED, POOL_FLAG_NON_PAGED
/// and POOL_FLAG_NON_PAGED_EXECUTE must be given; paged pool needs IRQL ≤ APC_LEVEL, nonpaged
/// pool IRQL ≤ DISPATCH_LEVEL. Returns nil for an invalid flag combination, or when no memory is left.
///
/// Paged pool can be paged out: touch it only at IRQL ≤ APC_LEVEL. Under Driver Verifier every
/// allocation comes from Special Pool, ending right before a no-access page.
/// https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-exallocatepool2
public func ExAllocatePool2(_ Flags: POOL_FLAGS, _ NumberOfBytes: SIZE_T, _ Tag: ULONG,
                            file: String = #filePath, line: Int = #line) -> PVOID {
    let m = enterKernel("ExAllocatePool2", file, line)
    let pools = [POOL_FLAG_PAGED, POOL_FLAG_NON_PAGED, POOL_FLAG_NON_PAGED_EXECUTE].filter { Flags & $0 != 0 }
    guard pools.count == 1 else { return nil }
    let poolType = pools[0] == POOL_FLAG_PAGED ? PagedPool
        : pools[0] == POOL_FLAG_NON_PAGED ? NonPagedPoolNx : NonPagedPool
    let paged = poolType == PagedPool
    let irql = ULONG_PTR(m.irql)
    let badIrql = m.irql > (paged ? APC_LEVEL : DISPATCH_LEVEL)
    // https://learn.microsoft.com/windows-hardware/drivers/debugger/bug-check-0xc4--driver-verifier-detected-violation
    if m.options.verifier {
        if NumberOfBytes == 0 { m.bugCheck(DRIVER_VERIFIER_DETECTED_VIOLATION, 0x00, irql, poolType, 0) }
        if badIrql { m.bugCheck(DRIVER_VERIFIER_DETECTED_VIOLATION, paged ? 0x01 : 0x02, irql, poolType, NumberOfBytes) }
    }
    // https://learn.microsoft.com/windows-hardware/drivers/debugger/bug-check-0xc2--bad-pool-caller
    if NumberOfBytes == 0 { m.bugCheck(BAD_POOL_CALLER, 0x00, 0, poolType, ULONG_PTR(Tag)) }
    if badIrql { m.bugCheck(BAD_POOL_CALLER, 0x08, irql, poolType, NumberOfBytes) }
    if Tag == 0 { m.bugCheck(BAD_POOL_CALLER, 0x9B, poolType, NumberOfBytes, 0) }
    return m.pool.allocate(Int(NumberOfBytes), poolType: poolType, tag: Tag, verifier: m.options.verifier)
}

/// Frees pool allocated with tag `Tag`; a different tag is bug check 0xC2/0x0A.
/// https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-exfreepoolwithtag
public func ExFreePoolWithTag(_ P: PVOID, _ Tag: ULONG, file: String = #filePath, line: Int = #line) {
    enterKernel("ExFreePoolWithTag", file, line).freePool(P, tag: Tag)
}

/// Frees pool without checking its tag.
/// https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-exfreepool
public func ExFreePool(_ P: PVOID, file: String = #filePath, line: Int = #line) {
    enterKernel("ExFreePool", file, line).freePool(P, tag: 0)
}

extension Machine {
    fileprivate func freePool(_ p: PVOID, tag: ULONG) {
        guard let p, let block = pool.blocks[p] else {
            if options.verifier { bugCheck(DRIVER_VERIFIER_DETECTED_VIOLATION, 0x10, address(p), 0, 0) }
            bugCheck(BAD_POOL_CALLER, 0x46, address(p), 0, 0)
        }
        if block.freed { bugCheck(BAD_POOL_CALLER, 0x07, 0, ULONG_PTR(block.tag), address(p)) }
        if irql > (block.paged ? APC_LEVEL : DISPATCH_LEVEL) {
            if options.verifier {
                bugCheck(DRIVER_VERIFIER_DETECTED_VIOLATION, block.paged ? 0x11 : 0x12,
                         ULONG_PTR(irql), block.poolType, address(p))
            }
            bugCheck(BAD_POOL_CALLER, 0x09, ULONG_PTR(irql), block.poolType, address(p))
        }
        if tag != 0 && tag != block.tag {
            bugCheck(BAD_POOL_CALLER, 0x0A, address(p), ULONG_PTR(block.tag), ULONG_PTR(tag))
        }
        pool.free(block)
    }
}
