import XCTest
@testable import KernelSim

final class EventTests: XCTestCase {
    func testInitializeSetsTypeSizeAndState() {
        var sync = KEVENT(), notification = KEVENT()
        sync.Header.Signalling = 0x55
        let m = simulate {
            KeInitializeEvent(&sync, SynchronizationEvent, FALSE)
            KeInitializeEvent(&notification, NotificationEvent, TRUE)
        }
        assertCompleted(m)
        XCTAssertEqual(sync.Header.Type, 1)
        XCTAssertEqual(sync.Header.Size, 6, "sizeof(KEVENT) / 4 on x64")
        XCTAssertEqual(sync.Header.Signalling, 0x55, "header byte 1 is not written")
        XCTAssertEqual(sync.Header.SignalState, 0)
        XCTAssertEqual(notification.Header.Type, 0)
        XCTAssertEqual(notification.Header.SignalState, 1)
    }

    func testSetResetClearAndReadReturnThePreviousState() {
        var results: [LONG] = []
        let m = simulate {
            var e = KEVENT()
            KeInitializeEvent(&e, NotificationEvent, FALSE)
            results.append(KeSetEvent(&e, IO_NO_INCREMENT, FALSE))   // 0
            results.append(KeReadStateEvent(&e))                     // 1
            results.append(KeSetEvent(&e, IO_NO_INCREMENT, FALSE))   // 1
            results.append(KeResetEvent(&e))                         // 1
            results.append(KeReadStateEvent(&e))                     // 0
            e.Header.SignalState = 0x2345_6789
            results.append(KeSetEvent(&e, IO_NO_INCREMENT, FALSE))   // the whole LONG
            results.append(e.Header.SignalState)                     // exactly 1
            e.Header.SignalState = 0x1234_5678
            KeClearEvent(&e)
            results.append(KeReadStateEvent(&e))                     // 0
        }
        assertCompleted(m)
        XCTAssertEqual(results, [0, 1, 1, 1, 0, 0x2345_6789, 1, 0])
    }

    func testSynchronizationEventReleasesOneWaiterInFifoOrderAndStaysNonSignaled() {
        for seed in 0..<10 as Range<UInt64> {
            var woken: [Int] = []
            var states: [LONG] = []
            let m = simulate(seed: seed) {
                var e = KEVENT()
                KeInitializeEvent(&e, SynchronizationEvent, FALSE)
                let handles = (1...3).map { i in
                    startThread {
                        KeWaitForSingleObject(&e, Executive, KernelMode, FALSE, nil)
                        woken.append(i)
                    }
                }
                // Start order is up to the scheduler; the wait list keeps arrival order.
                waitUntil { waiters(&e).count == 3 }
                let arrival = waiters(&e).map { t in handles.firstIndex { $0 == t }! + 1 }
                for released in 1...3 {
                    states.append(KeSetEvent(&e, IO_NO_INCREMENT, FALSE))
                    states.append(KeReadStateEvent(&e))
                    waitUntil { woken.count == released }
                }
                for h in handles { join(h) }
                XCTAssertEqual(woken, arrival, "seed \(seed)")
            }
            assertCompleted(m)
            XCTAssertEqual(states, [0, 0, 0, 0, 0, 0], "each set releases one waiter and the event stays non-signaled")
            XCTAssertEqual(woken.count, 3)
        }
    }

    func testSynchronizationEventWithoutWaitersStaysSignaledUntilOneWaitConsumesIt() {
        var results: [NTSTATUS] = []
        var states: [LONG] = []
        let m = simulate {
            var e = KEVENT()
            KeInitializeEvent(&e, SynchronizationEvent, FALSE)
            KeSetEvent(&e, IO_NO_INCREMENT, FALSE)
            states.append(KeReadStateEvent(&e))
            var zero = LARGE_INTEGER()
            results.append(KeWaitForSingleObject(&e, Executive, KernelMode, FALSE, &zero))
            states.append(KeReadStateEvent(&e))
            results.append(KeWaitForSingleObject(&e, Executive, KernelMode, FALSE, &zero))
        }
        assertCompleted(m)
        XCTAssertEqual(states, [1, 0])
        XCTAssertEqual(results, [STATUS_WAIT_0, STATUS_TIMEOUT])
    }

    func testNotificationEventReleasesEveryWaiterAndStaysSignaled() {
        for seed in 0..<5 as Range<UInt64> {
            var woken = 0
            var state: LONG = -1
            let m = simulate(seed: seed) {
                var e = KEVENT()
                KeInitializeEvent(&e, NotificationEvent, FALSE)
                let handles = (0..<3).map { _ in
                    startThread {
                        KeWaitForSingleObject(&e, Executive, KernelMode, FALSE, nil)
                        woken += 1
                    }
                }
                waitUntil { waiters(&e).count == 3 }
                KeSetEvent(&e, IO_NO_INCREMENT, FALSE)
                state = KeReadStateEvent(&e)
                for h in handles { join(h) }
            }
            assertCompleted(m)
            XCTAssertEqual(woken, 3)
            XCTAssertEqual(state, 1)
        }
    }

    func testSetEventAboveDispatchLevelUnderVerifierIs0xC4_0x80() {
        var eventAddress: ULONG_PTR = 0
        let m = simulate {
            var e = KEVENT()
            KeInitializeEvent(&e, NotificationEvent, FALSE)
            eventAddress = addressOf(&e)
            _ = KeRaiseIrqlToSynchLevel()
            KeSetEvent(&e, IO_NO_INCREMENT, FALSE)
        }
        assertBugCheck(m, 0xC4, [0x80, 12, eventAddress, 0])
    }

    func testSettingAnUninitializedEventFaults() {
        let m = simulate {
            var e = KEVENT()
            KeSetEvent(&e, IO_NO_INCREMENT, FALSE)
        }
        assertBugCheck(m, IRQL_NOT_LESS_OR_EQUAL, [0, 12, 0, 0])
    }
}
