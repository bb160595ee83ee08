import XCTest
@testable import KernelSim

final class SpinLockTests: XCTestCase {
    func testAcquireRaisesToDispatchAndReleaseRestores() {
        var observed: [String] = []
        let m = simulate {
            var lock: KSPIN_LOCK = 0x55
            KeInitializeSpinLock(&lock)
            observed.append("init: \(lock) test=\(KeTestSpinLock(&lock))")
            var old: KIRQL = 0xFF
            KeAcquireSpinLock(&lock, &old)
            observed.append("held: \(lock) old=\(old) irql=\(KeGetCurrentIrql()) test=\(KeTestSpinLock(&lock)) "
                + "apcsDisabled=\(KeAreApcsDisabled())")
            observed.append("try while held: \(KeTryToAcquireSpinLockAtDpcLevel(&lock))")
            KeReleaseSpinLock(&lock, old)
            observed.append("released: \(lock) irql=\(KeGetCurrentIrql())")
            let dpc = KeRaiseIrqlToDpcLevel()
            KeAcquireSpinLockAtDpcLevel(&lock)
            observed.append("at DPC level: \(lock) irql=\(KeGetCurrentIrql())")
            KeReleaseSpinLockFromDpcLevel(&lock)
            observed.append("try free: \(KeTryToAcquireSpinLockAtDpcLevel(&lock)) \(lock)")
            KeReleaseSpinLockFromDpcLevel(&lock)
            KeLowerIrql(dpc)
        }
        assertCompleted(m)
        XCTAssertEqual(observed, [
            "init: 0 test=1",
            "held: 1 old=0 irql=2 test=0 apcsDisabled=0",
            "try while held: 0",
            "released: 0 irql=0",
            "at DPC level: 1 irql=2",
            "try free: 1 1",
        ])
    }

    func testSpinLockGivesMutualExclusionAcrossProcessors() {
        for seed in 0..<10 as Range<UInt64> {
            var inside = 0, maxInside = 0, total = 0
            var spun = false
            let m = simulate(seed: seed, processors: 2) {
                var lock: KSPIN_LOCK = 0
                KeInitializeSpinLock(&lock)
                let hs = (0..<2).map { _ in
                    startThread {
                        for _ in 0..<5 {
                            var old: KIRQL = 0
                            KeAcquireSpinLock(&lock, &old)
                            inside += 1
                            maxInside = max(maxInside, inside)
                            if KeGetCurrentIrql() != DISPATCH_LEVEL { spun = true }
                            total += 1
                            inside -= 1
                            KeReleaseSpinLock(&lock, old)
                        }
                    }
                }
                for h in hs { join(h) }
            }
            assertCompleted(m)
            XCTAssertEqual(total, 10)
            XCTAssertEqual(maxInside, 1, "seed \(seed)")
            XCTAssertFalse(spun)
        }
    }

    /// Retail only: Verifier reports 0xC4/0x1000 instead (LockOrderTests).
    func testRecursiveAcquireIs0xFOnRetail() {
        var lockAddress: ULONG_PTR = 0
        let m = simulate(verifier: false) {
            var lock: KSPIN_LOCK = 0
            KeInitializeSpinLock(&lock)
            lockAddress = addressOf(&lock)
            var old: KIRQL = 0
            KeAcquireSpinLock(&lock, &old)
            KeAcquireSpinLock(&lock, &old)
        }
        assertBugCheck(m, SPIN_LOCK_ALREADY_OWNED, [lockAddress, 0, 0, 0])
    }

    func testReleasingAFreeLockIs0x10OnRetail() {
        var lockAddress: ULONG_PTR = 0
        let m = simulate(verifier: false) {
            var lock: KSPIN_LOCK = 0
            KeInitializeSpinLock(&lock)
            lockAddress = addressOf(&lock)
            _ = KeRaiseIrqlToDpcLevel()
            KeReleaseSpinLockFromDpcLevel(&lock)
        }
        assertBugCheck(m, SPIN_LOCK_NOT_OWNED, [lockAddress, 0, 0, 0])
    }

    /// Deadlock Detection sees the release first: "released before it was acquired".
    func testReleasingAFreeLockUnderVerifierIs0xC4_0x1007() {
        var lockAddress: ULONG_PTR = 0
        let m = simulate {
            var lock: KSPIN_LOCK = 0
            KeInitializeSpinLock(&lock)
            lockAddress = addressOf(&lock)
            _ = KeRaiseIrqlToDpcLevel()
            KeReleaseSpinLockFromDpcLevel(&lock)
        }
        assertBugCheck(m, DRIVER_VERIFIER_DETECTED_VIOLATION, [0x1007, lockAddress, 0, 0])
    }

    func testReleaseSpinLockAwayFromDispatchUnderVerifierIs0xC4_0x32() {
        var lockAddress: ULONG_PTR = 0
        let m = simulate {
            var lock: KSPIN_LOCK = 0
            KeInitializeSpinLock(&lock)
            lockAddress = addressOf(&lock)
            var old: KIRQL = 0
            KeAcquireSpinLock(&lock, &old)
            KeReleaseSpinLock(&lock, old)
            KeReleaseSpinLock(&lock, old)
        }
        assertBugCheck(m, 0xC4, [0x32, 0, lockAddress, 0])
    }

    func testAcquireAtDpcLevelBelowDispatchUnderVerifierIs0xC4_0x40() {
        var lockAddress: ULONG_PTR = 0
        let m = simulate {
            var lock: KSPIN_LOCK = 0
            KeInitializeSpinLock(&lock)
            lockAddress = addressOf(&lock)
            KeAcquireSpinLockAtDpcLevel(&lock)
        }
        assertBugCheck(m, 0xC4, [0x40, 0, lockAddress, 0])
    }

    func testAcquireAboveDispatchUnderVerifierIs0xC4_0x42() {
        var lockAddress: ULONG_PTR = 0
        let m = simulate {
            var lock: KSPIN_LOCK = 0
            KeInitializeSpinLock(&lock)
            lockAddress = addressOf(&lock)
            _ = KeRaiseIrqlToSynchLevel()
            var old: KIRQL = 0
            KeAcquireSpinLock(&lock, &old)
        }
        assertBugCheck(m, 0xC4, [0x42, 12, lockAddress, 0])
    }

    func testSpinningTooLongAtDispatchLevelIsTheDpcWatchdog() {
        let m = simulate(processors: 1) {
            var lock: KSPIN_LOCK = 0
            KeInitializeSpinLock(&lock)
            var old: KIRQL = 0
            KeAcquireSpinLock(&lock, &old)
            while true { _ = KeGetCurrentIrql() }
        }
        assertBugCheck(m, DPC_WATCHDOG_VIOLATION, [1, ULONG_PTR(dpcWatchdogLimit), 0, 0])
    }

    func testWaitingWhileHoldingASpinLockOnRetailIs0xA() {
        let m = simulate(verifier: false) {
            var lock: KSPIN_LOCK = 0
            KeInitializeSpinLock(&lock)
            var old: KIRQL = 0
            KeAcquireSpinLock(&lock, &old)
            var nap = LARGE_INTEGER(QuadPart: -10)
            KeDelayExecutionThread(KernelMode, FALSE, &nap)
        }
        assertBugCheck(m, IRQL_NOT_LESS_OR_EQUAL, [0, 2, 0, 0])
    }
}
