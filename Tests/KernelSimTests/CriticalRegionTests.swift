import XCTest
@testable import KernelSim

final class CriticalRegionTests: XCTestCase {
    func testNestedRegionsCountDownAndBackUp() {
        var observed: [String] = []
        let m = simulate {
            let thread = KeGetCurrentThread().assumingMemoryBound(to: KTHREAD.self)
            func note() {
                observed.append("K=\(thread.pointee.KernelApcDisable) disabled=\(KeAreApcsDisabled()) "
                    + "all=\(KeAreAllApcsDisabled())")
            }
            for _ in 0..<3 { KeEnterCriticalRegion(); note() }
            for _ in 0..<3 { KeLeaveCriticalRegion(); note() }
            var old: KIRQL = 0
            KeRaiseIrql(APC_LEVEL, &old)
            note()
            KeLowerIrql(old)
            thread.pointee.SpecialApcDisable = -1
            note()
            thread.pointee.SpecialApcDisable = 0
        }
        assertCompleted(m)
        XCTAssertEqual(observed, [
            "K=-1 disabled=1 all=0", "K=-2 disabled=1 all=0", "K=-3 disabled=1 all=0",
            "K=-2 disabled=1 all=0", "K=-1 disabled=1 all=0", "K=0 disabled=0 all=0",
            "K=0 disabled=0 all=1",
            "K=0 disabled=1 all=1",
        ])
    }

    func testLeaveWithoutEnterUnderVerifierIs0xC4_0x3E() {
        let m = simulate { KeLeaveCriticalRegion() }
        assertBugCheck(m, 0xC4, [0x3E, 0, 0, 0])
    }

    func testLeaveWithoutEnterOnRetailCountsPastZero() {
        var observed: [String] = []
        let m = simulate(verifier: false) {
            let thread = KeGetCurrentThread().assumingMemoryBound(to: KTHREAD.self)
            KeLeaveCriticalRegion()
            observed.append("K=\(thread.pointee.KernelApcDisable) disabled=\(KeAreApcsDisabled())")
            KeEnterCriticalRegion()
        }
        assertCompleted(m)
        XCTAssertEqual(observed, ["K=1 disabled=1"])
    }

    func testEnterAboveApcLevelUnderVerifierIs0xC4_0x11A() {
        let m = simulate {
            _ = KeRaiseIrqlToDpcLevel()
            KeEnterCriticalRegion()
        }
        assertBugCheck(m, 0xC4, [0x11A, 2, 0, 0])
    }

    func testThreadEndingInsideACriticalRegionIs0x20() {
        let m = simulate {
            join(startThread { KeEnterCriticalRegion() })
        }
        assertBugCheck(m, KERNEL_APC_PENDING_DURING_EXIT, [0, 0xFFFF, 0, 0])
    }
}
