// Pool memory reached through the MMU. Learner code touches pool through raw pointers, which Swift
// cannot intercept, so the simulator does what the hardware does: every block lives on pages of
// its own, a paged-out or freed page is PROT_NONE, and a SIGSEGV handler resolves the fault the
// way Windows' page-fault handler does (page in below DISPATCH_LEVEL, else bug check).
//
// Driver Verifier (the default) adds two of its standard options:
// - Force IRQL Checking: "Whenever a driver being verified requests a spin lock, calls
//   KeSynchronizeExecution, or raises the IRQL to DISPATCH_LEVEL or higher, all of the system
//   pageable pool, code, and data ... are trimmed from the working set."
//   https://learn.microsoft.com/windows-hardware/drivers/devtest/force-irql-checking
// - Special Pool: each allocation ends right before a no-access page, and freed pages stay
//   reserved and inaccessible. https://learn.microsoft.com/windows-hardware/drivers/devtest/special-pool
// A retail kernel trims only under memory pressure, which the simulator never has, so there the
// same buggy code usually works.
import Glibc

let pageSize = Int(sysconf(Int32(_SC_PAGESIZE)))

/// MEMORY_ALLOCATION_ALIGNMENT on x64: Special Pool ends a block on the last such boundary of its
/// pages, so an overrun that stays inside the padding is not caught by the guard page.
private let allocationAlignment = 16

private func roundUp(_ n: Int, _ multiple: Int) -> Int { (n + multiple - 1) / multiple * multiple }

/// One pool allocation and the pages that hold it.
final class PoolBlock {
    let poolType: ULONG_PTR
    let tag: ULONG
    /// The address ExAllocatePool2 returned, and the bytes asked for.
    let start: UnsafeMutableRawPointer
    let size: Int
    /// The block's pages: `dataLength` bytes of data pages, then, from Special Pool, one guard page.
    let mapping: UnsafeMutableRawPointer
    let dataLength: Int
    let specialPool: Bool
    var freed = false
    /// Whether the data pages are accessible; only Force IRQL Checking pages them out.
    var resident = true

    init(poolType: ULONG_PTR, tag: ULONG, start: UnsafeMutableRawPointer, size: Int,
         mapping: UnsafeMutableRawPointer, dataLength: Int, specialPool: Bool) {
        self.poolType = poolType
        self.tag = tag
        self.start = start
        self.size = size
        self.mapping = mapping
        self.dataLength = dataLength
        self.specialPool = specialPool
    }

    var paged: Bool { poolType == PagedPool }
    var mappingLength: Int { dataLength + (specialPool ? pageSize : 0) }
}

/// What a fault on a page of the pool means.
enum PoolFault {
    /// A Special Pool block that was freed: 0xD5.
    case freed(PoolBlock)
    /// Special Pool's guard page after a block: 0xD6.
    case beyondEnd(PoolBlock)
    /// Paged pool that Force IRQL Checking paged out: paged in below DISPATCH_LEVEL, else 0xD1.
    case pagedOut(PoolBlock)
}

struct PoolState {
    /// Blocks by the address ExAllocatePool2 returned.
    var blocks: [UnsafeMutableRawPointer: PoolBlock] = [:]
    /// Every mapped page (address / page size) to its block, for the fault handler.
    private var pages: [UInt: PoolBlock] = [:]
    /// Paged blocks paged in since the last trim. Its capacity never falls below the number of
    /// blocks, so paging in from the fault handler does not allocate.
    private var resident: [PoolBlock] = []

