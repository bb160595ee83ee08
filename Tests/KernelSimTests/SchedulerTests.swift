import XCTest
@testable import KernelSim

final class SchedulerTests: XCTestCase {
    /// Two threads each append their name three times, with a kernel call between appends.
    private func interleaving(seed: UInt64) -> (log: [String], trace: KsTrace) {
        var log: [String] = []
        let m = simulate(seed: seed) {
            let hs = ["a", "b"].map { name in
                startThread {
                    for _ in 0..<3 {
                        log.append(name)
                        _ = KeGetCurrentIrql()
                    }
                }
            }
            for h in hs { join(h) }
        }
        assertCompleted(m)
        return (log, m.events.trace)
    }

    func testTheSameSeedGivesTheSameInterleaving() {
        for seed in [0, 1, 42, 0xDEAD_BEEF] as [UInt64] {
            let first = interleaving(seed: seed), second = interleaving(seed: seed)
            XCTAssertEqual(first.log, second.log, "seed \(seed)")
            XCTAssertEqual(first.trace, second.trace, "seed \(seed)")
            XCTAssertFalse(first.trace.interleaving().isEmpty)
        }
    }

    func testDifferentSeedsExploreDifferentInterleavings() {
        let logs = Set((0..<20 as Range<UInt64>).map { interleaving(seed: $0).log })
        XCTAssertGreaterThanOrEqual(logs.count, 2)
    }

    func testNoThreadSwitchOnAProcessorAtDispatchLevel() {
        for seed in 0..<20 as Range<UInt64> {
            var log: [String] = []
            let m = simulate(seed: seed, processors: 1) {
                let b = startThread {
                    for _ in 0..<5 {
                        log.append("b")
                        _ = KeGetCurrentIrql()
                    }
                }
                for _ in 0..<3 {
                    let old = KeRaiseIrqlToDpcLevel()
                    log.append("a1")
                    for _ in 0..<4 { _ = KeGetCurrentIrql() }
                    log.append("a2")
                    KeLowerIrql(old)
                }
                join(b)
            }
            assertCompleted(m)
            for (i, entry) in log.enumerated() where entry == "a1" {
                XCTAssertEqual(log[i + 1], "a2", "seed \(seed): \(log)")
            }
        }
    }

    func testPassiveThreadsArePreemptedOnOneProcessor() {
        let logs = Set((0..<20 as Range<UInt64>).map { seed -> [String] in
            var log: [String] = []
            let m = simulate(seed: seed, processors: 1) {
                let hs = ["a", "b"].map { name in
                    startThread {
                        for _ in 0..<3 {
                            log.append(name)
                            _ = KeGetCurrentIrql()
                        }
                    }
                }
                for h in hs { join(h) }
            }
            assertCompleted(m)
            return log
        })
        XCTAssertGreaterThanOrEqual(logs.count, 2, "threads at PASSIVE_LEVEL interleave even on one processor")
    }

    func testManyMachinesRunInOneProcess() {
        for seed in 0..<50 as Range<UInt64> {
            var done = false
            assertCompleted(simulate(seed: seed) {
                join(startThread { done = true })
            })
            XCTAssertTrue(done)
        }
    }

    func testDbgPrintWritesToStdout() {
        // Output itself goes to the test log; here we check it is a kernel call like any other.
        let m = simulate {
            DbgPrint("KernelSim DbgPrint test\n")
            KdPrint("KernelSim KdPrint test\n")
        }
        assertCompleted(m)
        XCTAssertEqual(m.threads[0].recentCalls.map(\.routine), ["DbgPrint", "KdPrint"])
    }
}
