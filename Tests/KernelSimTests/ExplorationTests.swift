import Glibc
import XCTest
@testable import KernelSim

/// Two threads that each increment a shared counter `iterations` times, with `KeGetCurrentIrql`
/// between reading and writing it (a scheduling point inside the race window) unless `locked`.
final class RacyCounter {
    var mutex = FAST_MUTEX()
    var value = 0

    static func body(locked: Bool, iterations: Int = 10, result: @escaping (Int) -> Void) -> () -> Void {
        return {
            let c = RacyCounter()
            ExInitializeFastMutex(&c.mutex)
            let hs = (0..<2).map { _ in
                startThread {
                    for _ in 0..<iterations {
                        if locked { ExAcquireFastMutex(&c.mutex) }
                        let seen = c.value
                        _ = KeGetCurrentIrql()
                        c.value = seen + 1
                        if locked { ExReleaseFastMutex(&c.mutex) }
                    }
                }
            }
            for h in hs { join(h) }
            result(c.value)
        }
    }
}

func monotonicSeconds() -> Double {
    var t = timespec()
    clock_gettime(CLOCK_MONOTONIC, &t)
    return Double(t.tv_sec) + Double(t.tv_nsec) / 1e9
}

/// Thread A writes `x = 1` late in its run and checks it one kernel call later; thread B writes
/// `x = 2` late in its run. The check fails only if B's write falls between A's write and A's
/// check: two ordering constraints, a bug of depth 2 in PCT's terms.
final class OrderingBug {
    var x = 0
    var broken = false

    static func body(_ bug: OrderingBug, work: Int = 10) -> () -> Void {
        return {
            bug.x = 0
            bug.broken = false
            let a = startThread {
                for _ in 0..<work { _ = KeGetCurrentIrql() }
                bug.x = 1
                _ = KeGetCurrentIrql()
                if bug.x != 1 { bug.broken = true }
            }
            let b = startThread {
                for _ in 0..<work { _ = KeGetCurrentIrql() }
                bug.x = 2
            }
            join(a, b)
        }
    }
}

final class ExplorationTests: XCTestCase {
    /// The brief's budget: 1,000 schedules of a two-thread fast-mutex scenario (~20 kernel calls
    /// per thread) well under a second in the debug build. Timing is printed, not asserted.
    func testThousandSchedulesOfATwoThreadFastMutexScenario() {
        var total = 0
        let start = monotonicSeconds()
        let exploration = KsExplore(KsExploreOptions(schedules: 1_000), failed: { total != 20 },
                                    RacyCounter.body(locked: true) { total = $0 })
        let elapsed = monotonicSeconds() - start
        XCTAssertTrue(exploration.passed, exploration.failure.map { $0.interleaving() } ?? "")
        XCTAssertEqual(exploration.schedulesRun, 1_000)
        print("1000 schedules of the locked two-thread counter: \(elapsed) s")
    }

    func testExplorationStopsAtTheFirstLostUpdateAndItsSeedReplaysIt() {
        var total = 0
        let body = RacyCounter.body(locked: false) { total = $0 }
        let exploration = KsExplore(KsExploreOptions(schedules: 200, seed: 7), failed: { total != 20 }, body)
        guard let failure = exploration.failure else { return XCTFail("200 random schedules missed the lost update") }
        XCTAssertEqual(exploration.schedulesRun, failure.index + 1, "stops at the first failure")
        XCTAssertEqual(failure.seed, 7 + UInt64(failure.index))
        let lost = total
        XCTAssertLessThan(lost, 20)
        // Every earlier schedule passed.
        for index in 0..<failure.index {
            _ = KsRunMachine(KsMachineOptions(seed: 7 + UInt64(index)), body)
            XCTAssertEqual(total, 20, "schedule \(index)")
        }
        // The seed alone replays the same interleaving and the same lost update.
        guard case .completed = KsRunMachine(KsMachineOptions(seed: failure.seed), body) else { return XCTFail("replay") }
        XCTAssertEqual(total, lost)
        XCTAssertTrue(KsLastTrace() == failure.trace, "the replay's trace equals the failing schedule's")
        let switches = failure.trace.events.filter { $0.kind == .run }.count
        let listing = failure.interleaving(last: 30)
        XCTAssertTrue(listing.hasPrefix("Interleaving (the last \(min(30, switches)) of \(switches) thread switches"), listing)
        XCTAssertTrue(listing.contains("KeGetCurrentIrql at \(#filePath):"), listing)
        XCTAssertEqual(failure.trace.interleaving(last: 30).count, min(30, switches))
        XCTAssertEqual(listing.split(separator: "\n").count, 2 + min(30, switches))
    }

