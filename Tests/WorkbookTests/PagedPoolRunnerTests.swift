import XCTest
@testable import Workbook

/// Paged pool touched under a spin lock, end to end through chapter blocks: Driver Verifier (the
/// default) turns the latent bug into DRIVER_IRQL_NOT_LESS_OR_EQUAL every time, the retail kernel
/// (`verifier=off`) runs the same code to completion, and a use after free is caught by Special Pool.
final class PagedPoolRunnerTests: XCTestCase {
    private static let chapter = """
        # Paged pool

        ```swift
        enum Pool { static let tag: ULONG = 0x6B6F_6F42 }   // 'Book'

        func bumpUnderSpinLock() -> UInt32 {
            let counter = ExAllocatePool2(POOL_FLAG_PAGED, 64, Pool.tag)!
            counter.storeBytes(of: 41, as: UInt32.self)
            var lock: KSPIN_LOCK = 0
            KeInitializeSpinLock(&lock)
            var old: KIRQL = 0
            KeAcquireSpinLock(&lock, &old)
            counter.storeBytes(of: counter.load(as: UInt32.self) + 1, as: UInt32.self)
            KeReleaseSpinLock(&lock, old)
            let value = counter.load(as: UInt32.self)
            ExFreePoolWithTag(counter, Pool.tag)
            return value
        }
        ```

        ```swift bugcheck=DRIVER_IRQL_NOT_LESS_OR_EQUAL
        print(bumpUnderSpinLock())
        ```

        ```swift verifier=off
        print(bumpUnderSpinLock())
        ```

        ```output
        42
        ```

        ```swift
        print(bumpUnderSpinLock())
        ```

        ```swift bugcheck=DRIVER_PAGE_FAULT_IN_FREED_SPECIAL_POOL
        let p = ExAllocatePool2(POOL_FLAG_NON_PAGED, 8, Pool.tag)!
        ExFreePoolWithTag(p, Pool.tag)
        p.storeBytes(of: 1, as: UInt8.self)
        ```
        """

    func testPagedPoolUnderASpinLockBugChecksUnderVerifierAndCompletesOnRetail() throws {
        let checker = try makeChecker(name: "paged-pool")
        let results = Dictionary(uniqueKeysWithValues: checker.check(try fixtureChapter(Self.chapter)).results
            .map { ($0.block.fence.line, $0) })
        guard let verified = results[21], let retail = results[25], let unexpected = results[33],
              let useAfterFree = results[37] else {
            return XCTFail("blocks not found: \(results.keys.sorted())")
        }
        XCTAssertEqual(verified.status, .passed, verified.message)
        XCTAssertEqual(verified.bugCheck?.code, 0xD1)
        XCTAssertEqual(verified.bugCheck?.parameters[1], 2, "IRQL")
        XCTAssertEqual(verified.bugCheck?.parameters[2], 0, "the load of the increment faults first: a read")
        XCTAssertTrue(verified.bugCheck?.report.contains("The access happened after KeAcquireSpinLock at") ?? false)
        XCTAssertEqual(retail.status, .passed, retail.message)
        XCTAssertEqual(retail.stdout, "42\n")
        XCTAssertEqual(unexpected.status, .bugCheck)
        XCTAssertTrue(unexpected.message.contains("DRIVER_IRQL_NOT_LESS_OR_EQUAL (0xD1)"), unexpected.message)
        XCTAssertEqual(useAfterFree.status, .passed, useAfterFree.message)
    }
}
