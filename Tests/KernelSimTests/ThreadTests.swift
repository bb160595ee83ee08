import XCTest
@testable import KernelSim

final class ThreadTests: XCTestCase {
    func testSystemThreadsStartAtPassiveLevelWithTheirContext() {
        var seen: [String] = []
        let m = simulate {
            var handle: HANDLE = nil
            var clientId = CLIENT_ID()
            var context = 42
            let status = PsCreateSystemThread(&handle, THREAD_ALL_ACCESS, nil, nil, &clientId, { ctx in
                let value = ctx!.load(as: Int.self)
                seen.append("context=\(value) irql=\(KeGetCurrentIrql()) apcs=\(KeAreApcsDisabled())")
            }, &context)
            XCTAssertEqual(status, STATUS_SUCCESS)
            XCTAssertNotNil(handle)
            XCTAssertEqual(clientId.UniqueThread, UnsafeMutableRawPointer(bitPattern: 2))
            join(handle)
        }
        assertCompleted(m)
        // "The newly created system thread runs at PASSIVE_LEVEL inside a critical region".
        XCTAssertEqual(seen, ["context=42 irql=0 apcs=1"])
    }

    func testPsTerminateSystemThreadEndsTheThread() {
        var log: [String] = []
        let m = simulate {
            join(startThread {
                log.append("before")
                PsTerminateSystemThread(STATUS_SUCCESS)
                log.append("after")
            })
            log.append("joined")
        }
        assertCompleted(m)
        XCTAssertEqual(log, ["before", "joined"])
    }

    func testThreadEndingAtRaisedIrqlIs0x20() {
        var line = 0
        let m = simulate {
            join(startThread {
                var lock: KSPIN_LOCK = 0
                KeInitializeSpinLock(&lock)
                var old: KIRQL = 0
                line = #line; KeAcquireSpinLock(&lock, &old)
            })
        }
        assertBugCheck(m, KERNEL_APC_PENDING_DURING_EXIT, [0, 0, 2, 0])
        XCTAssertEqual(bugCheck(of: m)?.line, line, "the report points at the thread's last kernel call")
    }

    func testCreatingAThreadAbovePassiveUnderVerifierIsTheIrqlPsPassiveRule() {
        let m = simulate {
            var old: KIRQL = 0
            KeRaiseIrql(APC_LEVEL, &old)
            startThread {}
        }
        assertBugCheck(m, 0xC4, [0x2_001C, 0, 0, 0])
    }

    func testKeGetCurrentThreadIsStableAndDistinctPerThread() {
        var mine: [PKTHREAD] = []
        var other: PKTHREAD?
        let m = simulate {
            mine = [KeGetCurrentThread(), KeGetCurrentThread()]
            join(startThread { other = KeGetCurrentThread() })
        }
        assertCompleted(m)
        XCTAssertEqual(mine[0], mine[1])
        XCTAssertNotEqual(mine[0], other)
    }
}
