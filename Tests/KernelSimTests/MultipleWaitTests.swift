import XCTest
@testable import KernelSim

/// `Object[]` for KeWaitForMultipleObjects, in stable storage.
private func objectArray(_ objects: [UnsafeMutableRawPointer]) -> UnsafeMutablePointer<PVOID> {
    let array = UnsafeMutablePointer<PVOID>.allocate(capacity: objects.count)
    for (i, object) in objects.enumerated() { array[i] = object }
    return array
}

/// Events in stable storage, initialised on the running machine.
private func events(_ types: [EVENT_TYPE], signaled: [Bool]) -> UnsafeMutablePointer<KEVENT> {
    let events = UnsafeMutablePointer<KEVENT>.allocate(capacity: types.count)
    for i in types.indices {
        events[i] = KEVENT()
        KeInitializeEvent(events + i, types[i], signaled[i] ? TRUE : FALSE)
    }
    return events
}

final class MultipleWaitTests: XCTestCase {
    func testWaitAnyReturnsTheLowestSignaledIndexAndTakesOnlyThatObject() {
        var results: [String] = []
        let machine = simulate {
            let e = events([SynchronizationEvent, SynchronizationEvent, SynchronizationEvent], signaled: [false, true, true])
            let objects = objectArray([e, e + 1, e + 2].map { UnsafeMutableRawPointer($0) })
            let status = KeWaitForMultipleObjects(3, objects, WaitAny, Executive, KernelMode, FALSE, nil, nil)
            results.append("\(status) states=\((0..<3).map { e[$0].Header.SignalState })")
            let again = KeWaitForMultipleObjects(3, objects, WaitAny, Executive, KernelMode, FALSE, nil, nil)
            results.append("\(again) states=\((0..<3).map { e[$0].Header.SignalState })")
        }
        assertCompleted(machine)
        XCTAssertEqual(results, ["1 states=[0, 0, 1]", "2 states=[0, 0, 0]"])
    }

    /// A blocked WaitAny has one wait block in each object's wait list (WaitKey = index, in the
    /// thread's built-in WaitBlock array); the set of any one object ends the wait with its index
    /// and unlinks all of them.
    func testBlockedWaitAnyIsLinkedIntoEveryWaitListAndWokenWithTheIndexThatFired() {
        for seed in 0..<6 as Range<UInt64> {
            var observed: [String] = []
            let machine = simulate(seed: seed) {
                let e = events([NotificationEvent, SynchronizationEvent, NotificationEvent], signaled: [false, false, false])
                let objects = objectArray([e, e + 1, e + 2].map { UnsafeMutableRawPointer($0) })
                var status: NTSTATUS = -1
                let h = startThread {
                    status = KeWaitForMultipleObjects(3, objects, WaitAny, Executive, KernelMode, FALSE, nil, nil)
                }
                waitUntil { waiters(e + 2).count == 1 }
                let thread = h!.assumingMemoryBound(to: KTHREAD.self)
                let keys = [thread.pointee.WaitBlock.0, thread.pointee.WaitBlock.1, thread.pointee.WaitBlock.2]
                    .map { "\($0.WaitKey)/\($0.WaitType)/\($0.Object == UnsafeMutableRawPointer(e + Int($0.WaitKey)))" }
                observed.append("lists=\((0..<3).map { waiters(e + $0) == [h] }) blocks=\(keys)")
                KeSetEvent(e + 1, IO_NO_INCREMENT, FALSE)
                join(h)
                observed.append("status=\(status) lists=\((0..<3).map { waiters(e + $0).count }) state1=\(e[1].Header.SignalState)")
            }
            assertCompleted(machine)
            XCTAssertEqual(observed, [
                "lists=[true, true, true] blocks=[\"0/1/true\", \"1/1/true\", \"2/1/true\"]",
                "status=1 lists=[0, 0, 0] state1=0",
            ], "seed \(seed)")
        }
    }

