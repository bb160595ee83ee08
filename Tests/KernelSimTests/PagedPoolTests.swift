import Foundation
import XCTest
@testable import KernelSim

private let tag: ULONG = 0x6B_6F_6F_42   // 'Book'

/// Acquires a fresh spin lock (raising to DISPATCH_LEVEL), runs `body`, releases it.
private func underSpinLock(_ body: () -> Void) {
    var lock: KSPIN_LOCK = 0
    KeInitializeSpinLock(&lock)
    var old: KIRQL = 0
    KeAcquireSpinLock(&lock, &old)
    body()
    KeReleaseSpinLock(&lock, old)
}

/// What the running machine's pool says a fault at `p` would be.
private func faultKind(_ p: UnsafeRawPointer) -> String {
    guard let fault = activeMachine!.pool.fault(at: UInt(bitPattern: p)) else { return "none" }
    switch fault {
    case .freed: return "freed"
    case .beyondEnd: return "beyondEnd"
    case .pagedOut: return "pagedOut"
    }
}

final class PagedPoolTests: XCTestCase {
    func testPagedPoolTrimmedByARaiseIsPagedBackInAtPassive() {
        var kinds: [String] = []
        var read: UInt64 = 0
        let m = simulate {
            let p = ExAllocatePool2(POOL_FLAG_PAGED, 3 * 4096, tag)!
            p.storeBytes(of: 0x1234_5678, toByteOffset: 8192, as: UInt64.self)
            kinds.append(faultKind(p))
            let old = KeRaiseIrqlToDpcLevel()
            kinds.append(faultKind(p))
            KeLowerIrql(old)
            read = p.load(fromByteOffset: 8192, as: UInt64.self)
            kinds.append(faultKind(p))
            p.storeBytes(of: 1, as: UInt8.self)
            ExFreePoolWithTag(p, tag)
        }
        assertCompleted(m)
        XCTAssertEqual(kinds, ["none", "pagedOut", "none"], "resident, trimmed by the raise, paged in by the read")
        XCTAssertEqual(read, 0x1234_5678)
    }

    func testWriteToPagedPoolUnderASpinLockIs0xD1Write() {
        var target: ULONG_PTR = 0
        var acquireLine = 0
        let m = simulate {
            let p = ExAllocatePool2(POOL_FLAG_PAGED, 64, tag)!
            target = ULONG_PTR(bitPattern: p + 12)
            var lock: KSPIN_LOCK = 0
            KeInitializeSpinLock(&lock)
            var old: KIRQL = 0
            acquireLine = #line; KeAcquireSpinLock(&lock, &old)
            (p + 12).storeBytes(of: 7, as: UInt32.self)
        }
        guard let b = bugCheck(of: m) else { return }
        XCTAssertEqual(b.code, DRIVER_IRQL_NOT_LESS_OR_EQUAL)
        XCTAssertEqual(Array(b.parameters[0..<3]), [target, 2, 1])
        XCTAssertNotEqual(b.parameters[3], 0, "P4 is the faulting instruction's address")
        XCTAssertEqual(b.line, acquireLine, "the report names the last kernel call")
        XCTAssertTrue(b.report.contains("The access happened after KeAcquireSpinLock at \(#filePath):\(acquireLine)."),
                      b.report)
    }

    /// Force IRQL Checking makes the bug deterministic: every run under the verifier bug-checks
    /// (each parking its thread inside the fault handler), every retail run completes.
    func testTheBugIsCaughtEveryRunUnderTheVerifierAndNeverOnRetail() {
        let body = {
            let p = ExAllocatePool2(POOL_FLAG_PAGED, 8, tag)!
            underSpinLock { p.storeBytes(of: 1, as: UInt8.self) }
            ExFreePoolWithTag(p, tag)
        }
        for seed in 0..<40 as Range<UInt64> {
            XCTAssertEqual(bugCheck(of: simulate(seed: seed, body))?.code, DRIVER_IRQL_NOT_LESS_OR_EQUAL)
            assertCompleted(simulate(seed: seed, verifier: false, body))
        }
    }

