import XCTest
@testable import KernelSim

final class GuardedMutexTests: XCTestCase {
    func testInitializeSetsTheFastMutexFieldsAndLeavesOldIrqlAndTheThreadAlone() {
        var m = KGUARDED_MUTEX()
        m.OldIrql = 0x5555_5555
        m.Contention = 7
        m.Count = 0x55
        var counters: [SHORT] = []
        let machine = simulate {
            KeInitializeGuardedMutex(&m)
            let thread = KeGetCurrentThread().assumingMemoryBound(to: KTHREAD.self)
            counters = [thread.pointee.KernelApcDisable, thread.pointee.SpecialApcDisable]
        }
        assertCompleted(machine)
        XCTAssertEqual(m.Count, FM_LOCK_BIT)
        XCTAssertNil(m.Owner)
        XCTAssertEqual(m.Contention, 0)
        XCTAssertEqual(m.OldIrql, 0x5555_5555)
        XCTAssertEqual(m.Event.Header.Type, EventSynchronizationObject)
        XCTAssertEqual(counters, [0, 0])
    }

    /// KeGuardedMutex.c items 25–33 over every IRQL × (K, S) combination the kmtest uses, on a free
    /// build (item 34: no IRQL check, nothing changes the IRQL).
    func testKmtestSequenceAcrossIrqlsAndApcDisableCounts() {
        let irqls = [PASSIVE_LEVEL, APC_LEVEL, DISPATCH_LEVEL, HIGH_LEVEL]
        let counts: [(k: SHORT, s: SHORT)] = [(0, 0), (-1, 0), (-3, 0), (0, -1), (-1, -1), (-3, -2)]
        for x in irqls {
            for (k, s) in counts {
                var observed: [String] = []
                var expected: [String] = []
                let machine = simulate(verifier: false) {
                    let thread = KeGetCurrentThread().assumingMemoryBound(to: KTHREAD.self)
                    let me = KeGetCurrentThread()
                    var m = KGUARDED_MUTEX()
                    m.OldIrql = 0x5555_5555
                    KeInitializeGuardedMutex(&m)
                    thread.pointee.KernelApcDisable = k
                    thread.pointee.SpecialApcDisable = s
                    var old: KIRQL = 0
                    KeRaiseIrql(x, &old)
                    func note(_ label: String) {
                        let owner = m.Owner == nil ? "NULL" : m.Owner == me ? "me" : "other"
                        observed.append("\(label): Count=\(m.Count) Owner=\(owner) Contention=\(m.Contention) "
                            + "OldIrql=\(m.OldIrql) K=\(thread.pointee.KernelApcDisable) S=\(thread.pointee.SpecialApcDisable) "
                            + "all=\(KeAreAllApcsDisabled()) IRQL=\(KeGetCurrentIrql())")
                    }
                    func expect(_ label: String, _ count: LONG, _ owner: String, s sNow: SHORT) {
                        let all = x >= APC_LEVEL || sNow != 0 ? 1 : 0
                        expected.append("\(label): Count=\(count) Owner=\(owner) Contention=0 OldIrql=1431655765 "
                            + "K=\(k) S=\(sNow) all=\(all) IRQL=\(x)")
                    }
                    KeAcquireGuardedMutex(&m); note("acquire")                                  // item 25
                    expect("acquire", 0, "me", s: s - 1)
                    observed.append("try while held: \(KeTryToAcquireGuardedMutex(&m))")         // item 26
                    expected.append("try while held: 0")
                    note("after failed try"); expect("after failed try", 0, "me", s: s - 1)
                    KeReleaseGuardedMutex(&m); note("release"); expect("release", 1, "NULL", s: s)   // item 27
                    observed.append("try when free: \(KeTryToAcquireGuardedMutex(&m))")          // item 28
                    expected.append("try when free: 1")
                    note("tried"); expect("tried", 0, "me", s: s - 1)
                    KeReleaseGuardedMutex(&m)
                    KeAcquireGuardedMutexUnsafe(&m); note("unsafe"); expect("unsafe", 0, "me", s: s)   // item 29
                    KeReleaseGuardedMutexUnsafe(&m); note("unsafe release"); expect("unsafe release", 1, "NULL", s: s)
                    KeAcquireGuardedMutex(&m)                                                    // item 30
                    KeReleaseGuardedMutexUnsafe(&m); note("mixed 1"); expect("mixed 1", 1, "NULL", s: s - 1)
                    KeLeaveGuardedRegion(); note("left"); expect("left", 1, "NULL", s: s)
                    KeAcquireGuardedMutexUnsafe(&m)                                              // item 31
                    KeReleaseGuardedMutex(&m); note("mixed 2"); expect("mixed 2", 1, "NULL", s: s + 1)
                    KeEnterGuardedRegion(); note("entered"); expect("entered", 1, "NULL", s: s)
                    KeReleaseGuardedMutexUnsafe(&m); note("free release"); expect("free release", 0, "NULL", s: s)  // item 32
                    for (i, count) in [1, 0, 1].enumerated() {                                    // item 33
                        KeReleaseGuardedMutex(&m)
                        note("release \(i)")
                        expect("release \(i)", LONG(count), "NULL", s: s + SHORT(i) + 1)
                    }
                    KeLowerIrql(old)
                    thread.pointee.KernelApcDisable = 0
                    thread.pointee.SpecialApcDisable = 0
                }
                assertCompleted(machine)
                XCTAssertEqual(observed, expected, "IRQL \(x), K \(k), S \(s)")
            }
        }
    }