    /// WaitAll takes nothing until it can take everything: a signaled synchronization event stays
    /// signaled (and available to others) while the WaitAll waits for the other object.
    func testWaitAllTakesNothingUntilEveryObjectIsSignaled() {
        var observed: [String] = []
        let machine = simulate {
            let e = events([SynchronizationEvent, SynchronizationEvent], signaled: [false, false])
            let objects = objectArray([UnsafeMutableRawPointer(e), UnsafeMutableRawPointer(e + 1)])
            var status: NTSTATUS = -1
            let h = startThread {
                status = KeWaitForMultipleObjects(2, objects, WaitAll, Executive, KernelMode, FALSE, nil, nil)
            }
            waitUntil { waiters(e + 1).count == 1 }
            KeSetEvent(e, IO_NO_INCREMENT, FALSE)
            observed.append("A set: states=\([e[0].Header.SignalState, e[1].Header.SignalState]) waiting=\(waiters(e).count)")
            var zero = LARGE_INTEGER()
            observed.append("A polled by another thread: \(KeWaitForSingleObject(e, Executive, KernelMode, FALSE, &zero))")
            KeSetEvent(e + 1, IO_NO_INCREMENT, FALSE)
            observed.append("B set: states=\([e[0].Header.SignalState, e[1].Header.SignalState]) waiting=\(waiters(e + 1).count)")
            KeSetEvent(e, IO_NO_INCREMENT, FALSE)
            join(h)
            observed.append("A set again: status=\(status) states=\([e[0].Header.SignalState, e[1].Header.SignalState])")
        }
        assertCompleted(machine)
        XCTAssertEqual(observed, [
            "A set: states=[1, 0] waiting=1",
            "A polled by another thread: 0",
            "B set: states=[0, 1] waiting=1",
            "A set again: status=0 states=[0, 0]",
        ])
    }

    /// Threads that each need two kernel mutexes take them with one WaitAll: both are theirs at
    /// once, nobody else holds either meanwhile, and the ABBA deadlock of two sequential waits
    /// cannot happen, whatever the interleaving.
    func testWaitAllOnTwoMutexesIsAtomicUnderContention() {
        for seed in 0..<10 as Range<UInt64> {
            var inside = 0, maxInside = 0, total = 0
            var bothMine = true
            let machine = simulate(seed: seed, processors: 3) {
                let mutexes = UnsafeMutablePointer<KMUTEX>.allocate(capacity: 2)
                for i in 0..<2 {
                    mutexes[i] = KMUTEX()
                    KeInitializeMutex(mutexes + i, 0)
                }
                let forward = objectArray([UnsafeMutableRawPointer(mutexes), UnsafeMutableRawPointer(mutexes + 1)])
                let backward = objectArray([UnsafeMutableRawPointer(mutexes + 1), UnsafeMutableRawPointer(mutexes)])
                let hs = [forward, backward, forward].map { objects in
                    startThread {
                        let me = KeGetCurrentThread()
                        for _ in 0..<3 {
                            let status = KeWaitForMultipleObjects(2, objects, WaitAll, Executive, KernelMode, FALSE, nil, nil)
                            XCTAssertEqual(status, STATUS_WAIT_0)
                            bothMine = bothMine && mutexes[0].OwnerThread == me && mutexes[1].OwnerThread == me
                            inside += 1
                            maxInside = max(maxInside, inside)
                            _ = KeGetCurrentIrql()
                            total += 1
                            inside -= 1
                            KeReleaseMutex(mutexes, FALSE)
                            KeReleaseMutex(mutexes + 1, FALSE)
                        }
                    }
                }
                // A fourth thread takes the mutexes one at a time, in between.
                let single = startThread {
                    for i in [0, 1, 0] {
                        KeWaitForSingleObject(mutexes + i, Executive, KernelMode, FALSE, nil)
                        XCTAssertNotEqual(mutexes[1 - i].OwnerThread, KeGetCurrentThread())
                        KeReleaseMutex(mutexes + i, FALSE)
                    }
                }
                for h in hs + [single] { join(h) }
                XCTAssertEqual([mutexes[0].Header.SignalState, mutexes[1].Header.SignalState], [1, 1])
            }
            assertCompleted(machine)
            XCTAssertEqual(total, 9, "seed \(seed)")
            XCTAssertEqual(maxInside, 1, "seed \(seed)")
            XCTAssertTrue(bothMine, "seed \(seed)")
        }
    }

