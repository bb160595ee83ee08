import XCTest
@testable import KernelSim

/// The mutexes a thread owns, from its KTHREAD.MutantListHead.
private func ownedMutexes(_ thread: PKTHREAD) -> [PVOID] {
    let head = mutantListHead(thread.assumingMemoryBound(to: KTHREAD.self))
    var result: [PVOID] = []
    var entry = head.pointee.Flink!
    while entry != head {
        result.append(UnsafeMutableRawPointer(entry) - MemoryLayout<KMUTANT>.offset(of: \.MutantListEntry)!)
        entry = entry.pointee.Flink!
    }
    return result
}

private func apcCounts() -> String {
    let thread = KeGetCurrentThread().assumingMemoryBound(to: KTHREAD.self)
    return "K=\(thread.pointee.KernelApcDisable) S=\(thread.pointee.SpecialApcDisable) disabled=\(KeAreApcsDisabled()) "
        + "all=\(KeAreAllApcsDisabled()) IRQL=\(KeGetCurrentIrql())"
}

final class KernelMutexTests: XCTestCase {
    /// KeMutex.c item 49: Level is ignored; MutantListEntry and header bytes 1 and 3 are not written.
    func testInitializeMutexFieldsIgnoreLevel() {
        let poison = PLIST_ENTRY(bitPattern: 0x5555_5555_5555_5550)
        var filled = KMUTEX()
        filled.Header.Signalling = 0x55
        filled.Header.Reserved1 = 0x55
        filled.MutantListEntry.Flink = poison
        filled.Abandoned = 0x55
        filled.ApcDisable = 0x55
        filled.OwnerThread = UnsafeMutableRawPointer(bitPattern: 0x55)
        var a = filled, b = filled
        let machine = simulate {
            KeInitializeMutex(&a, 0)
            KeInitializeMutex(&b, 123)
            XCTAssertEqual(KeReadStateMutex(&a), 1)
        }
        assertCompleted(machine)
        for m in [a, b] {
            XCTAssertEqual(m.Header.Type, MutantObject)
            XCTAssertEqual(m.Header.Size, 14, "sizeof(KMUTANT) / 4 on x64")
            XCTAssertEqual(m.Header.Signalling, 0x55)
            XCTAssertEqual(m.Header.Reserved1, 0x55)
            XCTAssertEqual(m.Header.SignalState, 1)
            XCTAssertEqual(m.MutantListEntry.Flink, poison)
            XCTAssertNil(m.OwnerThread)
            XCTAssertEqual(m.Abandoned, 0)
            XCTAssertEqual(m.ApcDisable, 1)
        }
        XCTAssertEqual(MemoryLayout<KMUTANT>.stride, 0x38)
    }

    /// KeMutex.c items 50–52: the first acquisition enters a critical region, recursion only counts
    /// SignalState down, and only the last release leaves the region and frees the mutex.
    func testRecursiveAcquisitionCountsDownAndEntersOneCriticalRegion() {
        var observed: [String] = []
        var expected: [String] = []
        let machine = simulate {
            var m = KMUTEX()
            KeInitializeMutex(&m, 0)
            let me = KeGetCurrentThread()
            observed.append("free: \(apcCounts())")
            expected.append("free: K=0 S=0 disabled=0 all=0 IRQL=0")
            for i in 0..<8 {
                let status = KeWaitForSingleObject(&m, Executive, KernelMode, FALSE, nil)
                observed.append("wait \(i): \(status) state=\(KeReadStateMutex(&m)) owner=\(m.OwnerThread == me) "
                    + "list=\(ownedMutexes(me).count) \(apcCounts())")
                expected.append("wait \(i): 0 state=\(-i) owner=true list=1 K=-1 S=0 disabled=1 all=0 IRQL=0")
            }
            for i in 0..<8 {
                let previous = KeReleaseMutex(&m, FALSE)
                observed.append("release \(i): \(previous) state=\(m.Header.SignalState) owned=\(m.OwnerThread != nil) "
                    + "list=\(ownedMutexes(me).count) \(apcCounts())")
                expected.append(i < 7
                    ? "release \(i): \(-7 + i) state=\(-6 + i) owned=true list=1 K=-1 S=0 disabled=1 all=0 IRQL=0"
                    : "release \(i): 0 state=1 owned=false list=0 K=0 S=0 disabled=0 all=0 IRQL=0")
            }
        }
        assertCompleted(machine)
        XCTAssertEqual(observed, expected)
    }

