import XCTest
@testable import KernelSim

final class BugCheckTests: XCTestCase {
    func testNamesAndCodesRoundTrip() {
        let expected: [ULONG: String] = [
            0x1: "APC_INDEX_MISMATCH", 0x9: "IRQL_NOT_GREATER_OR_EQUAL", 0xA: "IRQL_NOT_LESS_OR_EQUAL",
            0xF: "SPIN_LOCK_ALREADY_OWNED", 0x10: "SPIN_LOCK_NOT_OWNED", 0x11: "THREAD_NOT_MUTEX_OWNER",
            0x20: "KERNEL_APC_PENDING_DURING_EXIT", 0xB8: "ATTEMPTED_SWITCH_FROM_DPC", 0xBF: "MUTEX_ALREADY_OWNED",
            0xC2: "BAD_POOL_CALLER", 0xC4: "DRIVER_VERIFIER_DETECTED_VIOLATION", 0xD1: "DRIVER_IRQL_NOT_LESS_OR_EQUAL",
            0x133: "DPC_WATCHDOG_VIOLATION",
        ]
        for (code, name) in expected {
            XCTAssertEqual(KsBugCheckName(code), name)
            XCTAssertEqual(KsBugCheckCode(named: name), code)
        }
        XCTAssertNil(KsBugCheckName(0xFFFF_FFFF))
        XCTAssertNil(KsBugCheckCode(named: "NOT_A_BUGCHECK"))
        XCTAssertEqual(Set(bugCheckTable.map(\.code)).count, bugCheckTable.count, "codes are unique")
        XCTAssertTrue(bugCheckTable.allSatisfy { $0.parameters.count == 4 })
    }

    func testKeBugCheckExStopsTheMachineWithTheGivenParameters() {
        var after = false
        let m = simulate {
            KeBugCheckEx(MUTEX_ALREADY_OWNED, 1, 2, 3, 4)
            after = true
        }
        assertBugCheck(m, 0xBF, [1, 2, 3, 4])
        XCTAssertFalse(after)
    }

    func testOtherThreadsStopAtTheBugCheck() {
        var count = 0
        let m = simulate(seed: 3) {
            startThread { while true { count += 1; _ = KeGetCurrentIrql() } }
            var nap = LARGE_INTEGER(QuadPart: -100)
            KeDelayExecutionThread(KernelMode, FALSE, &nap)
            KeBugCheck(0xE2)
        }
        guard case .bugCheck? = m.outcome else { return XCTFail("expected a bug check") }
        let frozen = count
        usleep(20_000)
        XCTAssertEqual(count, frozen, "threads still alive after a bug check are parked")
    }

    func testReportReadsLikeAnalyzeV() {
        var line = 0
        let m = simulate {
            var mutex = FAST_MUTEX()
            ExInitializeFastMutex(&mutex)
            var lock: KSPIN_LOCK = 0
            KeInitializeSpinLock(&lock)
            var old: KIRQL = 0
            KeAcquireSpinLock(&lock, &old)
            line = #line; ExAcquireFastMutex(&mutex)
        }
        guard let b = bugCheck(of: m) else { return }
        XCTAssertEqual(b.file, #filePath)
        XCTAssertEqual(b.line, line)
        for expected in [
            "Bugcheck Analysis",
            "DRIVER_VERIFIER_DETECTED_VIOLATION (c4)",
            "Arg1: 0000000000000033, Fast mutex acquired at IRQL > APC_LEVEL",
            "Arg2: 0000000000000002, Current IRQL",
            "Arg3: \(hex(b.parameters[2])), Fast mutex address",
            "BUGCHECK_STR:  0xC4_33",
            "CURRENT_IRQL:  2",
            "FAULTING_SOURCE_LINE:  \(#filePath):\(line) (ExAcquireFastMutex)",
            "KeAcquireSpinLock",
            "https://learn.microsoft.com/windows-hardware/drivers/debugger/bug-check-0xc4--driver-verifier-detected-violation",
        ] {
            XCTAssertTrue(b.report.contains(expected), "missing \(expected) in\n\(b.report)")
        }
    }
}