    func testWaitAllOnThreadHandlesReturnsWhenAllHaveEnded() {
        var log: [String] = []
        let machine = simulate {
            let handles = [1, 3].map { ms in
                startThread {
                    var nap = LARGE_INTEGER(QuadPart: -10_000 * LONGLONG(ms))
                    KeDelayExecutionThread(KernelMode, FALSE, &nap)
                    log.append("\(ms) ms")
                }
            }
            let objects = objectArray(handles.map { $0! })
            XCTAssertEqual(KeWaitForMultipleObjects(2, objects, WaitAll, Executive, KernelMode, FALSE, nil, nil), STATUS_WAIT_0)
            log.append("both ended")
            XCTAssertEqual(KeWaitForMultipleObjects(2, objects, WaitAny, Executive, KernelMode, FALSE, nil, nil), STATUS_WAIT_0)
        }
        assertCompleted(machine)
        XCTAssertEqual(log, ["1 ms", "3 ms", "both ended"])
    }

    func testTimeoutUnlinksEveryWaitBlock() {
        var observed: [String] = []
        let machine = simulate {
            let e = events([NotificationEvent, SynchronizationEvent], signaled: [false, false])
            let objects = objectArray([UnsafeMutableRawPointer(e), UnsafeMutableRawPointer(e + 1)])
            var timeout = LARGE_INTEGER(QuadPart: -10_000)
            for type in [WaitAny, WaitAll] {
                let status = KeWaitForMultipleObjects(2, objects, type, Executive, KernelMode, FALSE, &timeout, nil)
                observed.append("\(status) lists=\([waiters(e).count, waiters(e + 1).count])")
            }
        }
        assertCompleted(machine)
        XCTAssertEqual(observed, ["258 lists=[0, 0]", "258 lists=[0, 0]"])
    }

    func testZeroTimeoutPollsAtDispatchLevel() {
        var statuses: [NTSTATUS] = []
        let machine = simulate {
            let e = events([NotificationEvent, NotificationEvent], signaled: [false, false])
            let objects = objectArray([UnsafeMutableRawPointer(e), UnsafeMutableRawPointer(e + 1)])
            var zero = LARGE_INTEGER()
            let old = KeRaiseIrqlToDpcLevel()
            statuses.append(KeWaitForMultipleObjects(2, objects, WaitAny, Executive, KernelMode, FALSE, &zero, nil))
            KeSetEvent(e + 1, IO_NO_INCREMENT, FALSE)
            statuses.append(KeWaitForMultipleObjects(2, objects, WaitAny, Executive, KernelMode, FALSE, &zero, nil))
            statuses.append(KeWaitForMultipleObjects(2, objects, WaitAll, Executive, KernelMode, FALSE, &zero, nil))
            KeLowerIrql(old)
        }
        assertCompleted(machine)
        XCTAssertEqual(statuses, [STATUS_TIMEOUT, STATUS_WAIT_0 + 1, STATUS_TIMEOUT])
    }

    func testMoreThanThreeObjectsWithoutAWaitBlockArrayIs0xC() {
        let machine = simulate {
            let e = events(Array(repeating: NotificationEvent, count: 4), signaled: Array(repeating: true, count: 4))
            let objects = objectArray((0..<4).map { UnsafeMutableRawPointer(e + $0) })
            KeWaitForMultipleObjects(4, objects, WaitAny, Executive, KernelMode, FALSE, nil, nil)
        }
        assertBugCheck(machine, MAXIMUM_WAIT_OBJECTS_EXCEEDED, [0, 0, 0, 0])
    }

