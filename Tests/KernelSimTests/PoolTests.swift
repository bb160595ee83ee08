import XCTest
@testable import KernelSim

private let tag: ULONG = 0x6B_6F_6F_42   // 'Book' as the WDK's multi-character literals store it

final class PoolTests: XCTestCase {
    func testAllocationIsZeroedAndFreeable() {
        var zeroed = false
        let m = simulate {
            let p = ExAllocatePool2(POOL_FLAG_NON_PAGED, 64, tag)!
            zeroed = (0..<64).allSatisfy { p.load(fromByteOffset: $0, as: UInt8.self) == 0 }
            p.storeBytes(of: 0xAB, as: UInt8.self)
            ExFreePoolWithTag(p, tag)
            let q = ExAllocatePool2(POOL_FLAG_PAGED, 8, tag)
            ExFreePool(q)
        }
        assertCompleted(m)
        XCTAssertTrue(zeroed)
    }

    func testNonPagedAllocationIsAllowedAtDispatchLevel() {
        let m = simulate {
            var lock: KSPIN_LOCK = 0
            KeInitializeSpinLock(&lock)
            var old: KIRQL = 0
            KeAcquireSpinLock(&lock, &old)
            let p = ExAllocatePool2(POOL_FLAG_NON_PAGED, 16, tag)
            ExFreePoolWithTag(p, tag)
            KeReleaseSpinLock(&lock, old)
        }
        assertCompleted(m)
    }

    func testInvalidFlagsFailTheAllocation() {
        var result: PVOID = UnsafeMutableRawPointer(bitPattern: 1)
        let m = simulate { result = ExAllocatePool2(POOL_FLAG_PAGED | POOL_FLAG_NON_PAGED, 16, tag) }
        assertCompleted(m)
        XCTAssertNil(result)
    }

    func testPagedAllocationAtDispatchIs0xC4_0x01UnderVerifierAnd0xC2_0x08OnRetail() {
        let body = {
            _ = KeRaiseIrqlToDpcLevel()
            _ = ExAllocatePool2(POOL_FLAG_PAGED, 32, tag)
        }
        assertBugCheck(simulate(body), 0xC4, [0x01, 2, 1, 32])
        assertBugCheck(simulate(verifier: false, body), BAD_POOL_CALLER, [0x08, 2, 1, 32])
    }

    func testNonPagedAllocationAboveDispatchUnderVerifierIs0xC4_0x02() {
        let m = simulate {
            _ = KeRaiseIrqlToSynchLevel()
            _ = ExAllocatePool2(POOL_FLAG_NON_PAGED, 32, tag)
        }
        assertBugCheck(m, 0xC4, [0x02, 12, 0x200, 32])
    }

    func testZeroByteAllocation() {
        assertBugCheck(simulate { _ = ExAllocatePool2(POOL_FLAG_NON_PAGED, 0, tag) }, 0xC4, [0x00, 0, 0x200, 0])
        assertBugCheck(simulate(verifier: false) { _ = ExAllocatePool2(POOL_FLAG_NON_PAGED, 0, tag) },
                       BAD_POOL_CALLER, [0x00, 0, 0x200, ULONG_PTR(tag)])
    }

    func testZeroTagIs0xC2_0x9B() {
        assertBugCheck(simulate { _ = ExAllocatePool2(POOL_FLAG_PAGED, 8, 0) }, BAD_POOL_CALLER, [0x9B, 1, 8, 0])
    }

    func testDoubleFreeIs0xC2_0x07() {
        var address: ULONG_PTR = 0
        let m = simulate {
            let p = ExAllocatePool2(POOL_FLAG_NON_PAGED, 8, tag)
            address = ULONG_PTR(bitPattern: p)
            ExFreePoolWithTag(p, tag)
            ExFreePoolWithTag(p, tag)
        }
        assertBugCheck(m, BAD_POOL_CALLER, [0x07, 0, ULONG_PTR(tag), address])
    }

    func testFreeWithTheWrongTagIs0xC2_0x0A() {
        var address: ULONG_PTR = 0
        let m = simulate {
            let p = ExAllocatePool2(POOL_FLAG_NON_PAGED, 8, tag)
            address = ULONG_PTR(bitPattern: p)
            ExFreePoolWithTag(p, 0x6F_6F_46)
        }
        assertBugCheck(m, BAD_POOL_CALLER, [0x0A, address, ULONG_PTR(tag), 0x6F_6F_46])
    }

    func testFreeOfPagedPoolAtDispatch() {
        var address: ULONG_PTR = 0
        let body = {
            let p = ExAllocatePool2(POOL_FLAG_PAGED, 8, tag)
            address = ULONG_PTR(bitPattern: p)
            _ = KeRaiseIrqlToDpcLevel()
            ExFreePool(p)
        }
        assertBugCheck(simulate(body), 0xC4, [0x11, 2, 1, address])
        assertBugCheck(simulate(verifier: false, body), BAD_POOL_CALLER, [0x09, 2, 1, address])
    }

    func testFreeOfAnAddressPoolNeverReturned() {
        var x = 0
        let m = simulate { ExFreePool(&x) }
        guard let b = bugCheck(of: m) else { return }
        XCTAssertEqual(b.code, 0xC4)
        XCTAssertEqual(b.parameters[0], 0x10)
    }
}