    /// KeMutex.c item 47: releases count up from whatever SignalState holds.
    func testReleaseReturnsThePreviousSignalState() {
        var results: [LONG] = []
        let machine = simulate {
            var m = KMUTEX()
            KeInitializeMutex(&m, 0)
            KeWaitForSingleObject(&m, Executive, KernelMode, FALSE, nil)
            m.Header.SignalState = -1
            results += [KeReleaseMutex(&m, FALSE), m.Header.SignalState, KeReleaseMutex(&m, FALSE), m.Header.SignalState]
        }
        assertCompleted(machine)
        XCTAssertEqual(results, [-1, 0, 0, 1])
    }

    /// KeMutex.c items 46 and 53: MINLONG acquisitions succeed, one more raises
    /// STATUS_MUTANT_LIMIT_EXCEEDED, which no handler catches in a system thread.
    func testAcquiringMinlongPlusOneTimesRaisesMutantLimitExceeded() {
        var m = KMUTEX()
        var states: [LONG] = []
        let machine = simulate {
            KeInitializeMutex(&m, 0)
            KeWaitForSingleObject(&m, Executive, KernelMode, FALSE, nil)
            m.Header.SignalState = LONG.min + 1
            XCTAssertEqual(KeWaitForSingleObject(&m, Executive, KernelMode, FALSE, nil), STATUS_SUCCESS)
            states.append(m.Header.SignalState)
            KeWaitForSingleObject(&m, Executive, KernelMode, FALSE, nil)
        }
        assertBugCheck(machine, SYSTEM_THREAD_EXCEPTION_NOT_HANDLED, [0xFFFF_FFFF_C000_0191, 0, 0, 0])
        XCTAssertEqual(states, [LONG.min])
        XCTAssertEqual(m.Header.SignalState, LONG.min, "the failed acquisition changes nothing")
    }

    /// KeMutex.c item 48: releasing a free mutex raises STATUS_MUTANT_NOT_OWNED and changes nothing.
    func testReleasingAFreeMutexRaisesMutantNotOwned() {
        var m = KMUTEX()
        let machine = simulate {
            KeInitializeMutex(&m, 0)
            KeReleaseMutex(&m, FALSE)
        }
        assertBugCheck(machine, SYSTEM_THREAD_EXCEPTION_NOT_HANDLED, [0xFFFF_FFFF_C000_0046, 0, 0, 0])
        XCTAssertEqual(m.Header.SignalState, 1)
        let report = bugCheck(of: machine)!.report
        XCTAssertTrue(report.contains("SYSTEM_THREAD_EXCEPTION_NOT_HANDLED (7e)"), report)
        XCTAssertTrue(report.contains("Unhandled exception 0xC0000046"), report)
    }

    func testReleasingAnotherThreadsMutexRaisesMutantNotOwned() {
        var m = KMUTEX()
        var owner: PVOID = nil
        let machine = simulate {
            KeInitializeMutex(&m, 0)
            KeWaitForSingleObject(&m, Executive, KernelMode, FALSE, nil)
            owner = KeGetCurrentThread()
            join(startThread { KeReleaseMutex(&m, FALSE) })
        }
        assertBugCheck(machine, SYSTEM_THREAD_EXCEPTION_NOT_HANDLED, [0xFFFF_FFFF_C000_0046, 0, 0, 0])
        XCTAssertEqual(m.Header.SignalState, 0)
        XCTAssertEqual(m.OwnerThread, owner)
        XCTAssertTrue(bugCheck(of: machine)!.report.contains("owner: thread 1"))
    }

    func testReleasingAnAbandonedMutexOneDoesNotOwnRaisesStatusAbandoned() {
        let machine = simulate {
            var m = KMUTEX()
            KeInitializeMutex(&m, 0)
            m.Abandoned = TRUE
            KeReleaseMutex(&m, FALSE)
        }
        assertBugCheck(machine, SYSTEM_THREAD_EXCEPTION_NOT_HANDLED, [0x80, 0, 0, 0])
    }

    func testAWaitOnAnAbandonedMutexReturnsStatusAbandonedAndClearsIt() {
        var results: [String] = []
        let machine = simulate {
            var m = KMUTEX()
            KeInitializeMutex(&m, 0)
            m.Abandoned = TRUE
            results.append("\(KeWaitForSingleObject(&m, Executive, KernelMode, FALSE, nil)) \(m.Abandoned)")
            KeReleaseMutex(&m, FALSE)
        }
        assertCompleted(machine)
        XCTAssertEqual(results, ["\(STATUS_ABANDONED) 0"])
    }

