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

/// One lock of every kind Deadlock Detection tracks, in stable storage.
final class MixedLocks {
    var fast = FAST_MUTEX()
    var guarded = KGUARDED_MUTEX()
    var kmutex = KMUTEX()
    var x: KSPIN_LOCK = 0
    var y: KSPIN_LOCK = 0
    init() {
        ExInitializeFastMutex(&fast)
        KeInitializeGuardedMutex(&guarded)
        KeInitializeMutex(&kmutex, 0)
        KeInitializeSpinLock(&x)
        KeInitializeSpinLock(&y)
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

    /// Thread 2 takes the KMUTEX (through KeWaitForSingleObject) then the fast mutex; thread 3
    /// takes them the other way round and is stopped at its wait for the KMUTEX.
    func testKernelMutexAndFastMutexABBAIs0xC4_0x1001() {
        var addresses: (k: ULONG_PTR, f: ULONG_PTR) = (0, 0)
        let m = simulate {
            let l = MixedLocks()
            addresses = (addressOf(&l.kmutex), addressOf(&l.fast))
            join(startThread {
                KeWaitForSingleObject(&l.kmutex, Executive, KernelMode, FALSE, nil)
                ExAcquireFastMutex(&l.fast)
                ExReleaseFastMutex(&l.fast)
                KeReleaseMutex(&l.kmutex, FALSE)
            })
            join(startThread {
                ExAcquireFastMutex(&l.fast)
                KeWaitForSingleObject(&l.kmutex, Executive, KernelMode, FALSE, nil)
                KeReleaseMutex(&l.kmutex, FALSE)
                ExReleaseFastMutex(&l.fast)
            })
        }
        assertBugCheck(m, DRIVER_VERIFIER_DETECTED_VIOLATION, [0x1001, addresses.k, 0, 0])
        let report = bugCheck(of: m)?.report ?? ""
        XCTAssertTrue(report.contains("thread 2 acquired KMUTEX \(hex(addresses.k))"), report)
        XCTAssertTrue(report.contains("then FAST_MUTEX \(hex(addresses.f))"), report)
        XCTAssertTrue(report.contains("Now thread 3 holds FAST_MUTEX \(hex(addresses.f))"), report)
        XCTAssertEqual(bugCheck(of: m)?.line, #line - 10, "the faulting call is thread 3's wait for the KMUTEX")
    }

    /// A KMUTEX taken again by its owner, even while it holds a fast mutex taken after it, is
    /// legal: the recursive acquire establishes no fast mutex → KMUTEX order (which would close a
    /// cycle with KMUTEX → fast mutex), and the inner release is not an out-of-order release.
    /// Only the outermost acquire and the final release appear as lock events.
    func testRecursiveKernelMutexIsLegalAndOnlyTheOutermostAcquireCounts() {
        var address: ULONG_PTR = 0
        let m = simulate {
            let l = MixedLocks()
            address = addressOf(&l.kmutex)
            KeWaitForSingleObject(&l.kmutex, Executive, KernelMode, FALSE, nil)
            ExAcquireFastMutex(&l.fast)
            KeWaitForSingleObject(&l.kmutex, Executive, KernelMode, FALSE, nil)
            XCTAssertEqual(KeReleaseMutex(&l.kmutex, FALSE), -1)
            ExReleaseFastMutex(&l.fast)
            XCTAssertEqual(KeReleaseMutex(&l.kmutex, FALSE), 0)
            // Released for lock order too: the opposite order is now only a hierarchy question.
            ExAcquireFastMutex(&l.fast)
            ExReleaseFastMutex(&l.fast)
        }
        assertCompleted(m)
        let kmutex = KsLock(.kernelMutex, address)
        let kinds = KsLastTrace().events.map(\.kind)
        XCTAssertEqual(kinds.filter { $0 == .acquire(kmutex) }.count, 1)
        XCTAssertEqual(kinds.filter { $0 == .release(kmutex) }.count, 1)
    }

    func testInvertedQueuedSpinLockOrderIs0xC4_0x1001() {
        var addresses: (x: ULONG_PTR, y: ULONG_PTR) = (0, 0)
        let m = simulate {
            let l = MixedLocks()
            addresses = (addressOf(&l.x), addressOf(&l.y))
            var outer = KLOCK_QUEUE_HANDLE(), inner = KLOCK_QUEUE_HANDLE()
            KeAcquireInStackQueuedSpinLock(&l.x, &outer)
            KeAcquireInStackQueuedSpinLockAtDpcLevel(&l.y, &inner)
            KeReleaseInStackQueuedSpinLockFromDpcLevel(&inner)
            KeReleaseInStackQueuedSpinLock(&outer)
            KeAcquireInStackQueuedSpinLock(&l.y, &outer)
            KeAcquireInStackQueuedSpinLockAtDpcLevel(&l.x, &inner)
        }
        assertBugCheck(m, DRIVER_VERIFIER_DETECTED_VIOLATION, [0x1001, addresses.x, 0, 0])
        let report = bugCheck(of: m)?.report ?? ""
        XCTAssertTrue(report.contains("Now thread 1 holds KSPIN_LOCK (in-stack queued) \(hex(addresses.y))"), report)
    }

    func testAGuardedMutexIsReportedAsKGUARDED_MUTEX() {
        var addresses: (g: ULONG_PTR, f: ULONG_PTR) = (0, 0)
        let m = simulate {
            let l = MixedLocks()
            addresses = (addressOf(&l.guarded), addressOf(&l.fast))
            KeAcquireGuardedMutex(&l.guarded)
            ExAcquireFastMutex(&l.fast)
            ExReleaseFastMutex(&l.fast)
            KeReleaseGuardedMutex(&l.guarded)
            ExAcquireFastMutex(&l.fast)
            KeAcquireGuardedMutex(&l.guarded)
        }
        assertBugCheck(m, DRIVER_VERIFIER_DETECTED_VIOLATION, [0x1001, addresses.g, 0, 0])
        let report = bugCheck(of: m)?.report ?? ""
        XCTAssertTrue(report.contains("thread 1 acquired KGUARDED_MUTEX \(hex(addresses.g))"), report)
        XCTAssertTrue(report.contains("is acquiring KGUARDED_MUTEX \(hex(addresses.g))"), report)
        XCTAssertFalse(report.contains("FAST_MUTEX \(hex(addresses.g))"), report)
    }

    /// "Self-deadlock: The current thread has tried to recursively acquire a resource" (0x1000,
    /// P2 = the resource), for every lock that is not recursive. Retail behaviour (a hang for the
    /// mutexes, 0xF for the spin locks) is in the FastMutex/GuardedMutex/(Queued)SpinLock tests.
    func testRecursiveAcquireOfEachNonRecursiveLockIs0xC4_0x1000() {
        let cases: [(KsLockKind, (MixedLocks) -> Void)] = [
            (.fastMutex, { l in
                ExAcquireFastMutex(&l.fast)
                ExAcquireFastMutex(&l.fast)
            }),
            (.guardedMutex, { l in
                KeAcquireGuardedMutex(&l.guarded)
                KeAcquireGuardedMutexUnsafe(&l.guarded)
            }),
            (.spinLock, { l in
                var old: KIRQL = 0
                KeAcquireSpinLock(&l.x, &old)
                KeAcquireSpinLockAtDpcLevel(&l.x)
            }),
            (.queuedSpinLock, { l in
                var first = KLOCK_QUEUE_HANDLE(), second = KLOCK_QUEUE_HANDLE()
                KeAcquireInStackQueuedSpinLock(&l.x, &first)
                KeAcquireInStackQueuedSpinLockAtDpcLevel(&l.x, &second)
            }),
        ]
        for (kind, body) in cases {
            var address: ULONG_PTR = 0
            let m = simulate {
                let l = MixedLocks()
                address = [KsLockKind.fastMutex: addressOf(&l.fast), .guardedMutex: addressOf(&l.guarded)][kind]
                    ?? addressOf(&l.x)
                body(l)
            }
            assertBugCheck(m, DRIVER_VERIFIER_DETECTED_VIOLATION, [0x1000, address, 0, 0])
            let report = bugCheck(of: m)?.report ?? ""
            XCTAssertTrue(report.contains("Self-deadlock: thread 1 acquires \(kind) \(hex(address))"), "\(kind): \(report)")
        }
    }

    func testReleasingAQueuedSpinLockTwiceIs0xC4_0x1007() {
        var address: ULONG_PTR = 0
        let m = simulate {
            let l = MixedLocks()
            address = addressOf(&l.x)
            var handle = KLOCK_QUEUE_HANDLE()
            KeAcquireInStackQueuedSpinLock(&l.x, &handle)
            KeReleaseInStackQueuedSpinLock(&handle)
            KeReleaseInStackQueuedSpinLock(&handle)
        }
        assertBugCheck(m, DRIVER_VERIFIER_DETECTED_VIOLATION, [0x1007, address, 0, 0])
    }

    /// A thread that ends owning a lock after putting its IRQL and APC counts back gets past
    /// PspExitThread's 0x20 check; Verifier then reports 0xC4/0x100A (P2 = owner thread, P3 = the
    /// lock here). Retail lets the thread end; the lock stays held forever.
    func testAThreadEndingWithALockHeldButItsIrqlAndRegionsRestoredIs0xC4_0x100A() {
        let cases: [(MixedLocks) -> ULONG_PTR] = [
            { l in
                let old = KeRaiseIrqlToDpcLevel()
                KeAcquireSpinLockAtDpcLevel(&l.x)
                KeLowerIrql(old)
                return addressOf(&l.x)
            },
            { l in
                KeEnterGuardedRegion()
                KeAcquireGuardedMutexUnsafe(&l.guarded)
                KeLeaveGuardedRegion()
                return addressOf(&l.guarded)
            },
        ]
        for (index, body) in cases.enumerated() {
            var expected: [ULONG_PTR] = []
            let m = simulate {
                let l = MixedLocks()
                join(startThread {
                    let lock = body(l)
                    expected = [0x100A, ULONG_PTR(bitPattern: KeGetCurrentThread()), lock, 0]
                })
            }
            assertBugCheck(m, DRIVER_VERIFIER_DETECTED_VIOLATION, expected)
            XCTAssertTrue(bugCheck(of: m)?.report.contains("thread 2 ended owning") ?? false, "case \(index)")
            assertCompleted(simulate(verifier: false) {
                let l = MixedLocks()
                join(startThread { _ = body(l) })
            })
        }
    }
}