    func testTheSameOptionsExploreTheSameSchedules() {
        let bug = OrderingBug()
        let first = KsExplore(KsExploreOptions(schedules: 500), failed: { bug.broken }, OrderingBug.body(bug))
        let second = KsExplore(KsExploreOptions(schedules: 500), failed: { bug.broken }, OrderingBug.body(bug))
        XCTAssertEqual(first.schedulesRun, second.schedulesRun)
        XCTAssertTrue(first.failure?.trace == second.failure?.trace)
        XCTAssertNotNil(first.failure)
    }

    /// PCT with depth 2 has one priority-change point; it finds a depth-2 bug in a run with
    /// probability ≥ 1/(n·k). Depth 1 (no change point) runs threads by priority without
    /// preemption, so it can never interleave inside A's window.
    func testPctFindsTheDepthTwoOrderingBugAndReplaysFromItsSeed() {
        let bug = OrderingBug()
        let body = OrderingBug.body(bug)
        let pct = KsExplore(KsExploreOptions(schedules: 1_000, strategy: .pct(depth: 2)), failed: { bug.broken }, body)
        guard let failure = pct.failure, case .pct(2, let k) = pct.strategy else {
            return XCTFail("PCT(depth 2) missed the depth-2 bug in 1,000 schedules")
        }
        XCTAssertGreaterThan(k, 10, "the calibration run counted the decisions with a choice")
        // n = 3 threads: the bound says one in 3k schedules finds it; allow three times that.
        XCTAssertLessThan(failure.index, 9 * k, "PCT found it within its probabilistic bound")
        XCTAssertEqual(failure.options.strategy, .pct(depth: 2, steps: k))
        // Replaying needs only the seed and "pct": the calibration resolves the same k.
        _ = KsRunMachine(KsMachineOptions(seed: failure.seed, strategy: .pct(depth: 2)), body)
        XCTAssertTrue(bug.broken)
        XCTAssertTrue(KsLastTrace() == failure.trace, "the replay's trace equals the failing schedule's")

        let serial = KsExplore(KsExploreOptions(schedules: 200, strategy: .pct(depth: 1)), failed: { bug.broken }, body)
        XCTAssertTrue(serial.passed, "depth 1 never preempts, so it cannot hit a depth-2 bug")

        let random = KsExplore(KsExploreOptions(schedules: 1_000), failed: { bug.broken }, body)
        XCTAssertNotNil(random.failure, "random exploration also reaches the window")
        print("depth-2 ordering bug: PCT found it at schedule \(failure.index) (k = \(k)), "
            + "random at schedule \(random.failure?.index ?? -1)")
    }

    func testPctKeepsASpinningThreadFromStarvingTheHolder() {
        // A thread spinning on a spin lock held by a lower-priority thread must let it run.
        let exploration = KsExplore(KsExploreOptions(schedules: 50, strategy: .pct(depth: 3), processorCount: 1)) {
            final class Shared { var lock: KSPIN_LOCK = 0 }
            let s = Shared()
            KeInitializeSpinLock(&s.lock)
            let hs = (0..<2).map { _ in
                startThread {
                    for _ in 0..<3 {
                        var old: KIRQL = 0
                        KeAcquireSpinLock(&s.lock, &old)
                        _ = KeGetCurrentIrql()
                        KeReleaseSpinLock(&s.lock, old)
                    }
                }
            }
            for h in hs { join(h) }
        }
        XCTAssertTrue(exploration.passed, exploration.failure.map { "\($0.outcome)" } ?? "")
    }

    func testSilentExplorationDiscardsOutput() {
        // The output goes to /dev/null; what matters is that stdout works again afterwards.
        let exploration = KsExplore(KsExploreOptions(schedules: 3, silent: true)) { DbgPrint("not shown\n") }
        XCTAssertTrue(exploration.passed)
        XCTAssertGreaterThanOrEqual(fcntl(STDOUT_FILENO, F_GETFD), 0)
    }
}