    func testWaitersGetTheMutexInArrivalOrderEachInsideACriticalRegion() {
        for seed in 0..<8 as Range<UInt64> {
            var order: [Int] = []
            var arrival: [Int] = []
            var inside: [Int: [String]] = [:]
            let machine = simulate(seed: seed) {
                var m = KMUTEX()
                KeInitializeMutex(&m, 0)
                KeWaitForSingleObject(&m, Executive, KernelMode, FALSE, nil)
                let handles = (1...3).map { i in
                    startThread {
                        // PsCreateSystemThread starts the thread in a critical region (K = -1).
                        inside[i] = [apcCounts()]
                        KeWaitForSingleObject(&m, Executive, KernelMode, FALSE, nil)
                        order.append(i)
                        inside[i]!.append(apcCounts())
                        KeReleaseMutex(&m, FALSE)
                        inside[i]!.append(apcCounts())
                    }
                }
                waitUntil { waiters(&m).count == 3 }
                arrival = waiters(&m)
                    .map { t in handles.firstIndex { $0 == t }! + 1 }
                XCTAssertEqual(KeReleaseMutex(&m, FALSE), 0)
                for h in handles { join(h) }
                XCTAssertEqual(m.Header.SignalState, 1)
            }
            assertCompleted(machine)
            XCTAssertEqual(order, arrival, "seed \(seed)")
            for i in 1...3 {
                XCTAssertEqual(inside[i], ["K=-1 S=0 disabled=1 all=0 IRQL=0", "K=-2 S=0 disabled=1 all=0 IRQL=0",
                                           "K=-1 S=0 disabled=1 all=0 IRQL=0"], "seed \(seed)")
            }
        }
    }

    func testMutualExclusionUnderContention() {
        for seed in 0..<8 as Range<UInt64> {
            var inside = 0, maxInside = 0, total = 0
            let machine = simulate(seed: seed, processors: 3) {
                var m = KMUTEX()
                KeInitializeMutex(&m, 0)
                let hs = (0..<3).map { _ in
                    startThread {
                        for _ in 0..<4 {
                            KeWaitForSingleObject(&m, Executive, KernelMode, FALSE, nil)
                            KeWaitForSingleObject(&m, Executive, KernelMode, FALSE, nil)
                            inside += 1
                            maxInside = max(maxInside, inside)
                            _ = KeGetCurrentIrql()
                            total += 1
                            inside -= 1
                            KeReleaseMutex(&m, FALSE)
                            KeReleaseMutex(&m, FALSE)
                        }
                    }
                }
                for h in hs { join(h) }
            }
            assertCompleted(machine)
            XCTAssertEqual(total, 12)
            XCTAssertEqual(maxInside, 1, "seed \(seed)")
        }
    }

    /// PspExitThread checks CombinedApcDisable (0x20) before KeRundownThread looks for mutexes, and
    /// the KMUTEX's critical region is what it finds first.
    func testThreadEndingWithAMutexHeldIs0x20NamingTheMutex() {
        let machine = simulate {
            var m = KMUTEX()
            KeInitializeMutex(&m, 0)
            join(startThread { KeWaitForSingleObject(&m, Executive, KernelMode, FALSE, nil) })
        }
        assertBugCheck(machine, KERNEL_APC_PENDING_DURING_EXIT, [0, 0xFFFF, 0, 0])
        let report = bugCheck(of: machine)!.report
        XCTAssertTrue(report.contains("It still owns KMUTEX"), report)
    }

    func testThreadEndingWithAMutexHeldAndItsRegionLeftIs0x4000008A() {
        var thread: ULONG_PTR = 0
        var mutex: ULONG_PTR = 0
        let machine = simulate {
            var m = KMUTEX()
            KeInitializeMutex(&m, 0)
            mutex = addressOf(&m)
            join(startThread {
                thread = ULONG_PTR(bitPattern: KeGetCurrentThread())
                KeWaitForSingleObject(&m, Executive, KernelMode, FALSE, nil)
                KeLeaveCriticalRegion()
            })
        }
        assertBugCheck(machine, THREAD_TERMINATE_HELD_MUTEX, [thread, mutex, 0, 0])
    }

