import XCTest
@testable import KernelSim

final class FastMutexTests: XCTestCase {
    func testInitializeSetsTheWdmInlineFieldsAndLeavesOldIrql() {
        var m = FAST_MUTEX()
        m.OldIrql = 0x5555_5555
        m.Contention = 7
        let machine = simulate { ExInitializeFastMutex(&m) }
        assertCompleted(machine)
        XCTAssertEqual(m.Count, FM_LOCK_BIT)
        XCTAssertNil(m.Owner)
        XCTAssertEqual(m.Contention, 0)
        XCTAssertEqual(m.OldIrql, 0x5555_5555)
        XCTAssertEqual(m.Event.Header.Type, EventSynchronizationObject)
        XCTAssertEqual(m.Event.Header.SignalState, 0)
    }

    func testAcquireAndReleaseFieldValues() {
        var observed: [String] = []
        let machine = simulate {
            var m = FAST_MUTEX()
            ExInitializeFastMutex(&m)
            for start in [PASSIVE_LEVEL, APC_LEVEL] {
                var old: KIRQL = 0
                KeRaiseIrql(start, &old)
                ExAcquireFastMutex(&m)
                observed.append("acquired at \(start): Count=\(m.Count) owner=\(m.Owner == KeGetCurrentThread()) "
                    + "OldIrql=\(m.OldIrql) IRQL=\(KeGetCurrentIrql()) apcsDisabled=\(KeAreApcsDisabled())")
                observed.append("try while owned: \(ExTryToAcquireFastMutex(&m)) Count=\(m.Count) "
                    + "Contention=\(m.Contention) IRQL=\(KeGetCurrentIrql())")
                ExReleaseFastMutex(&m)
                observed.append("released: Count=\(m.Count) owner=\(m.Owner == nil ? "NULL" : "set") "
                    + "OldIrql=\(m.OldIrql) IRQL=\(KeGetCurrentIrql())")
                KeLowerIrql(old)
            }
        }
        assertCompleted(machine)
        XCTAssertEqual(observed, [
            "acquired at 0: Count=0 owner=true OldIrql=0 IRQL=1 apcsDisabled=0",
            "try while owned: 0 Count=0 Contention=0 IRQL=1",
            "released: Count=1 owner=NULL OldIrql=0 IRQL=0",
            "acquired at 1: Count=0 owner=true OldIrql=1 IRQL=1 apcsDisabled=0",
            "try while owned: 0 Count=0 Contention=0 IRQL=1",
            "released: Count=1 owner=NULL OldIrql=1 IRQL=1",
        ])
    }

    func testTryToAcquireAFreeMutexRaisesToApcLevel() {
        var observed: [String] = []
        let machine = simulate {
            var m = FAST_MUTEX()
            ExInitializeFastMutex(&m)
            let got = ExTryToAcquireFastMutex(&m)
            observed.append("\(got) Count=\(m.Count) OldIrql=\(m.OldIrql) IRQL=\(KeGetCurrentIrql())")
            ExReleaseFastMutex(&m)
            observed.append("Count=\(m.Count) IRQL=\(KeGetCurrentIrql())")
        }
        assertCompleted(machine)
        XCTAssertEqual(observed, ["1 Count=0 OldIrql=0 IRQL=1", "Count=1 IRQL=0"])
    }

    func testUnsafeVariantsLeaveIrqlAndOldIrqlAlone() {
        var observed: [String] = []
        let machine = simulate {
            var m = FAST_MUTEX()
            ExInitializeFastMutex(&m)
            m.OldIrql = 0x55
            var old: KIRQL = 0
            KeRaiseIrql(APC_LEVEL, &old)
            ExAcquireFastMutexUnsafe(&m)
            observed.append("Count=\(m.Count) OldIrql=\(m.OldIrql) IRQL=\(KeGetCurrentIrql())")
            ExReleaseFastMutexUnsafe(&m)
            observed.append("Count=\(m.Count) IRQL=\(KeGetCurrentIrql())")
            KeLowerIrql(old)
            KeEnterCriticalRegion()
            ExAcquireFastMutexUnsafe(&m)
            observed.append("in critical region: Count=\(m.Count) IRQL=\(KeGetCurrentIrql())")
            ExReleaseFastMutexUnsafe(&m)
            KeLeaveCriticalRegion()
        }
        assertCompleted(machine)
        XCTAssertEqual(observed, ["Count=0 OldIrql=85 IRQL=1", "Count=1 IRQL=1", "in critical region: Count=0 IRQL=0"])
    }