    func testAWaitBlockArrayAllowsUpTo64Objects() {
        var status: NTSTATUS = -1
        let machine = simulate {
            let e = events(Array(repeating: SynchronizationEvent, count: 64), signaled: Array(repeating: false, count: 64))
            let objects = objectArray((0..<64).map { UnsafeMutableRawPointer(e + $0) })
            let blocks = UnsafeMutablePointer<KWAIT_BLOCK>.allocate(capacity: 64)
            let h = startThread {
                status = KeWaitForMultipleObjects(64, objects, WaitAny, Executive, KernelMode, FALSE, nil, blocks)
            }
            waitUntil { waiters(e + 63).count == 1 }
            XCTAssertEqual(blocks[63].WaitKey, 63)
            KeSetEvent(e + 63, IO_NO_INCREMENT, FALSE)
            join(h)
        }
        assertCompleted(machine)
        XCTAssertEqual(status, STATUS_WAIT_0 + 63)
    }

    func testMoreThan64ObjectsIs0xCEvenWithAWaitBlockArray() {
        let machine = simulate {
            let e = events(Array(repeating: NotificationEvent, count: 65), signaled: Array(repeating: true, count: 65))
            let objects = objectArray((0..<65).map { UnsafeMutableRawPointer(e + $0) })
            let blocks = UnsafeMutablePointer<KWAIT_BLOCK>.allocate(capacity: 65)
            KeWaitForMultipleObjects(65, objects, WaitAny, Executive, KernelMode, FALSE, nil, blocks)
        }
        assertBugCheck(machine, MAXIMUM_WAIT_OBJECTS_EXCEEDED, [0, 0, 0, 0])
    }

    func testDeadlockReportListsEveryObjectOfAMultipleWait() {
        let machine = simulate {
            let e = events([NotificationEvent, SynchronizationEvent], signaled: [false, false])
            let objects = objectArray([UnsafeMutableRawPointer(e), UnsafeMutableRawPointer(e + 1)])
            KeWaitForMultipleObjects(2, objects, WaitAll, Executive, KernelMode, FALSE, nil, nil)
        }
        let report = deadlockReport(of: machine)
        XCTAssertTrue(report.contains("waiting in KeWaitForMultipleObjects"), report)
        XCTAssertTrue(report.contains("for all of KEVENT"), report)
        XCTAssertTrue(report.contains("(NotificationEvent, SignalState 0); KEVENT"), report)
    }

    // MARK: KePulseEvent and KeSetEvent(Wait = TRUE) (KeEvent.c items 56, 62, 63, 67)

    func testPulseReturnsThePreviousStateAndLeavesTheEventNonSignaled() {
        var results: [LONG] = []
        let machine = simulate {
            var e = KEVENT()
            KeInitializeEvent(&e, NotificationEvent, FALSE)
            e.Header.SignalState = 0x1234_5678
            results += [KePulseEvent(&e, IO_NO_INCREMENT, FALSE), KeReadStateEvent(&e)]
            results += [KePulseEvent(&e, IO_NO_INCREMENT, FALSE), KeReadStateEvent(&e)]
        }
        assertCompleted(machine)
        XCTAssertEqual(results, [0x1234_5678, 0, 0, 0])
    }

