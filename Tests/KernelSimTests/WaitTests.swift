import XCTest
@testable import KernelSim

final class WaitTests: XCTestCase {
    func testRelativeTimeoutExpiresInSimulatedTime() {
        var status: NTSTATUS = -1
        var elapsed: LONGLONG = 0
        let m = simulate {
            var e = KEVENT()
            KeInitializeEvent(&e, NotificationEvent, FALSE)
            var timeout = LARGE_INTEGER(QuadPart: -10 * 1000 * 50)   // 50 ms
            let before = activeMachine!.clock
            status = KeWaitForSingleObject(&e, Executive, KernelMode, FALSE, &timeout)
            elapsed = activeMachine!.clock - before
        }
        assertCompleted(m)
        XCTAssertEqual(status, STATUS_TIMEOUT)
        XCTAssertGreaterThanOrEqual(elapsed, 500_000)
        XCTAssertLessThan(elapsed, 510_000)
    }

    /// A positive timeout is an absolute system time since 1601: "50 ms" with the minus sign
    /// forgotten is a moment in 1601 and expires at once; a deadline from KeQuerySystemTime works.
    func testPositiveTimeoutIsAnAbsoluteSystemTime() {
        var forgotten: (NTSTATUS, LONGLONG) = (-1, -1)
        var absolute: (NTSTATUS, LONGLONG) = (-1, -1)
        var times: (LONGLONG, ULONGLONG) = (0, 0)
        let m = simulate {
            var e = KEVENT()
            KeInitializeEvent(&e, NotificationEvent, FALSE)
            var timeout = LARGE_INTEGER(QuadPart: 10 * 1000 * 50)
            var before = activeMachine!.clock
            forgotten.0 = KeWaitForSingleObject(&e, Executive, KernelMode, FALSE, &timeout)
            forgotten.1 = activeMachine!.clock - before
            var now = LARGE_INTEGER()
            let interruptTime = KeQueryInterruptTime()
            KeQuerySystemTime(&now)
            times = (now.QuadPart, interruptTime)
            timeout.QuadPart = now.QuadPart + 10 * 1000 * 20
            before = activeMachine!.clock
            absolute.0 = KeWaitForSingleObject(&e, Executive, KernelMode, FALSE, &timeout)
            absolute.1 = activeMachine!.clock - before
        }
        assertCompleted(m)
        XCTAssertEqual(forgotten.0, STATUS_TIMEOUT)
        XCTAssertLessThan(forgotten.1, 1000, "a time in 1601 has passed: no wait")
        XCTAssertEqual(absolute.0, STATUS_TIMEOUT)
        XCTAssertGreaterThanOrEqual(absolute.1, 199_000, "kernel calls take simulated time too")
        XCTAssertLessThan(absolute.1, 210_000)
        let boot: LONGLONG = 134_116_992_000_000_000   // 2026-01-01 00:00 UTC
        XCTAssertTrue((boot..<boot + 1000).contains(times.0 - LONGLONG(times.1)), "system time = boot time + interrupt time")
    }

    func testZeroTimeoutPollsEvenAtDispatchLevel() {
        var statuses: [NTSTATUS] = []
        let m = simulate {
            var e = KEVENT()
            KeInitializeEvent(&e, NotificationEvent, FALSE)
            var zero = LARGE_INTEGER()
            let old = KeRaiseIrqlToDpcLevel()
            statuses.append(KeWaitForSingleObject(&e, Executive, KernelMode, FALSE, &zero))
            KeSetEvent(&e, IO_NO_INCREMENT, FALSE)
            statuses.append(KeWaitForSingleObject(&e, Executive, KernelMode, FALSE, &zero))
            KeLowerIrql(old)
        }
        assertCompleted(m)
        XCTAssertEqual(statuses, [STATUS_TIMEOUT, STATUS_WAIT_0])
    }

    func testASetBeforeTheDeadlineEndsTheWaitWithWait0() {
        for seed in 0..<5 as Range<UInt64> {
            var status: NTSTATUS = -1
            let m = simulate(seed: seed) {
                var e = KEVENT()
                KeInitializeEvent(&e, SynchronizationEvent, FALSE)
                let h = startThread {
                    var nap = LARGE_INTEGER(QuadPart: -10_000)   // 1 ms
                    KeDelayExecutionThread(KernelMode, FALSE, &nap)
                    KeSetEvent(&e, IO_NO_INCREMENT, FALSE)
                }
                var timeout = LARGE_INTEGER(QuadPart: -10 * 1000 * 1000)   // 1 s
                status = KeWaitForSingleObject(&e, Executive, KernelMode, FALSE, &timeout)
                join(h)
            }
            assertCompleted(m)
            XCTAssertEqual(status, STATUS_WAIT_0)
        }
    }

    func testDelaysEndInDeadlineOrder() {
        for seed in 0..<5 as Range<UInt64> {
            var order: [Int] = []
            let m = simulate(seed: seed) {
                let hs = [3, 1, 2].map { ms in
                    startThread {
                        var nap = LARGE_INTEGER(QuadPart: -10_000 * LONGLONG(ms))
                        KeDelayExecutionThread(KernelMode, FALSE, &nap)
                        order.append(ms)
                    }
                }
                for h in hs { join(h) }
            }
            assertCompleted(m)
            XCTAssertEqual(order, [1, 2, 3])
        }
    }