    /// The lock-bit worked trace of reactos-sync-semantics.md §2.7.B (the KeGuardedMutex kmtest
    /// sequence): A owns; C blocks; A releases; D and E block; C releases; D releases; E releases.
    func testContendedTraceReproducesTheLockBitWorkedTrace() {
        let fast = MutexRoutines(initialize: { ExInitializeFastMutex($0) }, acquire: { ExAcquireFastMutex($0) },
                                 tryToAcquire: { ExTryToAcquireFastMutex($0) }, release: { ExReleaseFastMutex($0) },
                                 acquireUnsafe: { ExAcquireFastMutexUnsafe($0) },
                                 releaseUnsafe: { ExReleaseFastMutexUnsafe($0) })
        for seed in 0..<8 as Range<UInt64> {
            let run = handOff(fast, seed: seed, fields: { " OldIrql=\($0.OldIrql)" })
            assertCompleted(run.machine)
            XCTAssertEqual(run.snapshots, [
                "A acquires: Count=0 Owner=A Contention=0 OldIrql=0",
                "C blocks: Count=4 Owner=A Contention=1 OldIrql=0",
                "A releases: Count=0 Owner=C Contention=1 OldIrql=1",
                "D blocks: Count=4 Owner=C Contention=2 OldIrql=1",
                "E blocks: Count=8 Owner=C Contention=3 OldIrql=1",
                "C releases: Count=4 Owner=D Contention=3 OldIrql=1",
                "E releases: Count=1 Owner=NULL Contention=3 OldIrql=0",
            ], "seed \(seed)")
            XCTAssertEqual(run.owners, ["C", "D", "E"], "FIFO hand-off, seed \(seed)")
            // Every value Count took, including the transient ones between interlocked steps:
            // XADD makes 5 (or 9), the CAS hands off to 3 (or 7), the woken waiter XORs 3 away.
            XCTAssertEqual(run.machine.countTrace.map(\.count), [1, 0, 4, 5, 3, 0, 4, 8, 9, 7, 4, 5, 3, 0, 1],
                           "seed \(seed)")
        }
    }

    func testWaitersAreHandedTheMutexInArrivalOrder() {
        for seed in 0..<10 as Range<UInt64> {
            var order: [Int] = []
            let machine = simulate(seed: seed) {
                var m = FAST_MUTEX()
                ExInitializeFastMutex(&m)
                let gates = (1...4).map { _ in Gate() }
                let handles = (1...4).map { i in
                    startThread {
                        gates[i - 1].pass()
                        ExAcquireFastMutex(&m)
                        order.append(i)
                        ExReleaseFastMutex(&m)
                    }
                }
                ExAcquireFastMutex(&m)
                for i in 1...4 {
                    gates[i - 1].open()
                    waitUntil { m.Count == LONG(4 * i) }
                }
                ExReleaseFastMutex(&m)
                for h in handles { join(h) }
            }
            assertCompleted(machine)
            XCTAssertEqual(order, [1, 2, 3, 4], "seed \(seed)")
        }
    }