    /// A zeroed block on fresh pages (nil when none are left). With Driver Verifier it comes from
    /// Special Pool, and paged pool counts as paged in until the next trim.
    mutating func allocate(_ size: Int, poolType: ULONG_PTR, tag: ULONG, verifier: Bool) -> PVOID {
        let dataLength = roundUp(size, pageSize)
        let length = dataLength + (verifier ? pageSize : 0)
        let mapped = mmap(nil, length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
        guard let mapping = mapped, Int(bitPattern: mapping) != -1 else { return nil }  // MAP_FAILED
        if verifier { mprotect(mapping + dataLength, pageSize, PROT_NONE) }
        let start = verifier ? mapping + dataLength - roundUp(size, allocationAlignment) : mapping
        let block = PoolBlock(poolType: poolType, tag: tag, start: start, size: size, mapping: mapping,
                              dataLength: dataLength, specialPool: verifier)
        blocks[start] = block
        let first = UInt(bitPattern: mapping) / UInt(pageSize)
        for page in first..<first + UInt(length / pageSize) { pages[page] = block }
        if verifier && block.paged {
            if resident.capacity < blocks.count { resident.reserveCapacity(2 * blocks.count) }
            resident.append(block)
        }
        return start
    }

    /// Special Pool keeps a freed block's pages reserved and inaccessible; retail leaves the stale
    /// bytes readable until the machine ends.
    mutating func free(_ block: PoolBlock) {
        block.freed = true
        if block.specialPool { mprotect(block.mapping, block.dataLength, PROT_NONE) }
    }

    /// Force IRQL Checking's trim, on a raise to DISPATCH_LEVEL or above and on a spin lock request:
    /// pages out every paged block that is paged in. Only the verifier pages blocks in this list, so
    /// on retail there is nothing to trim.
    mutating func trim() {
        guard !resident.isEmpty else { return }
        for block in resident {
            mprotect(block.mapping, block.dataLength, PROT_NONE)
            block.resident = false
        }
        resident.removeAll(keepingCapacity: true)
    }

    /// Resolves a page fault on a paged-out block: the faulting access then runs again.
    mutating func pageIn(_ block: PoolBlock) {
        mprotect(block.mapping, block.dataLength, PROT_READ | PROT_WRITE)
        block.resident = true
        resident.append(block)
    }

    /// What a fault at `address` means, or nil when the address is not this pool's (a bad pointer,
    /// or a page of a block that should not fault). Allocation-free: it runs in the signal handler.
    func fault(at address: UInt) -> PoolFault? {
        guard let block = pages[address / UInt(pageSize)] else { return nil }
        if block.freed && block.specialPool { return .freed(block) }
        if address - UInt(bitPattern: block.mapping) >= block.dataLength { return .beyondEnd(block) }
        if !block.resident { return .pagedOut(block) }
        return nil
    }

    /// Unmaps freed blocks and the guard pages; live (leaked) blocks stay readable and writable for
    /// the caller of the finished machine.
    mutating func release() {
        for block in blocks.values {
            if block.freed {
                munmap(block.mapping, block.mappingLength)
                continue
            }
            mprotect(block.mapping, block.dataLength, PROT_READ | PROT_WRITE)
            if block.specialPool { munmap(block.mapping + block.dataLength, pageSize) }
        }
        blocks = blocks.filter { !$0.value.freed }
        pages = [:]
        resident = []
    }
}

/// Whether the faulting access wrote, and the instruction address, from the x86-64 page-fault
/// error code (bit 1: write) and RIP saved in the signal context: gregs[REG_ERR = 19] and
/// gregs[REG_RIP = 16] (sys/ucontext.h; Swift's Glibc module does not import the REG_ names).
/// Other architectures report a read at instruction address 0.
func faultingAccess(_ context: UnsafeMutableRawPointer?) -> (write: Bool, instruction: UInt) {
    #if arch(x86_64)
    let registers = context!.assumingMemoryBound(to: ucontext_t.self).pointee.uc_mcontext.gregs
    return withUnsafeBytes(of: registers) {
        ($0.load(fromByteOffset: 19 * 8, as: UInt.self) & 2 != 0, $0.load(fromByteOffset: 16 * 8, as: UInt.self))
    }
    #else
    return (false, 0)
    #endif
}

extension Machine {
    /// Called from the SIGSEGV handler on the faulting simulated thread. A fault at DISPATCH_LEVEL
    /// or above is 0xD1 whatever the page: Windows turns only PAGE_FAULT_IN_NONPAGED_AREA into the
    /// Special Pool codes, and "a special pool buffer overrun at >=DPC level is classified as
    /// DRIVER_IRQL_NOT_LESS_OR_EQUAL" (WRK base/ntos/ke/bugcheck.c, KeBugCheck2).
    ///
    /// A bug check never returns: it records the outcome and abandons the thread's context from
    /// inside the handler, which is safe because the fault is synchronous, in code that holds no
    /// lock the report needs. The report does allocate; a fault inside malloc itself would
    /// deadlock, and only pool memory handed to the C library as its own could cause one.
    func resolve(_ fault: PoolFault, at address: UInt, _ access: (write: Bool, instruction: UInt)) {
        if case .pagedOut(let block) = fault, irql < DISPATCH_LEVEL {
            pool.pageIn(block)
            return
        }
        let verb = access.write ? "written" : "read"
        let readOrWrite: ULONG_PTR = access.write ? 1 : 0
        /// The Special Pool bug check for a fault below DISPATCH_LEVEL.
        let specialPoolCode: ULONG?, what: String, why: String
        switch fault {
        case .freed(let block):
            // https://learn.microsoft.com/windows-hardware/drivers/debugger/bug-check-0xd5--driver-page-fault-in-freed-special-pool
            specialPoolCode = DRIVER_PAGE_FAULT_IN_FREED_SPECIAL_POOL
            what = "\(hex(address)) was \(verb) after its pool block \(describe(block)) was freed"
            why = " Special Pool keeps freed pages reserved and inaccessible."
        case .beyondEnd(let block):
            // https://learn.microsoft.com/windows-hardware/drivers/debugger/bug-check-0xd6--driver-page-fault-beyond-end-of-allocation
            let past = address - UInt(bitPattern: block.start + block.size)
            specialPoolCode = DRIVER_PAGE_FAULT_BEYOND_END_OF_ALLOCATION
            what = "\(hex(address)) was \(verb), \(past) bytes past the end of pool block \(describe(block))"
            why = " Special Pool ends each block at the end of its pages, before a no-access page."
        case .pagedOut(let block):
            specialPoolCode = nil
            what = "Paged pool at \(hex(address)), in block \(describe(block)), was \(verb)"
            why = " Driver Verifier's Force IRQL Checking pages all pageable memory out whenever the IRQL rises to "
                + "DISPATCH_LEVEL or a spin lock is requested."
        }
        guard let specialPoolCode, irql < DISPATCH_LEVEL else {
            pageFaultAtRaisedIrql(address, access: readOrWrite, instruction: access.instruction, what, why + accessSite())
        }
        bugCheck(specialPoolCode, address, readOrWrite, access.instruction, 0, note: what + "." + why + accessSite())
    }