    func testReadOfPagedPoolAtDispatchIs0xD1Read() {
        var target: ULONG_PTR = 0
        let m = simulate {
            let p = ExAllocatePool2(POOL_FLAG_PAGED, 64, tag)!
            target = ULONG_PTR(bitPattern: p)
            _ = KeRaiseIrqlToDpcLevel()
            _ = p.load(as: UInt64.self)
        }
        guard let b = bugCheck(of: m) else { return }
        XCTAssertEqual(b.code, DRIVER_IRQL_NOT_LESS_OR_EQUAL)
        XCTAssertEqual(Array(b.parameters[0..<3]), [target, 2, 0])
    }

    func testRetailKeepsPagedPoolResidentSoTheSameBugGoesUnnoticed() {
        var read: UInt32 = 0
        let m = simulate(verifier: false) {
            let p = ExAllocatePool2(POOL_FLAG_PAGED, 64, tag)!
            p.storeBytes(of: 5, as: UInt32.self)
            underSpinLock {
                p.storeBytes(of: p.load(as: UInt32.self) + 1, as: UInt32.self)
                read = p.load(as: UInt32.self)
            }
            ExFreePoolWithTag(p, tag)
        }
        assertCompleted(m)
        XCTAssertEqual(read, 6)
    }

    func testNonPagedPoolIsUsableAtDispatch() {
        var read: UInt32 = 0
        let m = simulate {
            let p = ExAllocatePool2(POOL_FLAG_NON_PAGED, 64, tag)!
            underSpinLock {
                p.storeBytes(of: 9, as: UInt32.self)
                read = p.load(as: UInt32.self)
            }
            ExFreePoolWithTag(p, tag)
        }
        assertCompleted(m)
        XCTAssertEqual(read, 9)
    }

    /// Force IRQL Checking trims on a spin lock acquisition too, not only on a raise: pages another
    /// processor paged in meanwhile go out again.
    func testSpinLockAcquiredAtDispatchTrimsPagesPagedInMeanwhile() {
        var target: ULONG_PTR = 0
        let m = simulate {
            let p = ExAllocatePool2(POOL_FLAG_PAGED, 64, tag)!
            target = ULONG_PTR(bitPattern: p)
            var touched = false
            let raised = Gate()
            let h = startThread {
                let old = KeRaiseIrqlToDpcLevel()
                raised.open()
                while !touched { _ = KeGetCurrentIrql() }
                var lock: KSPIN_LOCK = 0
                KeAcquireSpinLockAtDpcLevel(&lock)
                p.storeBytes(of: 1, as: UInt8.self)
                KeReleaseSpinLockFromDpcLevel(&lock)
                KeLowerIrql(old)
            }
            raised.pass()
            p.storeBytes(of: 2, as: UInt8.self)   // at PASSIVE: paged back in
            touched = true
            join(h)
        }
        guard let b = bugCheck(of: m) else { return }
        XCTAssertEqual(b.code, DRIVER_IRQL_NOT_LESS_OR_EQUAL)
        XCTAssertEqual(Array(b.parameters[0..<3]), [target, 2, 1])
        XCTAssertTrue(b.report.contains("after KeAcquireSpinLockAtDpcLevel"), b.report)
    }

    func testUseAfterFreeIs0xD5UnderVerifierAndStaleDataOnRetail() {
        var target: ULONG_PTR = 0
        var stale: UInt32 = 0
        let body = {
            let p = ExAllocatePool2(POOL_FLAG_NON_PAGED, 64, tag)!
            target = ULONG_PTR(bitPattern: p + 4)
            (p + 4).storeBytes(of: 42, as: UInt32.self)
            ExFreePoolWithTag(p, tag)
            stale = (p + 4).load(as: UInt32.self)
        }
        let m = simulate(body)
        guard let b = bugCheck(of: m) else { return }
        XCTAssertEqual(b.code, DRIVER_PAGE_FAULT_IN_FREED_SPECIAL_POOL)
        XCTAssertEqual(b.name, "DRIVER_PAGE_FAULT_IN_FREED_SPECIAL_POOL")
        XCTAssertEqual(b.parameters[0], target)
        XCTAssertEqual(b.parameters[1], 0, "read")
        XCTAssertNotEqual(b.parameters[2], 0)
        XCTAssertEqual(b.parameters[3], 0)
        XCTAssertTrue(b.report.contains("after ExFreePoolWithTag"), b.report)
        assertCompleted(simulate(verifier: false, body))
        XCTAssertEqual(stale, 42)
    }