    /// KeGuardedMutex.c items 35–41: the lock-bit worked trace, which the guarded mutex shares with
    /// the fast mutex (reactos-sync-semantics.md §2.7.B), and the guarded region of each owner.
    func testContendedTraceSharesTheFastMutexCountAlgorithm() {
        let guarded = MutexRoutines(initialize: { KeInitializeGuardedMutex($0) },
                                    acquire: { KeAcquireGuardedMutex($0) },
                                    tryToAcquire: { KeTryToAcquireGuardedMutex($0) },
                                    release: { KeReleaseGuardedMutex($0) },
                                    acquireUnsafe: { KeAcquireGuardedMutexUnsafe($0) },
                                    releaseUnsafe: { KeReleaseGuardedMutexUnsafe($0) })
        let specialApcDisable = {
            " S=\(KeGetCurrentThread().assumingMemoryBound(to: KTHREAD.self).pointee.SpecialApcDisable) "
                + "IRQL=\(KeGetCurrentIrql())"
        }
        for seed in 0..<8 as Range<UInt64> {
            let run = handOff(guarded, seed: seed, note: specialApcDisable)
            assertCompleted(run.machine)
            XCTAssertEqual(run.snapshots, [
                "A acquires: Count=0 Owner=A Contention=0",
                "C blocks: Count=4 Owner=A Contention=1",
                "A releases: Count=0 Owner=C Contention=1",
                "D blocks: Count=4 Owner=C Contention=2",
                "E blocks: Count=8 Owner=C Contention=3",
                "C releases: Count=4 Owner=D Contention=3",
                "E releases: Count=1 Owner=NULL Contention=3",
            ], "seed \(seed)")
            // C and E hold it in a guarded region; D's Unsafe acquire at APC_LEVEL enters none; no
            // acquire changes the IRQL.
            XCTAssertEqual(run.owners, ["C S=-1 IRQL=1", "D S=0 IRQL=1", "E S=-1 IRQL=0"], "FIFO hand-off, seed \(seed)")
            XCTAssertEqual(run.machine.countTrace.map(\.count), [1, 0, 4, 5, 3, 0, 4, 8, 9, 7, 4, 5, 3, 0, 1],
                           "seed \(seed)")
        }
    }

    func testGuardedRegionsNestAndDisableAllApcs() {
        var observed: [String] = []
        let machine = simulate {
            let thread = KeGetCurrentThread().assumingMemoryBound(to: KTHREAD.self)
            func note() {
                observed.append("S=\(thread.pointee.SpecialApcDisable) disabled=\(KeAreApcsDisabled()) "
                    + "all=\(KeAreAllApcsDisabled()) combined=\(String(thread.pointee.CombinedApcDisable, radix: 16))")
            }
            for _ in 0..<2 { KeEnterGuardedRegion(); note() }
            KeEnterCriticalRegion(); note()
            KeLeaveCriticalRegion()
            for _ in 0..<2 { KeLeaveGuardedRegion(); note() }
        }
        assertCompleted(machine)
        XCTAssertEqual(observed, [
            "S=-1 disabled=1 all=1 combined=ffff0000", "S=-2 disabled=1 all=1 combined=fffe0000",
            "S=-2 disabled=1 all=1 combined=fffeffff",
            "S=-1 disabled=1 all=1 combined=ffff0000", "S=0 disabled=0 all=0 combined=0",
        ])
    }