    /// 0xD1 for memory that faulted at DISPATCH_LEVEL or above (`access`: 0 read, 1 write,
    /// 8 execute): "page faults cannot be serviced" there.
    /// https://learn.microsoft.com/windows-hardware/drivers/debugger/bug-check-0xd1--driver-irql-not-less-or-equal
    func pageFaultAtRaisedIrql(_ address: ULONG_PTR, access: ULONG_PTR, instruction: ULONG_PTR, _ what: String,
                               _ why: String) -> Never {
        bugCheck(DRIVER_IRQL_NOT_LESS_OR_EQUAL, address, ULONG_PTR(irql), access, instruction,
                 note: "\(what) at IRQL \(irql), and page faults cannot be serviced at DISPATCH_LEVEL or above." + why)
    }

    /// A memory access has no call site of its own: the report's source line is the thread's last
    /// kernel call.
    private func accessSite() -> String {
        guard let call = current.recentCalls.last else { return "" }
        return " The access happened after \(call.routine) at \(call.file):\(call.line)."
    }

    private func describe(_ block: PoolBlock) -> String {
        let tag = withUnsafeBytes(of: block.tag.littleEndian) { String(decoding: $0, as: UTF8.self) }
        return "\(hex(address(block.start))) (\(block.size) bytes, tag '\(tag)')"
    }
}