    func testWaitingForAThreadHandleReturnsWhenItEnds() {
        var log: [String] = []
        let m = simulate {
            let h = startThread {
                var nap = LARGE_INTEGER(QuadPart: -10_000)
                KeDelayExecutionThread(KernelMode, FALSE, &nap)
                log.append("worker done")
            }
            XCTAssertEqual(ZwWaitForSingleObject(h, FALSE, nil), STATUS_WAIT_0)
            log.append("joined")
            XCTAssertEqual(KeWaitForSingleObject(h, Executive, KernelMode, FALSE, nil), STATUS_WAIT_0,
                           "a terminated thread stays signaled")
            XCTAssertEqual(ZwClose(h), STATUS_SUCCESS)
            XCTAssertEqual(ZwClose(nil), STATUS_INVALID_HANDLE)
        }
        assertCompleted(m)
        XCTAssertEqual(log, ["worker done", "joined"])
    }

    func testWaitAtDispatchWithNullTimeoutUnderVerifierIs0xC4_0x121() {
        var eventAddress: ULONG_PTR = 0
        let m = simulate {
            var e = KEVENT()
            KeInitializeEvent(&e, NotificationEvent, TRUE)
            eventAddress = addressOf(&e)
            _ = KeRaiseIrqlToDpcLevel()
            KeWaitForSingleObject(&e, Executive, KernelMode, FALSE, nil)
        }
        assertWaitIrqlBugCheck(m, 0x121, irql: 2, object: eventAddress, timeout: 0)
    }

    func testWaitAtDispatchWithNonzeroTimeoutUnderVerifierIs0xC4_0x122() {
        var eventAddress: ULONG_PTR = 0
        var timeoutAddress: ULONG_PTR = 0
        let m = simulate {
            var e = KEVENT()
            KeInitializeEvent(&e, NotificationEvent, FALSE)
            eventAddress = addressOf(&e)
            var timeout = LARGE_INTEGER(QuadPart: -100)
            timeoutAddress = addressOf(&timeout)
            _ = KeRaiseIrqlToDpcLevel()
            KeWaitForSingleObject(&e, Executive, KernelMode, FALSE, &timeout)
        }
        assertWaitIrqlBugCheck(m, 0x122, irql: 2, object: eventAddress, timeout: timeoutAddress)
    }

    func testWaitAboveDispatchUnderVerifierIs0xC4_0x120() {
        var eventAddress: ULONG_PTR = 0
        let m = simulate {
            var e = KEVENT()
            KeInitializeEvent(&e, NotificationEvent, FALSE)
            eventAddress = addressOf(&e)
            _ = KeRaiseIrqlToSynchLevel()
            KeWaitForSingleObject(&e, Executive, KernelMode, FALSE, nil)
        }
        assertWaitIrqlBugCheck(m, 0x120, irql: 12, object: eventAddress, timeout: 0)
    }

    func testRetailWaitAtDispatchFaultsOnlyWhenItMustBlock() {
        var eventAddress: ULONG_PTR = 0
        let m = simulate(verifier: false) {
            var e = KEVENT()
            KeInitializeEvent(&e, SynchronizationEvent, TRUE)
            eventAddress = addressOf(&e)
            _ = KeRaiseIrqlToDpcLevel()
            XCTAssertEqual(KeWaitForSingleObject(&e, Executive, KernelMode, FALSE, nil), STATUS_WAIT_0)
            KeWaitForSingleObject(&e, Executive, KernelMode, FALSE, nil)
        }
        assertBugCheck(m, IRQL_NOT_LESS_OR_EQUAL, [eventAddress, 2, 0, 0])
    }

    func testWaitingForAnEventNobodySetsIsADeadlockNamingTheEvent() {
        let m = simulate {
            var e = KEVENT()
            KeInitializeEvent(&e, SynchronizationEvent, FALSE)
            KeWaitForSingleObject(&e, Executive, KernelMode, FALSE, nil)
        }
        let report = deadlockReport(of: m)
        XCTAssertTrue(report.contains("waiting in KeWaitForSingleObject"), report)
        XCTAssertTrue(report.contains("(SynchronizationEvent, SignalState 0)"), report)
    }

    func testTwoThreadsWaitingForEachOtherDeadlock() {
        let m = simulate {
            var a = KEVENT(), b = KEVENT()
            KeInitializeEvent(&a, NotificationEvent, FALSE)
            KeInitializeEvent(&b, NotificationEvent, FALSE)
            let h = startThread {
                KeWaitForSingleObject(&a, Executive, KernelMode, FALSE, nil)
                KeSetEvent(&b, IO_NO_INCREMENT, FALSE)
            }
            KeWaitForSingleObject(&b, Executive, KernelMode, FALSE, nil)
            KeSetEvent(&a, IO_NO_INCREMENT, FALSE)
            join(h)
        }
        let report = deadlockReport(of: m)
        XCTAssertTrue(report.contains("thread 1 (KsRunMachine body): waiting"), report)
        XCTAssertTrue(report.contains("thread 2 (PsCreateSystemThread at"), report)
    }
}