    /// A guarded region holds back special kernel APCs too; they run when the mutex is released.
    func testHoldingAGuardedMutexDefersEvenSpecialKernelApcs() {
        var log: [String] = []
        let machine = simulate {
            var m = KGUARDED_MUTEX()
            KeInitializeGuardedMutex(&m)
            let special = RecordingApc("s", for: KeGetCurrentThread(), normal: false)
            KeAcquireGuardedMutex(&m)
            special.insert()
            log.append("held: \(special.log)")
            KeReleaseGuardedMutex(&m)
            log.append("released: \(special.log)")
        }
        assertCompleted(machine)
        XCTAssertEqual(log, ["held: []", "released: [\"s kernel irql=1\"]"])
    }

    func testLeaveWithoutEnterUnderVerifierIs0xC4_0x4000E() {
        let machine = simulate { KeLeaveGuardedRegion() }
        assertBugCheck(machine, 0xC4, [0x4_000E, 0, 0, 0])
    }

    func testLeaveWithoutEnterOnRetailCountsPastZero() {
        var observed: [String] = []
        let machine = simulate(verifier: false) {
            let thread = KeGetCurrentThread().assumingMemoryBound(to: KTHREAD.self)
            KeLeaveGuardedRegion()
            observed.append("S=\(thread.pointee.SpecialApcDisable) all=\(KeAreAllApcsDisabled())")
            KeEnterGuardedRegion()
        }
        assertCompleted(machine)
        XCTAssertEqual(observed, ["S=1 all=1"])
    }

    func testEnterAboveApcLevelUnderVerifierIs0xC4_0x20010() {
        let machine = simulate {
            _ = KeRaiseIrqlToDpcLevel()
            KeEnterGuardedRegion()
        }
        assertBugCheck(machine, 0xC4, [0x2_0010, 0, 0, 0])
    }

    func testAcquireAboveApcLevelUnderVerifierIs0xC4_0x2000F() {
        for acquire in [KeAcquireGuardedMutex, KeAcquireGuardedMutexUnsafe] as [(PKGUARDED_MUTEX, String, Int) -> Void] {
            let machine = simulate {
                var m = KGUARDED_MUTEX()
                KeInitializeGuardedMutex(&m)
                _ = KeRaiseIrqlToDpcLevel()
                acquire(&m, #filePath, #line)
            }
            assertBugCheck(machine, 0xC4, [0x2_000F, 0, 0, 0])
            XCTAssertTrue(bugCheck(of: machine)?.report.contains("IrqlKeApcLte1") ?? false)
        }
    }

    /// Retail only: Verifier reports 0xC4/0x1000 instead (LockOrderTests).
    func testRecursiveAcquireOnRetailIsReportedAsADeadlock() {
        let machine = simulate(verifier: false) {
            var m = KGUARDED_MUTEX()
            KeInitializeGuardedMutex(&m)
            KeAcquireGuardedMutex(&m)
            KeAcquireGuardedMutex(&m)
        }
        let report = deadlockReport(of: machine)
        XCTAssertTrue(report.contains("waiting in KeAcquireGuardedMutex"), report)
        XCTAssertTrue(report.contains("which it already owns"), report)
    }

    func testThreadEndingWhileHoldingAGuardedMutexIs0x20WithTheGuardedRegionInTheHighHalf() {
        let machine = simulate {
            var m = KGUARDED_MUTEX()
            KeInitializeGuardedMutex(&m)
            join(startThread { KeAcquireGuardedMutex(&m) })
        }
        assertBugCheck(machine, KERNEL_APC_PENDING_DURING_EXIT, [0, 0xFFFF_0000, 0, 0])
    }
}
