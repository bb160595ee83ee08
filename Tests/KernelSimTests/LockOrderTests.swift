import XCTest
@testable import KernelSim

/// Two fast mutexes in stable storage.
final class TwoMutexes {
    var a = FAST_MUTEX()
    var b = FAST_MUTEX()
    init() {
        ExInitializeFastMutex(&a)
        ExInitializeFastMutex(&b)
    }
}

final class LockOrderTests: XCTestCase {
    /// Thread 2 takes A then B; thread 3 takes B then A. Run one after the other they cannot
    /// hang, yet Verifier reports the inverted order the first time it is attempted.
    func testInvertedFastMutexOrderIs0xC4_0x1001EvenWithoutAHang() {
        var addresses: (a: ULONG_PTR, b: ULONG_PTR) = (0, 0)
        let m = simulate {
            let locks = TwoMutexes()
            addresses = (addressOf(&locks.a), addressOf(&locks.b))
            join(startThread {
                ExAcquireFastMutex(&locks.a)
                ExAcquireFastMutex(&locks.b)
                ExReleaseFastMutex(&locks.b)
                ExReleaseFastMutex(&locks.a)
            })
            join(startThread {
                ExAcquireFastMutex(&locks.b)
                ExAcquireFastMutex(&locks.a)
                ExReleaseFastMutex(&locks.a)
                ExReleaseFastMutex(&locks.b)
            })
        }
        assertBugCheck(m, DRIVER_VERIFIER_DETECTED_VIOLATION, [0x1001, addresses.a, 0, 0])
        guard let report = bugCheck(of: m)?.report else { return }
        XCTAssertTrue(report.contains("would cause a deadlock"), report)
        XCTAssertTrue(report.contains("thread 2 acquired FAST_MUTEX \(hex(addresses.a)) at \(#filePath):"), report)
        XCTAssertTrue(report.contains("then FAST_MUTEX \(hex(addresses.b)) at \(#filePath):"), report)
        XCTAssertTrue(report.contains("Now thread 3 holds FAST_MUTEX \(hex(addresses.b))"), report)
        XCTAssertTrue(report.contains("is acquiring FAST_MUTEX \(hex(addresses.a))"), report)
        XCTAssertEqual(bugCheck(of: m)?.line, #line - 12, "the faulting call is thread 3's acquire of A")
    }

    private func concurrentABBA(_ locks: @escaping () -> TwoMutexes) -> () -> Void {
        return {
            let l = locks()
            let one = startThread {
                ExAcquireFastMutex(&l.a)
                ExAcquireFastMutex(&l.b)
                ExReleaseFastMutex(&l.b)
                ExReleaseFastMutex(&l.a)
            }
            let two = startThread {
                ExAcquireFastMutex(&l.b)
                ExAcquireFastMutex(&l.a)
                ExReleaseFastMutex(&l.a)
                ExReleaseFastMutex(&l.b)
            }
            join(one, two)
        }
    }

    /// Racing ABBA: with Verifier on every schedule stops at 0x1001 before any thread can hang;
    /// with Verifier off (retail) exploration finds the schedule that really deadlocks.
    func testVerifierStopsTheRaceBeforeItHangsAndRetailDeadlocks() {
        let body = concurrentABBA { TwoMutexes() }
        for seed in 0..<50 as Range<UInt64> {
            guard case .bugCheck(let check) = KsRunMachine(KsMachineOptions(seed: seed), body) else {
                return XCTFail("seed \(seed): Verifier on must bug-check, not hang or complete")
            }
            XCTAssertEqual(check.code, DRIVER_VERIFIER_DETECTED_VIOLATION)
            XCTAssertEqual(check.parameters[0], 0x1001, "seed \(seed)")
        }
        let retail = KsExplore(KsExploreOptions(schedules: 200, verifier: false), body)
        guard let failure = retail.failure, case .deadlock(let report) = failure.outcome else {
            return XCTFail("retail exploration should find the ABBA deadlock: \(String(describing: retail.failure?.outcome))")
        }
        XCTAssertTrue(report.contains("DEADLOCK"), report)
        XCTAssertEqual(report.components(separatedBy: "sleeping on its Event").count - 1, 2, report)
        XCTAssertEqual(failure.trace.events.last?.kind, .deadlock)
    }

    func testInvertedSpinLockOrderIs0xC4_0x1001() {
        final class Pair { var x: KSPIN_LOCK = 0; var y: KSPIN_LOCK = 0 }
        var addresses: (x: ULONG_PTR, y: ULONG_PTR) = (0, 0)
        let m = simulate {
            let p = Pair()
            KeInitializeSpinLock(&p.x)
            KeInitializeSpinLock(&p.y)
            addresses = (addressOf(&p.x), addressOf(&p.y))
            let old = KeRaiseIrqlToDpcLevel()
            KeAcquireSpinLockAtDpcLevel(&p.x)
            KeAcquireSpinLockAtDpcLevel(&p.y)
            KeReleaseSpinLockFromDpcLevel(&p.y)
            KeReleaseSpinLockFromDpcLevel(&p.x)
            KeAcquireSpinLockAtDpcLevel(&p.y)
            KeAcquireSpinLockAtDpcLevel(&p.x)
            KeLowerIrql(old)
        }
        assertBugCheck(m, DRIVER_VERIFIER_DETECTED_VIOLATION, [0x1001, addresses.x, 0, 0])
        let report = bugCheck(of: m)?.report ?? ""
        XCTAssertTrue(report.contains("Now thread 1 holds KSPIN_LOCK \(hex(addresses.y))"), report)
    }

    func testACycleThroughThreeLocksIsFound() {
        let storage = UnsafeMutablePointer<FAST_MUTEX>.allocate(capacity: 3)
        defer { storage.deallocate() }
        storage.initialize(repeating: FAST_MUTEX(), count: 3)
        let m = simulate {
            for i in 0..<3 { ExInitializeFastMutex(storage + i) }
            for (first, second) in [(0, 1), (1, 2), (2, 0)] {
                ExAcquireFastMutex(storage + first)
                ExAcquireFastMutex(storage + second)
                ExReleaseFastMutex(storage + second)
                ExReleaseFastMutex(storage + first)
            }
        }
        assertBugCheck(m, DRIVER_VERIFIER_DETECTED_VIOLATION, [0x1001, addressOf(storage), 0, 0])
        XCTAssertTrue(bugCheck(of: m)?.report.contains("a cycle of 3 locks") ?? false)
    }

    func testOneConsistentOrderNeverBugChecks() {
        let exploration = KsExplore(KsExploreOptions(schedules: 100)) {
            let l = TwoMutexes()
            let hs = (0..<2).map { _ in
                startThread {
                    ExAcquireFastMutex(&l.a)
                    ExAcquireFastMutex(&l.b)
                    ExReleaseFastMutex(&l.b)
                    ExReleaseFastMutex(&l.a)
                }
            }
            for h in hs { join(h) }
        }
        XCTAssertTrue(exploration.passed, exploration.failure.map { "\($0.outcome)" } ?? "")
    }

    /// A try-acquire never waits, so taking A with ExTryToAcquireFastMutex while holding B
    /// establishes no B → A order.
    func testATryAcquireEstablishesNoOrder() {
        let m = simulate {
            let l = TwoMutexes()
            ExAcquireFastMutex(&l.b)
            XCTAssertEqual(ExTryToAcquireFastMutex(&l.a), TRUE)
            ExReleaseFastMutex(&l.a)
            ExReleaseFastMutex(&l.b)
            ExAcquireFastMutex(&l.a)
            ExAcquireFastMutex(&l.b)
            ExReleaseFastMutex(&l.b)
            ExReleaseFastMutex(&l.a)
        }
        assertCompleted(m)
    }

    func testReleasingOutOfOrderIs0xC4_0x1003() {
        var addresses: (a: ULONG_PTR, b: ULONG_PTR) = (0, 0)
        let m = simulate {
            let l = TwoMutexes()
            addresses = (addressOf(&l.a), addressOf(&l.b))
            KeEnterCriticalRegion()
            ExAcquireFastMutexUnsafe(&l.a)
            ExAcquireFastMutexUnsafe(&l.b)
            ExReleaseFastMutexUnsafe(&l.a)
        }
        assertBugCheck(m, DRIVER_VERIFIER_DETECTED_VIOLATION, [0x1003, addresses.a, addresses.b, 0])
        let retail = simulate(verifier: false) {
            let l = TwoMutexes()
            KeEnterCriticalRegion()
            ExAcquireFastMutexUnsafe(&l.a)
            ExAcquireFastMutexUnsafe(&l.b)
            ExReleaseFastMutexUnsafe(&l.a)
            ExReleaseFastMutexUnsafe(&l.b)
            KeLeaveCriticalRegion()
        }
        assertCompleted(retail)
    }
}