    func testMutualExclusionUnderContention() {
        for seed in 0..<10 as Range<UInt64> {
            var inside = 0, maxInside = 0, total = 0
            let machine = simulate(seed: seed, processors: 2) {
                var m = FAST_MUTEX()
                ExInitializeFastMutex(&m)
                let hs = (0..<3).map { _ in
                    startThread {
                        for _ in 0..<4 {
                            ExAcquireFastMutex(&m)
                            inside += 1
                            maxInside = max(maxInside, inside)
                            _ = KeGetCurrentIrql()
                            total += 1
                            inside -= 1
                            ExReleaseFastMutex(&m)
                        }
                    }
                }
                for h in hs { join(h) }
                XCTAssertEqual(m.Count, 1)
            }
            assertCompleted(machine)
            XCTAssertEqual(total, 12)
            XCTAssertEqual(maxInside, 1, "seed \(seed)")
        }
    }

    func testForgettingTheLockBitDeadlocksOnTheFirstAcquire() {
        let machine = simulate {
            var m = FAST_MUTEX()
            // A hand-written ExInitializeFastMutex that forgets Count = FM_LOCK_BIT.
            m.Owner = nil
            m.Contention = 0
            KeInitializeEvent(&m.Event, SynchronizationEvent, FALSE)
            ExAcquireFastMutex(&m)
        }
        let report = deadlockReport(of: machine)
        XCTAssertTrue(report.contains("thread 1 (KsRunMachine body): waiting in ExAcquireFastMutex"), report)
        XCTAssertTrue(report.contains("Count=4 Owner=NULL Contention=1"), report)
        XCTAssertTrue(report.contains("FM_LOCK_BIT"), report)
    }

    /// Retail only: Verifier reports 0xC4/0x1000 instead (LockOrderTests).
    func testRecursiveAcquireOnRetailIsReportedAsTheDeadlockItIs() {
        let machine = simulate(verifier: false) {
            var m = FAST_MUTEX()
            ExInitializeFastMutex(&m)
            ExAcquireFastMutex(&m)
            ExAcquireFastMutex(&m)
        }
        let report = deadlockReport(of: machine)
        XCTAssertTrue(report.contains("which it already owns"), report)
        XCTAssertTrue(report.contains("Owner=thread 1"), report)
    }

    /// Both the acquire and the try (DDI rule IrqlExApcLte1 names the two) are 0xC4/0x33 above
    /// APC_LEVEL.
    func testAcquireOrTryAboveApcLevelIs0xC4_0x33() {
        let acquires: [(PFAST_MUTEX) -> Void] = [{ ExAcquireFastMutex($0) }, { _ = ExTryToAcquireFastMutex($0) }]
        for acquire in acquires {
            var mutexAddress: ULONG_PTR = 0
            let machine = simulate {
                var m = FAST_MUTEX()
                ExInitializeFastMutex(&m)
                mutexAddress = addressOf(&m)
                _ = KeRaiseIrqlToDpcLevel()
                acquire(&m)
            }
            assertBugCheck(machine, 0xC4, [0x33, 2, mutexAddress, 0])
        }
    }

    func testAcquireAtDispatchOnRetailLowersToApcLevel() {
        var observed: [KIRQL] = []
        let machine = simulate(verifier: false) {
            var m = FAST_MUTEX()
            ExInitializeFastMutex(&m)
            let old = KeRaiseIrqlToDpcLevel()
            ExAcquireFastMutex(&m)
            observed += [KeGetCurrentIrql(), KIRQL(m.OldIrql)]
            ExReleaseFastMutex(&m)
            observed.append(KeGetCurrentIrql())
            KeLowerIrql(old)
        }
        assertCompleted(machine)
        XCTAssertEqual(observed, [APC_LEVEL, DISPATCH_LEVEL, DISPATCH_LEVEL])
    }

    func testReleaseAwayFromApcLevelIs0xC4_0x34() {
        var mutexAddress: ULONG_PTR = 0
        let machine = simulate {
            var m = FAST_MUTEX()
            ExInitializeFastMutex(&m)
            mutexAddress = addressOf(&m)
            ExAcquireFastMutex(&m)
            KeLowerIrql(PASSIVE_LEVEL)
            ExReleaseFastMutex(&m)
        }
        assertBugCheck(machine, 0xC4, [0x34, 0, 0, mutexAddress])
    }

