import XCTest
@testable import KernelSim

final class SemaphoreTests: XCTestCase {
    func testInitializeSetsTypeSizeCountAndLimit() {
        var s = KSEMAPHORE()
        s.Header.Signalling = 0x55
        let machine = simulate {
            KeInitializeSemaphore(&s, 2, 5)
            XCTAssertEqual(KeReadStateSemaphore(&s), 2)
        }
        assertCompleted(machine)
        XCTAssertEqual(s.Header.Type, SemaphoreObject)
        XCTAssertEqual(s.Header.Size, 8, "sizeof(KSEMAPHORE) / 4 on x64")
        XCTAssertEqual(s.Header.Signalling, 0x55)
        XCTAssertEqual(s.Header.SignalState, 2)
        XCTAssertEqual(s.Limit, 5)
    }

    func testEachSatisfiedWaitTakesOneCount() {
        var results: [String] = []
        let machine = simulate {
            var s = KSEMAPHORE()
            KeInitializeSemaphore(&s, 2, 2)
            var zero = LARGE_INTEGER()
            for _ in 0..<3 {
                let status = KeWaitForSingleObject(&s, Executive, KernelMode, FALSE, &zero)
                results.append("\(status) count=\(KeReadStateSemaphore(&s))")
            }
            results.append("release returns \(KeReleaseSemaphore(&s, SEMAPHORE_INCREMENT, 2, FALSE)) "
                + "count=\(KeReadStateSemaphore(&s))")
        }
        assertCompleted(machine)
        XCTAssertEqual(results, ["0 count=1", "0 count=0", "258 count=0", "release returns 0 count=2"])
    }

    /// A release of n satisfies up to n waits, oldest first; the rest keep waiting in order.
    func testReleaseSatisfiesAsManyWaitersAsTheAdjustmentInFifoOrder() {
        for seed in 0..<8 as Range<UInt64> {
            var woken: [Int] = []
            var arrival: [Int] = []
            var stillWaiting: [Int] = []
            var counts: [LONG] = []
            let machine = simulate(seed: seed) {
                var s = KSEMAPHORE()
                KeInitializeSemaphore(&s, 0, 10)
                let handles = (1...3).map { i in
                    startThread {
                        KeWaitForSingleObject(&s, Executive, KernelMode, FALSE, nil)
                        woken.append(i)
                    }
                }
                waitUntil { waiters(&s).count == 3 }
                arrival = waiters(&s).map { t in handles.firstIndex { $0 == t }! + 1 }
                counts.append(KeReleaseSemaphore(&s, SEMAPHORE_INCREMENT, 2, FALSE))
                counts.append(KeReadStateSemaphore(&s))
                stillWaiting = waiters(&s).map { t in handles.firstIndex { $0 == t }! + 1 }
                waitUntil { woken.count == 2 }
                counts.append(KeReleaseSemaphore(&s, SEMAPHORE_INCREMENT, 3, FALSE))
                counts.append(KeReadStateSemaphore(&s))
                for h in handles { join(h) }
            }
            assertCompleted(machine)
            // The two released together may run in either order; the newest arrival keeps waiting.
            XCTAssertEqual(Set(woken.prefix(2)), Set(arrival.prefix(2)), "seed \(seed)")
            XCTAssertEqual(stillWaiting, [arrival[2]], "seed \(seed)")
            XCTAssertEqual(woken.last, arrival[2], "seed \(seed)")
            XCTAssertEqual(counts, [0, 0, 0, 2], "both releases found a count of 0; the second kept 3 - 1")
        }
    }

    func testReleasingPastTheLimitRaisesSemaphoreLimitExceeded() {
        var s = KSEMAPHORE()
        let machine = simulate {
            KeInitializeSemaphore(&s, 1, 2)
            XCTAssertEqual(KeReleaseSemaphore(&s, SEMAPHORE_INCREMENT, 1, FALSE), 1)
            KeReleaseSemaphore(&s, SEMAPHORE_INCREMENT, 1, FALSE)
        }
        assertBugCheck(machine, SYSTEM_THREAD_EXCEPTION_NOT_HANDLED, [0xFFFF_FFFF_C000_0047, 0, 0, 0])
        XCTAssertEqual(s.Header.SignalState, 2, "the count is not adjusted")
    }

    func testANegativeAdjustmentRaisesSemaphoreLimitExceeded() {
        var s = KSEMAPHORE()
        let machine = simulate {
            KeInitializeSemaphore(&s, 1, 2)
            KeReleaseSemaphore(&s, SEMAPHORE_INCREMENT, -1, FALSE)
        }
        assertBugCheck(machine, SYSTEM_THREAD_EXCEPTION_NOT_HANDLED, [0xFFFF_FFFF_C000_0047, 0, 0, 0])
        XCTAssertEqual(s.Header.SignalState, 1)
    }

    func testReleaseWithWaitTrueReturnsAtSynchLevelAndTheWaitRestoresTheIrql() {
        var observed: [String] = []
        let machine = simulate {
            var s = KSEMAPHORE(), done = KSEMAPHORE()
            KeInitializeSemaphore(&s, 0, 1)
            KeInitializeSemaphore(&done, 0, 1)
            let h = startThread {
                KeWaitForSingleObject(&s, Executive, KernelMode, FALSE, nil)
                KeReleaseSemaphore(&done, SEMAPHORE_INCREMENT, 1, FALSE)
            }
            waitUntil { waiters(&s).count == 1 }
            let previous = KeReleaseSemaphore(&s, SEMAPHORE_INCREMENT, 1, TRUE)
            observed.append("\(previous) IRQL=\(KeGetCurrentIrql())")
            let status = KeWaitForSingleObject(&done, Executive, KernelMode, FALSE, nil)
            observed.append("\(status) IRQL=\(KeGetCurrentIrql()) count=\(KeReadStateSemaphore(&done))")
            join(h)
        }
        assertCompleted(machine)
        XCTAssertEqual(observed, ["0 IRQL=12", "0 IRQL=0 count=0"])
    }

    func testDeadlockReportDescribesTheSemaphore() {
        let machine = simulate {
            var s = KSEMAPHORE()
            KeInitializeSemaphore(&s, 0, 4)
            KeWaitForSingleObject(&s, Executive, KernelMode, FALSE, nil)
        }
        let report = deadlockReport(of: machine)
        XCTAssertTrue(report.contains("(count 0, Limit 4)"), report)
    }
}