    func testPulseReleasesEveryWaiterOfANotificationEventAndOneOfASynchronizationEvent() {
        for seed in 0..<6 as Range<UInt64> {
            var observed: [String] = []
            let machine = simulate(seed: seed) {
                for type in [NotificationEvent, SynchronizationEvent] {
                    let e = events([type], signaled: [false])
                    var woken = 0
                    let handles = (0..<3).map { _ in
                        startThread {
                            KeWaitForSingleObject(e, Executive, KernelMode, FALSE, nil)
                            woken += 1
                        }
                    }
                    waitUntil { waiters(e).count == 3 }
                    let oldest = waiters(e).first!
                    KePulseEvent(e, IO_NO_INCREMENT, FALSE)
                    let left = waiters(e)
                    observed.append("type \(type.rawValue): state=\(e.pointee.Header.SignalState) left=\(left.count) "
                        + "oldestWoken=\(!left.contains { $0 == oldest })")
                    while !waiters(e).isEmpty { KePulseEvent(e, IO_NO_INCREMENT, FALSE) }
                    for h in handles { join(h) }
                    XCTAssertEqual(woken, 3)
                }
            }
            assertCompleted(machine)
            XCTAssertEqual(observed, ["type 0: state=0 left=0 oldestWoken=true", "type 1: state=0 left=2 oldestWoken=true"],
                           "seed \(seed)")
        }
    }

    /// KeEvent.c items 62–63 on an x64 (multiprocessor) kernel: the call returns at SYNCH_LEVEL with
    /// WaitNext set and WaitIrql = the entry IRQL; the wait that follows returns at that IRQL.
    func testSetAndPulseWithWaitTrueReturnAtSynchLevelUntilTheNextWait() {
        var observed: [String] = []
        let machine = simulate {
            var e = KEVENT(), other = KEVENT()
            KeInitializeEvent(&e, SynchronizationEvent, FALSE)
            KeInitializeEvent(&other, NotificationEvent, TRUE)
            let thread = KeGetCurrentThread().assumingMemoryBound(to: KTHREAD.self)
            for start in [PASSIVE_LEVEL, APC_LEVEL] {
                var old: KIRQL = 0
                KeRaiseIrql(start, &old)
                let set = KeSetEvent(&e, IO_NO_INCREMENT, TRUE)
                observed.append("set: \(set) state=\(e.Header.SignalState) IRQL=\(KeGetCurrentIrql()) "
                    + "WaitNext=\(thread.pointee.WaitNext) WaitIrql=\(thread.pointee.WaitIrql)")
                var zero = LARGE_INTEGER()
                let status = KeWaitForSingleObject(&e, Executive, KernelMode, FALSE, &zero)
                observed.append("wait: \(status) state=\(e.Header.SignalState) IRQL=\(KeGetCurrentIrql()) "
                    + "WaitNext=\(thread.pointee.WaitNext)")
                let pulse = KePulseEvent(&e, IO_NO_INCREMENT, TRUE)
                observed.append("pulse: \(pulse) state=\(e.Header.SignalState) IRQL=\(KeGetCurrentIrql()) "
                    + "WaitIrql=\(thread.pointee.WaitIrql)")
                let objects = objectArray([UnsafeMutableRawPointer(&other)])
                let multi = KeWaitForMultipleObjects(1, objects, WaitAny, Executive, KernelMode, FALSE, nil, nil)
                observed.append("multiple wait: \(multi) IRQL=\(KeGetCurrentIrql())")
                KeLowerIrql(old)
            }
        }
        assertCompleted(machine)
        XCTAssertEqual(observed, [
            "set: 0 state=1 IRQL=12 WaitNext=1 WaitIrql=0", "wait: 0 state=0 IRQL=0 WaitNext=0",
            "pulse: 0 state=0 IRQL=12 WaitIrql=0", "multiple wait: 0 IRQL=0",
            "set: 0 state=1 IRQL=12 WaitNext=1 WaitIrql=1", "wait: 0 state=0 IRQL=1 WaitNext=0",
            "pulse: 0 state=0 IRQL=12 WaitIrql=1", "multiple wait: 0 IRQL=1",
        ])
    }

    func testSetEventWithWaitTrueAtDispatchUnderVerifierIs0xC4_0x20016() {
        let machine = simulate {
            var e = KEVENT()
            KeInitializeEvent(&e, NotificationEvent, FALSE)
            _ = KeRaiseIrqlToDpcLevel()
            KeSetEvent(&e, IO_NO_INCREMENT, TRUE)
        }
        assertBugCheck(machine, 0xC4, [0x2_0016, 0, 0, 0])
    }
}