    func testUnsafeAcquireAtPassiveOutsideACriticalRegionIs0xC4_0x39() {
        var mutexAddress: ULONG_PTR = 0
        let machine = simulate {
            var m = FAST_MUTEX()
            ExInitializeFastMutex(&m)
            mutexAddress = addressOf(&m)
            ExAcquireFastMutexUnsafe(&m)
        }
        assertBugCheck(machine, 0xC4, [0x39, 0, 0, mutexAddress])
    }

    func testUnsafeAcquireAtDispatchInsideACriticalRegionIs0xC4_0x39WithTheApcDisableCount() {
        var mutexAddress: ULONG_PTR = 0
        let machine = simulate {
            var m = FAST_MUTEX()
            ExInitializeFastMutex(&m)
            mutexAddress = addressOf(&m)
            KeEnterCriticalRegion()
            _ = KeRaiseIrqlToDpcLevel()
            ExAcquireFastMutexUnsafe(&m)
        }
        assertBugCheck(machine, 0xC4, [0x39, 2, 0xFFFF, mutexAddress])
    }

    func testUnsafeReleaseAtPassiveOutsideACriticalRegionIs0xC4_0x3A() {
        var mutexAddress: ULONG_PTR = 0
        let machine = simulate {
            var m = FAST_MUTEX()
            ExInitializeFastMutex(&m)
            mutexAddress = addressOf(&m)
            KeEnterCriticalRegion()
            ExAcquireFastMutexUnsafe(&m)
            KeLeaveCriticalRegion()
            ExReleaseFastMutexUnsafe(&m)
        }
        assertBugCheck(machine, 0xC4, [0x3A, 0, 0, mutexAddress])
    }

    func testReleaseByAnotherThreadIs0xC4_0x1004() {
        var mutexAddress: ULONG_PTR = 0
        var owner: ULONG_PTR = 0
        var releaser: ULONG_PTR = 0
        let machine = simulate {
            var m = FAST_MUTEX()
            ExInitializeFastMutex(&m)
            mutexAddress = addressOf(&m)
            let acquired = Gate()
            let h = startThread {
                releaser = ULONG_PTR(bitPattern: KeGetCurrentThread())
                acquired.pass()
                var old: KIRQL = 0
                KeRaiseIrql(APC_LEVEL, &old)
                ExReleaseFastMutex(&m)
            }
            ExAcquireFastMutex(&m)
            owner = ULONG_PTR(bitPattern: KeGetCurrentThread())
            acquired.open()
            waitUntil { false }
        }
        assertBugCheck(machine, 0xC4, [0x1004, mutexAddress, owner, releaser])
    }

    func testReleasingAFreeMutexUnderVerifierIs0xC4_0x1007() {
        var mutexAddress: ULONG_PTR = 0
        let machine = simulate {
            var m = FAST_MUTEX()
            ExInitializeFastMutex(&m)
            mutexAddress = addressOf(&m)
            var old: KIRQL = 0
            KeRaiseIrql(APC_LEVEL, &old)
            ExReleaseFastMutexUnsafe(&m)
        }
        assertBugCheck(machine, 0xC4, [0x1007, mutexAddress, 0, 0])
    }

    func testReleasingAFreeMutexOnRetailBanksASignal() {
        var m = FAST_MUTEX()
        let machine = simulate(verifier: false) {
            ExInitializeFastMutex(&m)
            var old: KIRQL = 0
            KeRaiseIrql(APC_LEVEL, &old)
            ExReleaseFastMutexUnsafe(&m)
            KeLowerIrql(old)
        }
        assertCompleted(machine)
        XCTAssertEqual(m.Count, 0, "XADD makes 2, then the CAS 2 → 0 hands off to nobody")
        XCTAssertEqual(m.Event.Header.SignalState, 1)
    }
}
