import XCTest
@testable import KernelSim

final class SystemServiceTests: XCTestCase {
    /// A dispatch routine that returns holding a fast mutex sends its thread back to user mode at
    /// APC_LEVEL: 0x4A, P2 = the IRQL.
    func testReturningToUserModeAtApcLevelIs0x4A() {
        final class Device { var lock = FAST_MUTEX() }
        let d = Device()
        let m = simulate {
            ExInitializeFastMutex(&d.lock)
            KsSystemService { ExAcquireFastMutex(&d.lock) }
        }
        assertBugCheck(m, IRQL_GT_ZERO_AT_SYSTEM_SERVICE, [0, 1, 0, 0])
    }

    /// A critical region entered and not left: 0x1 with P3 = CombinedApcDisable and P4 = 0,
    /// "system call". The IRQL is checked first.
    func testReturningToUserModeInsideACriticalRegionIsApcIndexMismatch() {
        let m = simulate { KsSystemService { KeEnterCriticalRegion() } }
        assertBugCheck(m, APC_INDEX_MISMATCH, [0, 0, 0xFFFF, 0])
        let both = simulate {
            KsSystemService {
                KeEnterCriticalRegion()
                _ = KeRaiseIrqlToDpcLevel()
            }
        }
        assertBugCheck(both, IRQL_GT_ZERO_AT_SYSTEM_SERVICE, [0, 2, 0, 0])
    }

    /// A balanced service returns its body's value, also on a system thread, which starts in a
    /// critical region of its own.
    func testABalancedServiceReturnsItsResult() {
        var results: [NTSTATUS] = []
        let m = simulate {
            results.append(KsSystemService { STATUS_SUCCESS })
            join(startThread {
                results.append(KsSystemService {
                    KeEnterGuardedRegion()
                    KeLeaveGuardedRegion()
                    return STATUS_TIMEOUT
                })
            })
        }
        assertCompleted(m)
        XCTAssertEqual(results, [STATUS_SUCCESS, STATUS_TIMEOUT])
    }
}