    func testOverrunByOneElementIs0xD6ForPagedAndNonPagedPool() {
        for flags in [POOL_FLAG_PAGED, POOL_FLAG_NON_PAGED] {
            var target: ULONG_PTR = 0
            let m = simulate {
                let items = ExAllocatePool2(flags, 4 * 8, tag)!.assumingMemoryBound(to: UInt64.self)
                target = ULONG_PTR(bitPattern: items + 4)
                for i in 0...4 { items[i] = UInt64(i) }
            }
            guard let b = bugCheck(of: m) else { return }
            XCTAssertEqual(b.code, DRIVER_PAGE_FAULT_BEYOND_END_OF_ALLOCATION)
            XCTAssertEqual(Array(b.parameters[0..<2]), [target, 1])
            XCTAssertEqual(b.parameters[3], 0)
            XCTAssertTrue(b.report.contains("0 bytes past the end of pool block"), b.report)
        }
        assertCompleted(simulate(verifier: false) {
            let items = ExAllocatePool2(POOL_FLAG_NON_PAGED, 4 * 8, tag)!.assumingMemoryBound(to: UInt64.self)
            items[4] = 1   // retail: the rest of the page absorbs it
        })
    }

    /// Windows turns only faults below DISPATCH_LEVEL into Special Pool's codes: at DISPATCH_LEVEL
    /// an overrun or a use after free is 0xD1 (WRK KeBugCheck2).
    func testSpecialPoolFaultsAtDispatchAre0xD1() {
        var targets: [ULONG_PTR] = []
        let overrun = simulate {
            let p = ExAllocatePool2(POOL_FLAG_NON_PAGED, 16, tag)!
            targets.append(ULONG_PTR(bitPattern: p + 16))
            underSpinLock { (p + 16).storeBytes(of: 1, as: UInt8.self) }
        }
        let useAfterFree = simulate {
            let p = ExAllocatePool2(POOL_FLAG_NON_PAGED, 16, tag)!
            targets.append(ULONG_PTR(bitPattern: p))
            ExFreePoolWithTag(p, tag)
            underSpinLock { _ = p.load(as: UInt8.self) }
        }
        for (m, (target, access)) in zip([overrun, useAfterFree], zip(targets, [1, 0] as [ULONG_PTR])) {
            guard let b = bugCheck(of: m) else { continue }
            XCTAssertEqual(b.code, DRIVER_IRQL_NOT_LESS_OR_EQUAL)
            XCTAssertEqual(Array(b.parameters[0..<3]), [target, 2, access])
            XCTAssertTrue(b.report.contains("Special Pool"), b.report)
        }
    }

    func testRtlMemoryRoutines() {
        var results: [SIZE_T] = []
        var bytes: [UInt8] = []
        let m = simulate {
            let a = ExAllocatePool2(POOL_FLAG_PAGED, 8, tag)!
            let b = ExAllocatePool2(POOL_FLAG_NON_PAGED, 8, tag)!
            RtlFillMemory(a, 8, 0xAB)
            RtlCopyMemory(b, a, 8)
            results.append(RtlCompareMemory(a, b, 8))
            RtlZeroMemory(b + 5, 3)
            results.append(RtlCompareMemory(a, b, 8))
            RtlMoveMemory(a + 1, a, 4)
            a.storeBytes(of: 1, as: UInt8.self)
            bytes = (0..<8).map { a.load(fromByteOffset: $0, as: UInt8.self) }
        }
        assertCompleted(m)
        XCTAssertEqual(results, [8, 5])
        XCTAssertEqual(bytes, [1, 0xAB, 0xAB, 0xAB, 0xAB, 0xAB, 0xAB, 0xAB])
    }