    /// Retail: the ABBA really hangs. Verifier stops it at the attempt with 0xC4/0x1001 (LockOrderTests).
    func testDeadlockReportListsKernelMutexOwners() {
        var addresses: [String] = []
        let machine = simulate(verifier: false) {
            var a = KMUTEX(), b = KMUTEX()
            KeInitializeMutex(&a, 0)
            KeInitializeMutex(&b, 0)
            addresses = [hex(addressOf(&a)), hex(addressOf(&b))]
            let bHeld = Gate()
            let h = startThread {
                KeWaitForSingleObject(&b, Executive, KernelMode, FALSE, nil)
                bHeld.open()
                KeWaitForSingleObject(&a, Executive, KernelMode, FALSE, nil)
            }
            KeWaitForSingleObject(&a, Executive, KernelMode, FALSE, nil)
            bHeld.pass()
            KeWaitForSingleObject(&b, Executive, KernelMode, FALSE, nil)
            join(h)
        }
        let report = deadlockReport(of: machine)
        XCTAssertTrue(report.contains("Kernel mutexes:"), report)
        XCTAssertTrue(report.contains("KMUTEX \(addresses[0]): SignalState=0 OwnerThread=thread 1"), report)
        XCTAssertTrue(report.contains("KMUTEX \(addresses[1]): SignalState=0 OwnerThread=thread 2"), report)
        XCTAssertTrue(report.contains("waiting in KeWaitForSingleObject"), report)
        XCTAssertTrue(report.contains("for KMUTEX \(addresses[1]) (SignalState 0, OwnerThread thread 2)"), report)
        XCTAssertTrue(report.contains("thread 1 waits for KMUTEX \(addresses[1]), owned by thread 2, which is itself waiting."), report)
    }

    /// The Wait == TRUE protocol: KeReleaseMutex returns at SYNCH_LEVEL and the wait that follows
    /// returns at the IRQL KeReleaseMutex was entered at.
    func testReleaseWithWaitTrueKeepsSynchLevelUntilTheNextWait() {
        var observed: [String] = []
        let machine = simulate {
            var m = KMUTEX(), e = KEVENT()
            KeInitializeMutex(&m, 0)
            KeInitializeEvent(&e, NotificationEvent, TRUE)
            let thread = KeGetCurrentThread().assumingMemoryBound(to: KTHREAD.self)
            var old: KIRQL = 0
            KeRaiseIrql(APC_LEVEL, &old)
            KeWaitForSingleObject(&m, Executive, KernelMode, FALSE, nil)
            let previous = KeReleaseMutex(&m, TRUE)
            observed.append("\(previous) state=\(m.Header.SignalState) IRQL=\(KeGetCurrentIrql()) "
                + "WaitNext=\(thread.pointee.WaitNext) WaitIrql=\(thread.pointee.WaitIrql) K=\(thread.pointee.KernelApcDisable)")
            let status = KeWaitForSingleObject(&e, Executive, KernelMode, FALSE, nil)
            observed.append("\(status) IRQL=\(KeGetCurrentIrql()) WaitNext=\(thread.pointee.WaitNext)")
            KeLowerIrql(old)
        }
        assertCompleted(machine)
        XCTAssertEqual(observed, ["0 state=1 IRQL=12 WaitNext=1 WaitIrql=1 K=0", "0 IRQL=1 WaitNext=0"])
    }

    /// "Holding a mutex object implicitly places the holder within a critical region": a normal
    /// kernel APC waits for the last release, a special one does not.
    func testANormalKernelApcWaitsForTheLastRelease() {
        var log: [String] = []
        let machine = simulate {
            var m = KMUTEX()
            KeInitializeMutex(&m, 0)
            let me = KeGetCurrentThread()
            let normal = RecordingApc("n", for: me, normal: true)
            let special = RecordingApc("s", for: me, normal: false)
            KeWaitForSingleObject(&m, Executive, KernelMode, FALSE, nil)
            KeWaitForSingleObject(&m, Executive, KernelMode, FALSE, nil)
            normal.insert()
            special.insert()
            log.append("queued: \(normal.log + special.log)")
            KeReleaseMutex(&m, FALSE)
            log.append("first release: \(normal.log)")
            KeReleaseMutex(&m, FALSE)
            log.append("last release: \(normal.log)")
        }
        assertCompleted(machine)
        XCTAssertEqual(log, ["queued: [\"s kernel irql=1\"]", "first release: []",
                             "last release: [\"n kernel irql=1\", \"n normal irql=0 context=48879 arg1=161\"]"])
    }

    func testReleaseAboveDispatchUnderVerifierIs0xC4_0x20011() {
        let machine = simulate {
            var m = KMUTEX()
            KeInitializeMutex(&m, 0)
            KeWaitForSingleObject(&m, Executive, KernelMode, FALSE, nil)
            _ = KeRaiseIrqlToSynchLevel()
            KeReleaseMutex(&m, FALSE)
        }
        assertBugCheck(machine, 0xC4, [0x2_0011, 0, 0, 0])
    }
}