    func testRtlZeroMemoryOfPagedPoolUnderASpinLockNamesItsLine() {
        var zeroLine = 0
        let m = simulate {
            let p = ExAllocatePool2(POOL_FLAG_PAGED, 64, tag)!
            underSpinLock {
                zeroLine = #line; RtlZeroMemory(p, 64)
            }
        }
        guard let b = bugCheck(of: m) else { return }
        XCTAssertEqual(b.code, DRIVER_IRQL_NOT_LESS_OR_EQUAL)
        XCTAssertEqual(b.parameters[2], 1)
        XCTAssertEqual(b.line, zeroLine)
    }

    func testLeakedBlocksStayUsableAfterTheMachineEnds() {
        var p: UnsafeMutableRawPointer?
        let m = simulate {
            p = ExAllocatePool2(POOL_FLAG_PAGED, 16, tag)
            p!.storeBytes(of: 77, as: UInt32.self)
            KeLowerIrql(KeRaiseIrqlToDpcLevel())   // pages it out
        }
        assertCompleted(m)
        XCTAssertEqual(p?.load(as: UInt32.self), 77)
    }

    func testMachinesGiveTheirPagesBack() throws {
        /// The process's virtual size in pages (the first field of /proc/self/statm).
        func virtualPages() throws -> Int {
            Int(try String(contentsOfFile: "/proc/self/statm", encoding: .utf8).split(separator: " ")[0])!
        }
        let run = {
            _ = simulate {
                for _ in 0..<4 {
                    let p = ExAllocatePool2(POOL_FLAG_PAGED, 100, tag)
                    KeLowerIrql(KeRaiseIrqlToDpcLevel())
                    ExFreePoolWithTag(p, tag)
                }
            }
        }
        run()
        let before = try virtualPages()
        for _ in 0..<300 { run() }
        // Kept, the 300 × 4 freed blocks would hold 2,400 pages (a data page and a guard page each).
        XCTAssertLessThan(try virtualPages() - before, 600)
    }

    /// Classification alone: a foreign address is never the pool's.
    func testAddressesOutsideThePoolAreNotClassified() {
        var kinds: [String] = []
        let m = simulate {
            var local = 0
            let page = mmap(nil, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)!
            let p = ExAllocatePool2(POOL_FLAG_PAGED, 16, tag)!
            _ = KeRaiseIrqlToDpcLevel()
            kinds = [faultKind(&local), faultKind(page), faultKind(UnsafeRawPointer(bitPattern: 8)!), faultKind(p)]
            KeLowerIrql(PASSIVE_LEVEL)
            munmap(page, 4096)
        }
        assertCompleted(m)
        XCTAssertEqual(kinds, ["none", "none", "none", "pagedOut"])
    }

    /// The handler end to end: a bad pointer dereferenced at DISPATCH_LEVEL inside a machine with
    /// the handler installed stays a plain SIGSEGV, not a bug check. Runs `foreignFaultChild` in a
    /// child process of this test binary.
    func testAForeignFaultStaysACrash() throws {
        let child = Process()
        child.executableURL = URL(fileURLWithPath: try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"))
        child.arguments = ["KernelSimTests.PagedPoolTests/testForeignFaultChild"]
        var environment = ProcessInfo.processInfo.environment
        environment["KERNELSIM_FOREIGN_FAULT_CHILD"] = "1"
        environment["SWIFT_BACKTRACE"] = "enable=no"
        child.environment = environment
        let output = Pipe()
        child.standardOutput = output
        child.standardError = output
        try child.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        child.waitUntilExit()
        XCTAssertEqual(child.terminationReason, .uncaughtSignal, text)
        XCTAssertEqual(child.terminationStatus, SIGSEGV, text)
        XCTAssertTrue(text.contains("touching a foreign page"), text)
        XCTAssertFalse(text.contains("machine ended"), text)
    }

    func testForeignFaultChild() {
        guard ProcessInfo.processInfo.environment["KERNELSIM_FOREIGN_FAULT_CHILD"] != nil else { return }
        let m = simulate {
            let page = mmap(nil, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)!
            _ = ExAllocatePool2(POOL_FLAG_PAGED, 16, tag)
            _ = KeRaiseIrqlToDpcLevel()
            print("touching a foreign page")
            fflush(nil)
            page.storeBytes(of: 1, as: UInt8.self)
        }
        print("machine ended: \(String(describing: m.outcome))")
    }
}
