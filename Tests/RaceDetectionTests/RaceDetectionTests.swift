// The race detector against the happens-before edges it claims (see KernelSim/Instrumentation):
// for each edge, the same accesses once ordered by it (no report) and once not (a report, with the
// right roles and contexts). This target is compiled with `-sanitize=thread` (frontend only: the
// `__tsan_*` entry points are KernelSim's), so the test code's own accesses reach the detector;
// it shares KernelSimTests' TestSupport.swift through a symbolic link.
//
// Roles are made deterministic without ordering anything: a 1 ms `KeDelayExecutionThread`
// (simulated time, far longer than another context's few steps) decides which access comes first,
// and a delay is no synchronization.
import Glibc
import XCTest
@testable import KernelSim

/// Shared memory the tests race on, and the kernel objects that may order it, in one heap object.
private final class Box {
    var x = 0
    var y = 0
    var seen = 0
    var n: Int32 = 0
    var spin: KSPIN_LOCK = 0
    var oldIrql: KIRQL = 0
    var fast = FAST_MUTEX()
    var guarded = KGUARDED_MUTEX()
    var mutex = KMUTEX()
    var event = KEVENT()
    var semaphore = KSEMAPHORE()
    var dpc = KDPC()
    var apc = KAPC()
    var item = WORK_QUEUE_ITEM()
    var device = DEVICE_OBJECT()
    var interrupt: PKINTERRUPT?
    var timeout = LARGE_INTEGER(QuadPart: 0)
    /// How reports name the DPC, APC and ISR contexts (set by the helpers that initialize them).
    var dpcName = ""
    var apcName = ""
    var isrName = ""
    /// Thread results that the test reads after the machine stopped.
    var status: NTSTATUS = 0

    /// Initializes every lock and object a test may use. Call on a simulated thread.
    func initialize() {
        KeInitializeSpinLock(&spin)
        ExInitializeFastMutex(&fast)
        KeInitializeGuardedMutex(&guarded)
        KeInitializeMutex(&mutex, 0)
        KeInitializeEvent(&event, SynchronizationEvent, FALSE)
        KeInitializeSemaphore(&semaphore, 0, 10)
    }

    /// A DPC whose routine runs `body`, targeted at processor `target` if given.
    func initializeDpc(target: CCHAR? = nil, _ body: @escaping () -> Void) {
        let line = #line; KeInitializeDpc(&dpc, { _, _, _, _ in body() }, nil)
        dpcName = "the DPC initialized at \(#filePath):\(line)"
        if let target { KeSetTargetProcessorDpc(&dpc, target) }
    }

    /// A special kernel APC for `thread` whose kernel routine runs `body`.
    func initializeApc(for thread: PKTHREAD, _ body: @escaping () -> Void) {
        let line = #line; KeInitializeApc(&apc, thread, OriginalApcEnvironment, { _, _, _, _, _ in body() }, nil, nil, KernelMode, nil)
        apcName = "the APC initialized at \(#filePath):\(line)"
    }

    /// An interrupt at DIRQL 5 on both processors whose ISR runs `body`.
    func connectInterrupt(_ body: @escaping () -> Void) {
        let line = #line; let status = IoConnectInterrupt(&interrupt, { _, _ in body(); return TRUE }, nil, nil, 0x51, 5, 5, LevelSensitive, FALSE, 0b11, FALSE)
        XCTAssertEqual(status, STATUS_SUCCESS)
        isrName = "the ISR connected at \(#filePath):\(line)"
    }
}

/// Sleeps `ms` milliseconds of simulated time: it lets the other contexts run their few steps
/// first, and orders nothing.
private func nap(_ ms: LONGLONG = 1) {
    var interval = LARGE_INTEGER(QuadPart: -10_000 * ms)
    KeDelayExecutionThread(KernelMode, FALSE, &interval)
}

/// Runs `body` on a fresh machine (which must complete) and returns the run's first data race.
private func raceIn(seed: UInt64 = 0, processors: Int = 2, file: StaticString = #filePath, line: UInt = #line,
                    _ body: @escaping () -> Void) -> KsDataRace? {
    let m = simulate(seed: seed, processors: processors, body)
    assertCompleted(m, file: file, line: line)
    return KsLastDataRace()
}

private func assertNoRace(_ race: KsDataRace?, _ message: String = "", file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertNil(race, "\(message)\n\(race?.description ?? "")", file: file, line: line)
}

/// Asserts a race whose earlier access was made by `previous` (a write if `previousWrites`) and
/// whose later one by `current`; returns it for further checks.
@discardableResult
private func assertRace(_ race: KsDataRace?, previous: String, writes previousWrites: Bool, current: String,
                        writes currentWrites: Bool, _ message: String = "",
                        file: StaticString = #filePath, line: UInt = #line) -> KsDataRace? {
    guard let race else {
        XCTFail("expected a data race between \(previous) and \(current) \(message)", file: file, line: line)
        return nil
    }
    let text = "\(message)\n\(race.description)"
    XCTAssertEqual(race.previous.context, previous, text, file: file, line: line)
    XCTAssertEqual(race.previous.write, previousWrites, "previous access is a write: \(text)", file: file, line: line)
    XCTAssertEqual(race.current.context, current, text, file: file, line: line)
    XCTAssertEqual(race.current.write, currentWrites, "current access is a write: \(text)", file: file, line: line)
    XCTAssertFalse(race.previous.atomic && race.current.atomic, text, file: file, line: line)
    return race
}

/// A way to hold a lock around `body`, and the kind a report names it by.
private struct LockFlavour: @unchecked Sendable {
    var kind: String
    var withLock: (Box, () -> Void) -> Void
}

private let spinLock = LockFlavour(kind: "KSPIN_LOCK") { b, body in
    KeAcquireSpinLock(&b.spin, &b.oldIrql)
    body()
    KeReleaseSpinLock(&b.spin, b.oldIrql)
}
private let spinLockAtDpcLevel = LockFlavour(kind: "KSPIN_LOCK") { b, body in
    let old = KeRaiseIrqlToDpcLevel()
    KeAcquireSpinLockAtDpcLevel(&b.spin)
    body()
    KeReleaseSpinLockFromDpcLevel(&b.spin)
    KeLowerIrql(old)
}
private let queuedSpinLock = LockFlavour(kind: "KSPIN_LOCK (in-stack queued)") { b, body in
    var handle = KLOCK_QUEUE_HANDLE()
    KeAcquireInStackQueuedSpinLock(&b.spin, &handle)
    body()
    KeReleaseInStackQueuedSpinLock(&handle)
}
private let queuedSpinLockAtDpcLevel = LockFlavour(kind: "KSPIN_LOCK (in-stack queued)") { b, body in
    let old = KeRaiseIrqlToDpcLevel()
    var handle = KLOCK_QUEUE_HANDLE()
    KeAcquireInStackQueuedSpinLockAtDpcLevel(&b.spin, &handle)
    body()
    KeReleaseInStackQueuedSpinLockFromDpcLevel(&handle)
    KeLowerIrql(old)
}
private let interruptSpinLock = LockFlavour(kind: "KSPIN_LOCK") { b, body in
    let old = KeAcquireInterruptSpinLock(b.interrupt!)
    body()
    KeReleaseInterruptSpinLock(b.interrupt!, old)
}
private let synchronizeExecution = LockFlavour(kind: "KSPIN_LOCK") { b, body in
    KeSynchronizeExecution(b.interrupt!, { _ in body(); return TRUE }, nil)
}
private let fastMutex = LockFlavour(kind: "FAST_MUTEX") { b, body in
    ExAcquireFastMutex(&b.fast)
    body()
    ExReleaseFastMutex(&b.fast)
}
private let fastMutexUnsafe = LockFlavour(kind: "FAST_MUTEX") { b, body in
    KeEnterCriticalRegion()
    ExAcquireFastMutexUnsafe(&b.fast)
    body()
    ExReleaseFastMutexUnsafe(&b.fast)
    KeLeaveCriticalRegion()
}
private let fastMutexTry = LockFlavour(kind: "FAST_MUTEX") { b, body in
    while ExTryToAcquireFastMutex(&b.fast) == FALSE { nap() }
    body()
    ExReleaseFastMutex(&b.fast)
}
private let guardedMutex = LockFlavour(kind: "KGUARDED_MUTEX") { b, body in
    KeAcquireGuardedMutex(&b.guarded)
    body()
    KeReleaseGuardedMutex(&b.guarded)
}
private let guardedMutexUnsafe = LockFlavour(kind: "KGUARDED_MUTEX") { b, body in
    KeEnterGuardedRegion()
    KeAcquireGuardedMutexUnsafe(&b.guarded)
    body()
    KeReleaseGuardedMutexUnsafe(&b.guarded)
    KeLeaveGuardedRegion()
}
private let guardedMutexTry = LockFlavour(kind: "KGUARDED_MUTEX") { b, body in
    while KeTryToAcquireGuardedMutex(&b.guarded) == FALSE { nap() }
    body()
    KeReleaseGuardedMutex(&b.guarded)
}
private let kernelMutex = LockFlavour(kind: "KMUTEX") { b, body in
    KeWaitForSingleObject(&b.mutex, Executive, KernelMode, FALSE, nil)
    body()
    KeReleaseMutex(&b.mutex, FALSE)
}

/// A signal that satisfies a wait on `object(b)`, for the dispatcher-object edges.
private struct SignalFlavour: @unchecked Sendable {
    var object: (Box) -> PVOID
    var signal: (Box) -> Void
}

private let setEvent = SignalFlavour(object: { withUnsafeMutablePointer(to: &$0.event) { PVOID($0) } },
                                     signal: { KeSetEvent(&$0.event, IO_NO_INCREMENT, FALSE) })
private let pulseEvent = SignalFlavour(object: { withUnsafeMutablePointer(to: &$0.event) { PVOID($0) } },
                                       signal: { KePulseEvent(&$0.event, IO_NO_INCREMENT, FALSE) })
private let releaseSemaphore = SignalFlavour(object: { withUnsafeMutablePointer(to: &$0.semaphore) { PVOID($0) } },
                                             signal: { KeReleaseSemaphore(&$0.semaphore, IO_NO_INCREMENT, 1, FALSE) })

final class RaceDetectionTests: XCTestCase {
    // MARK: One run finds a race

    /// Thread 2 writes x; 1 ms later thread 3 writes it: the writes never overlap and the result
    /// is the same in every schedule, yet nothing orders them, so seed 0 alone reports the race.
    func testARaceIsFoundInOneRunWhoseInterleavingWasHarmless() {
        let b = Box()
        let race = raceIn(seed: 0) {
            let first = startThread { b.x = 1 }
            let second = startThread {
                nap()
                b.x = 2
            }
            join(first, second)
            b.seen = b.x
        }
        XCTAssertEqual(b.seen, 2, "the second write came last: the interleaving was harmless")
        let r = assertRace(race, previous: "thread 2", writes: true, current: "thread 3", writes: true)
        XCTAssertEqual(r?.address, withUnsafeMutablePointer(to: &b.x) { ULONG_PTR(bitPattern: $0) })
        XCTAssertEqual(r?.size, 8)
    }

    // MARK: Thread creation

    func testThreadCreationOrdersWhatTheCreatorDidBefore() {
        let b = Box()
        let race = raceIn {
            b.x = 1
            join(startThread { b.seen = b.x })
        }
        assertNoRace(race)
        XCTAssertEqual(b.seen, 1)
    }

    func testWhatTheCreatorDoesAfterCreatingAThreadRacesWithIt() {
        let b = Box()
        let race = raceIn {
            let t = startThread {
                nap()
                b.seen = b.x
            }
            b.x = 1
            join(t)
        }
        assertRace(race, previous: "thread 1", writes: true, current: "thread 2", writes: false)
    }

    // MARK: Thread end -> a satisfied wait on the thread

    func testZwWaitForSingleObjectOnTheThreadHandleOrdersTheThreadsWrites() {
        let b = Box()
        let race = raceIn {
            let t = startThread { b.x = 1 }
            join(t)
            b.seen = b.x
        }
        assertNoRace(race)
        XCTAssertEqual(b.seen, 1)
    }

    func testReadingWhatAnEndedThreadWroteWithoutWaitingForItRaces() {
        let b = Box()
        let race = raceIn {
            let t = startThread { b.x = 1 }
            nap()  // the thread has ended by now, but nothing says so
            b.seen = b.x
            join(t)
        }
        assertRace(race, previous: "thread 2", writes: true, current: "thread 1", writes: false)
    }

    func testKeWaitForSingleObjectOnTheThreadObjectOrdersTheThreadsWrites() {
        let b = Box()
        let race = raceIn {
            let t = startThread { b.x = 1 }
            b.status = KeWaitForSingleObject(t, Executive, KernelMode, FALSE, nil)
            b.seen = b.x
            ZwClose(t)
        }
        assertNoRace(race)
        XCTAssertEqual(b.status, STATUS_WAIT_0)
        XCTAssertEqual(b.seen, 1)
    }

    /// A wait that times out (here a zero-timeout poll of a running thread) orders nothing.
    func testATimedOutWaitOnTheThreadOrdersNothing() {
        let b = Box()
        let race = raceIn {
            let t = startThread {
                nap()
                b.x = 1
            }
            var zero = LARGE_INTEGER(QuadPart: 0)
            b.status = KeWaitForSingleObject(t, Executive, KernelMode, FALSE, &zero)
            b.seen = b.x
            join(t)
        }
        XCTAssertEqual(b.status, STATUS_TIMEOUT)
        assertRace(race, previous: "thread 1", writes: false, current: "thread 2", writes: true)
    }

    // MARK: Locks

    /// Thread 2 increments x holding the lock; 1 ms later thread 3 does. Only the lock orders them.
    private func assertLockOrders(_ flavour: LockFlavour, seeds: Range<UInt64> = 0..<3, file: StaticString = #filePath,
                                  line: UInt = #line) {
        for seed in seeds {
            let b = Box()
            let race = raceIn(seed: seed, file: file, line: line) {
                b.initialize()
                b.connectInterrupt {}
                let first = startThread { flavour.withLock(b) { b.x += 1 } }
                let second = startThread {
                    nap()
                    flavour.withLock(b) { b.x += 1 }
                }
                join(first, second)
            }
            assertNoRace(race, "seed \(seed)", file: file, line: line)
            XCTAssertEqual(b.x, 2, file: file, line: line)
        }
    }

    /// Thread 2 writes x holding the lock; 1 ms later thread 3 reads it without: a race, and the
    /// report lists the lock on thread 2's side (where it was acquired: this file) and none on 3's.
    private func assertUnheldLockRaces(_ flavour: LockFlavour, file: StaticString = #filePath, line: UInt = #line) {
        let b = Box()
        let race = raceIn(file: file, line: line) {
            b.initialize()
            b.connectInterrupt {}
            let first = startThread { flavour.withLock(b) { b.x = 1 } }
            let second = startThread {
                nap()
                b.seen = b.x
            }
            join(first, second)
        }
        guard let r = assertRace(race, previous: "thread 2", writes: true, current: "thread 3", writes: false,
                                 file: file, line: line) else { return }
        XCTAssertEqual(r.previous.locks.map(\.kind), [flavour.kind], r.description, file: file, line: line)
        XCTAssertEqual(r.previous.locks.first?.file, #filePath, r.description, file: file, line: line)
        XCTAssertEqual(r.current.locks.count, 0, r.description, file: file, line: line)
    }

    func testSpinLockOrders() { assertLockOrders(spinLock) }
    func testSpinLockNotTakenByOneSideRaces() { assertUnheldLockRaces(spinLock) }
    func testSpinLockAtDpcLevelOrders() { assertLockOrders(spinLockAtDpcLevel) }
    func testSpinLockAtDpcLevelNotTakenByOneSideRaces() { assertUnheldLockRaces(spinLockAtDpcLevel) }
    func testInStackQueuedSpinLockOrders() { assertLockOrders(queuedSpinLock) }
    func testInStackQueuedSpinLockNotTakenByOneSideRaces() { assertUnheldLockRaces(queuedSpinLock) }
    func testInStackQueuedSpinLockAtDpcLevelOrders() { assertLockOrders(queuedSpinLockAtDpcLevel) }
    func testInStackQueuedSpinLockAtDpcLevelNotTakenByOneSideRaces() { assertUnheldLockRaces(queuedSpinLockAtDpcLevel) }
    func testInterruptSpinLockOrders() { assertLockOrders(interruptSpinLock) }
    func testInterruptSpinLockNotTakenByOneSideRaces() { assertUnheldLockRaces(interruptSpinLock) }
    func testKeSynchronizeExecutionOrders() { assertLockOrders(synchronizeExecution) }
    func testKeSynchronizeExecutionNotUsedByOneSideRaces() { assertUnheldLockRaces(synchronizeExecution) }
    func testFastMutexOrders() { assertLockOrders(fastMutex) }
    func testFastMutexNotTakenByOneSideRaces() { assertUnheldLockRaces(fastMutex) }
    func testFastMutexUnsafeOrders() { assertLockOrders(fastMutexUnsafe) }
    func testFastMutexUnsafeNotTakenByOneSideRaces() { assertUnheldLockRaces(fastMutexUnsafe) }
    func testFastMutexTryOrders() { assertLockOrders(fastMutexTry) }
    func testFastMutexTryNotTakenByOneSideRaces() { assertUnheldLockRaces(fastMutexTry) }
    func testGuardedMutexOrders() { assertLockOrders(guardedMutex) }
    func testGuardedMutexNotTakenByOneSideRaces() { assertUnheldLockRaces(guardedMutex) }
    func testGuardedMutexUnsafeOrders() { assertLockOrders(guardedMutexUnsafe) }
    func testGuardedMutexUnsafeNotTakenByOneSideRaces() { assertUnheldLockRaces(guardedMutexUnsafe) }
    func testGuardedMutexTryOrders() { assertLockOrders(guardedMutexTry) }
    func testGuardedMutexTryNotTakenByOneSideRaces() { assertUnheldLockRaces(guardedMutexTry) }
    func testKernelMutexOrders() { assertLockOrders(kernelMutex) }
    func testKernelMutexNotTakenByOneSideRaces() { assertUnheldLockRaces(kernelMutex) }

    /// An ISR runs holding its interrupt's spin lock, so KeSynchronizeExecution orders a thread's
    /// accesses with it.
    func testKeSynchronizeExecutionOrdersAThreadWithTheIsr() {
        let b = Box()
        let race = raceIn {
            b.initialize()
            b.connectInterrupt { b.x += 1 }
            KsAssertInterrupt(b.interrupt!, processor: 1)
            nap()
            KeSynchronizeExecution(b.interrupt!, { _ in b.x += 1; return TRUE }, nil)
        }
        assertNoRace(race)
        XCTAssertEqual(b.x, 2)
    }

    func testAThreadNotUsingKeSynchronizeExecutionRacesWithTheIsr() {
        let b = Box()
        let race = raceIn {
            b.initialize()
            b.connectInterrupt { b.seen = b.x }
            KsAssertInterrupt(b.interrupt!, processor: 1)
            nap()
            b.x = 1
        }
        assertRace(race, previous: b.isrName, writes: false, current: "thread 1", writes: true)
    }

    // MARK: Dispatcher objects: signal -> satisfied wait

    /// Thread 3 waits; thread 2 writes x then signals (ordered), or signals then writes (not).
    private func signalScenario(_ flavour: SignalFlavour, writeBeforeSignal: Bool) -> (KsDataRace?, Box) {
        let b = Box()
        let race = raceIn {
            b.initialize()
            let waiter = startThread {
                KeWaitForSingleObject(flavour.object(b), Executive, KernelMode, FALSE, nil)
                b.seen = b.x
            }
            let signaler = startThread {
                nap()  // the waiter is waiting (KePulseEvent only wakes current waiters)
                if writeBeforeSignal { b.x = 1 }
                flavour.signal(b)
                if !writeBeforeSignal {
                    nap()
                    b.x = 1
                }
            }
            join(waiter, signaler)
        }
        return (race, b)
    }

    func testKeSetEventOrdersTheSatisfiedWait() {
        let (race, b) = signalScenario(setEvent, writeBeforeSignal: true)
        assertNoRace(race)
        XCTAssertEqual(b.seen, 1)
    }

    func testAWriteAfterKeSetEventRacesWithTheWaiter() {
        let (race, _) = signalScenario(setEvent, writeBeforeSignal: false)
        assertRace(race, previous: "thread 2", writes: false, current: "thread 3", writes: true)
    }

    func testKePulseEventOrdersTheSatisfiedWait() {
        let (race, b) = signalScenario(pulseEvent, writeBeforeSignal: true)
        assertNoRace(race)
        XCTAssertEqual(b.seen, 1)
    }

    func testAWriteAfterKePulseEventRacesWithTheWaiter() {
        let (race, _) = signalScenario(pulseEvent, writeBeforeSignal: false)
        assertRace(race, previous: "thread 2", writes: false, current: "thread 3", writes: true)
    }

    func testKeReleaseSemaphoreOrdersTheSatisfiedWait() {
        let (race, b) = signalScenario(releaseSemaphore, writeBeforeSignal: true)
        assertNoRace(race)
        XCTAssertEqual(b.seen, 1)
    }

    func testAWriteAfterKeReleaseSemaphoreRacesWithTheWaiter() {
        let (race, _) = signalScenario(releaseSemaphore, writeBeforeSignal: false)
        assertRace(race, previous: "thread 2", writes: false, current: "thread 3", writes: true)
    }

    /// KeReleaseMutex hands the mutex to the thread blocked on it: what the owner did before
    /// releasing is ordered before the new owner's accesses; what it does after is not.
    func testKeReleaseMutexOrdersTheWaiterItWakes() {
        for writeBeforeRelease in [true, false] {
            let b = Box()
            let race = raceIn {
                b.initialize()
                let owner = startThread {
                    KeWaitForSingleObject(&b.mutex, Executive, KernelMode, FALSE, nil)
                    nap(2)  // the other thread blocks on the mutex
                    if writeBeforeRelease { b.x = 1 }
                    KeReleaseMutex(&b.mutex, FALSE)
                    if !writeBeforeRelease {
                        nap()
                        b.x = 1
                    }
                }
                let waiter = startThread {
                    nap()
                    KeWaitForSingleObject(&b.mutex, Executive, KernelMode, FALSE, nil)
                    b.seen = b.x
                    KeReleaseMutex(&b.mutex, FALSE)
                }
                join(owner, waiter)
            }
            if writeBeforeRelease {
                assertNoRace(race)
                XCTAssertEqual(b.seen, 1)
            } else {
                assertRace(race, previous: "thread 3", writes: false, current: "thread 2", writes: true)
            }
        }
    }

    // MARK: DPCs

    func testKeInsertQueueDpcOrdersTheQueuersEarlierWritesWithTheDpc() {
        let b = Box()
        let race = raceIn {
            b.initializeDpc(target: 1) { b.seen = b.x }
            b.x = 1
            KeInsertQueueDpc(&b.dpc, nil, nil)
            KeFlushQueuedDpcs()
        }
        assertNoRace(race)
        XCTAssertEqual(b.seen, 1)
    }

    func testAWriteAfterKeInsertQueueDpcRacesWithTheDpc() {
        let b = Box()
        let race = raceIn {
            b.initializeDpc(target: 1) { b.seen = b.x }
            KeInsertQueueDpc(&b.dpc, nil, nil)
            nap()  // the DPC has run on processor 1
            b.x = 1
            KeFlushQueuedDpcs()
        }
        assertRace(race, previous: b.dpcName, writes: false, current: "thread 1", writes: true)
    }

    func testKeFlushQueuedDpcsOrdersTheDpcsWritesWithItsCaller() {
        let b = Box()
        let race = raceIn {
            b.initializeDpc(target: 1) { b.x = 1 }
            KeInsertQueueDpc(&b.dpc, nil, nil)
            KeFlushQueuedDpcs()
            b.seen = b.x
        }
        assertNoRace(race)
        XCTAssertEqual(b.seen, 1)
    }

    func testReadingWhatADpcWroteWithoutKeFlushQueuedDpcsRaces() {
        let b = Box()
        let race = raceIn {
            b.initializeDpc(target: 1) { b.x = 1 }
            KeInsertQueueDpc(&b.dpc, nil, nil)
            nap()  // the DPC has run, but nothing says so
            b.seen = b.x
            KeFlushQueuedDpcs()
        }
        XCTAssertEqual(b.seen, 1)
        assertRace(race, previous: b.dpcName, writes: true, current: "thread 1", writes: false)
    }

    // MARK: A processor's DISPATCH_LEVEL

    /// A thread at DISPATCH_LEVEL queues a DPC to its own processor and then writes x; the DPC
    /// cannot run until the thread lowers the IRQL, so it comes after the write (the write is
    /// after KeInsertQueueDpc, so only the DISPATCH_LEVEL edge orders them).
    func testCodeAtDispatchLevelIsOrderedWithTheDpcsOfItsProcessor() {
        for seed in 0..<5 as Range<UInt64> {
            let b = Box()
            let race = raceIn(seed: seed) {
                b.initializeDpc { b.seen = b.x }
                let old = KeRaiseIrqlToDpcLevel()
                KeInsertQueueDpc(&b.dpc, nil, nil)
                b.x = 1
                KeLowerIrql(old)
            }
            assertNoRace(race, "seed \(seed)")
            XCTAssertEqual(b.seen, 1, "seed \(seed)")
        }
    }

    /// The same at DISPATCH_LEVEL, with the DPC targeted at the other processor: it can run
    /// during the write, so it races. The report gives each side's processor and IRQL.
    func testCodeAtDispatchLevelRacesWithTheDpcsOfAnotherProcessor() {
        for seed in 0..<5 as Range<UInt64> {
            let b = Box()
            var mine = -1
            let race = raceIn(seed: seed) {
                let old = KeRaiseIrqlToDpcLevel()
                mine = Int(KeGetCurrentProcessorNumber())
                b.initializeDpc(target: CCHAR(1 - mine)) { b.seen = b.x }
                KeInsertQueueDpc(&b.dpc, nil, nil)
                b.x = 1
                KeLowerIrql(old)
                KeFlushQueuedDpcs()
            }
            guard let r = race else {
                XCTFail("seed \(seed): expected a race between thread 1 and the DPC")
                continue
            }
            let (thread, dpc) = r.current.context == "thread 1" ? (r.current, r.previous) : (r.previous, r.current)
            XCTAssertEqual(thread.context, "thread 1", r.description)
            XCTAssertEqual(dpc.context, b.dpcName, r.description)
            XCTAssertTrue(thread.write, r.description)
            XCTAssertFalse(dpc.write, r.description)
            XCTAssertEqual(thread.irql, DISPATCH_LEVEL, r.description)
            XCTAssertEqual(dpc.irql, DISPATCH_LEVEL, r.description)
            XCTAssertEqual(thread.processor, mine, r.description)
            XCTAssertEqual(dpc.processor, 1 - mine, r.description)
        }
    }

    /// Raising to DISPATCH_LEVEL orders a thread with the DPCs of its processor, not with another
    /// thread that once raised on the same processor: two threads writing x at DISPATCH_LEVEL
    /// without a lock race whichever processors the schedule put them on.
    func testTwoThreadsAtDispatchLevelWithoutALockRaceInEverySchedule() {
        var missed: [String] = []
        for seed in 0..<20 as Range<UInt64> {
            let b = Box()
            let race = raceIn(seed: seed) {
                let hs = (0..<2).map { i in
                    startThread {
                        if i == 1 { nap() }
                        let old = KeRaiseIrqlToDpcLevel()
                        // Where this thread is while at DISPATCH_LEVEL (it cannot move meanwhile).
                        let cpu = Int(KeGetCurrentProcessorNumber())
                        if i == 0 { b.y = cpu } else { b.seen = cpu }
                        b.x += 1
                        KeLowerIrql(old)
                    }
                }
                for h in hs { join(h) }
            }
            if race == nil { missed.append("seed \(seed) (processors \(b.y) and \(b.seen))") }
        }
        XCTAssertEqual(missed, [], "two threads at DISPATCH_LEVEL without a lock must race on any processors")
    }

    // MARK: APCs

    /// Thread 2 waits; thread 1 queues a special kernel APC to it, whose routine reads x.
    private func apcScenario(writeBeforeInsert: Bool) -> (KsDataRace?, Box) {
        let b = Box()
        let race = raceIn {
            b.initialize()
            let target = startThread { KeWaitForSingleObject(&b.event, Executive, KernelMode, FALSE, nil) }
            nap()  // thread 2 is waiting
            b.initializeApc(for: target!) { b.seen = b.x }
            if writeBeforeInsert { b.x = 1 }
            b.status = NTSTATUS(KeInsertQueueApc(&b.apc, nil, nil, IO_NO_INCREMENT))
            nap()  // the APC has run
            if !writeBeforeInsert { b.x = 1 }
            KeSetEvent(&b.event, IO_NO_INCREMENT, FALSE)
            join(target)
        }
        XCTAssertEqual(b.status, NTSTATUS(TRUE), "inserted")
        return (race, b)
    }

    func testKeInsertQueueApcOrdersTheQueuersEarlierWritesWithTheApc() {
        let (race, b) = apcScenario(writeBeforeInsert: true)
        assertNoRace(race)
        XCTAssertEqual(b.seen, 1)
    }

    func testAWriteAfterKeInsertQueueApcRacesWithTheApc() {
        let (race, b) = apcScenario(writeBeforeInsert: false)
        assertRace(race, previous: b.apcName, writes: false, current: "thread 1", writes: true)
    }

    // MARK: Interrupts

    func testKsAssertInterruptOrdersTheAssertersEarlierWritesWithTheIsr() {
        let b = Box()
        let race = raceIn {
            b.connectInterrupt { b.seen = b.x }
            b.x = 1
            KsAssertInterrupt(b.interrupt!, processor: 1)
            nap()
        }
        assertNoRace(race)
        XCTAssertEqual(b.seen, 1)
    }

    func testAWriteAfterKsAssertInterruptRacesWithTheIsr() {
        let b = Box()
        let race = raceIn {
            b.connectInterrupt { b.seen = b.x }
            KsAssertInterrupt(b.interrupt!, processor: 1)
            nap()  // the ISR has run
            b.x = 1
        }
        assertRace(race, previous: b.isrName, writes: false, current: "thread 1", writes: true)
    }

    // MARK: Work items

    func testExQueueWorkItemOrdersTheQueuersEarlierWritesWithTheRoutine() {
        let b = Box()
        let race = raceIn {
            b.initialize()
            ExInitializeWorkItem(&b.item, { _ in
                b.seen = b.x
                KeSetEvent(&b.event, IO_NO_INCREMENT, FALSE)
            }, nil)
            b.x = 1
            ExQueueWorkItem(&b.item, DelayedWorkQueue)
            KeWaitForSingleObject(&b.event, Executive, KernelMode, FALSE, nil)
        }
        assertNoRace(race)
        XCTAssertEqual(b.seen, 1)
    }

    func testAWriteAfterExQueueWorkItemRacesWithTheRoutine() {
        let b = Box()
        let race = raceIn {
            b.initialize()
            ExInitializeWorkItem(&b.item, { _ in
                b.seen = b.x
                KeSetEvent(&b.event, IO_NO_INCREMENT, FALSE)
            }, nil)
            ExQueueWorkItem(&b.item, DelayedWorkQueue)
            nap()  // the worker has run the routine
            b.x = 1
            KeWaitForSingleObject(&b.event, Executive, KernelMode, FALSE, nil)
        }
        assertRace(race, previous: "thread 2", writes: false, current: "thread 1", writes: true)
    }

    /// The usual hand-off: a DPC writes x and queues a work item whose routine reads it. The
    /// queuer is the DPC, so its writes before IoQueueWorkItem are ordered with the routine.
    func testIoQueueWorkItemFromADpcOrdersTheDpcsWritesWithTheRoutine() {
        for writeBeforeQueue in [true, false] {
            let b = Box()
            let race = raceIn {
                b.initialize()
                let workItem = IoAllocateWorkItem(&b.device)!
                b.initializeDpc(target: 1) {
                    if writeBeforeQueue { b.x = 1 }
                    IoQueueWorkItem(workItem, { _, _ in
                        b.seen = b.x
                        KeSetEvent(&b.event, IO_NO_INCREMENT, FALSE)
                    }, DelayedWorkQueue, nil)
                    if !writeBeforeQueue { b.x = 1 }
                }
                KeInsertQueueDpc(&b.dpc, nil, nil)
                KeWaitForSingleObject(&b.event, Executive, KernelMode, FALSE, nil)
                IoFreeWorkItem(workItem)
            }
            if writeBeforeQueue {
                assertNoRace(race)
                XCTAssertEqual(b.seen, 1)
            } else {
                guard let r = race else {
                    XCTFail("a write after IoQueueWorkItem races with the routine")
                    continue
                }
                XCTAssertEqual(Set([r.previous.context, r.current.context]), [b.dpcName, "thread 2"], r.description)
            }
        }
    }

    // MARK: Kernel objects passed by address

    /// Two threads use the same kernel objects, fields of one shared instance, through `&b.field`
    /// with nothing ordering their calls: the kernel's accesses to its objects are not races.
    func testKernelObjectsPassedByAddressAreNeverReported() {
        for seed in 0..<5 as Range<UInt64> {
            let b = Box()
            let race = raceIn(seed: seed) {
                b.initialize()
                KeInitializeEvent(&b.event, NotificationEvent, FALSE)
                b.initializeDpc {}
                let hs = (0..<2).map { _ in
                    startThread {
                        for _ in 0..<3 {
                            ExAcquireFastMutex(&b.fast)
                            ExReleaseFastMutex(&b.fast)
                            KeAcquireSpinLock(&b.spin, &b.oldIrql)
                            KeReleaseSpinLock(&b.spin, b.oldIrql)
                            KeSetEvent(&b.event, IO_NO_INCREMENT, FALSE)
                            _ = KeReadStateEvent(&b.event)
                            KeClearEvent(&b.event)
                            KeInsertQueueDpc(&b.dpc, nil, nil)
                            KeWaitForSingleObject(&b.semaphore, Executive, KernelMode, FALSE, &b.timeout)
                        }
                    }
                }
                for h in hs { join(h) }
            }
            assertNoRace(race, "seed \(seed)")
        }
    }

    // MARK: Interlocked operations

    func testInterlockedOperationsNeverRaceWithEachOther() {
        let b = Box()
        let race = raceIn {
            let hs = (0..<2).map { i in
                startThread {
                    for _ in 0..<10 {
                        InterlockedIncrement(&b.n)
                        _ = InterlockedExchangeAdd(&b.n, 2)
                        _ = InterlockedCompareExchange(&b.n, 0, -1)
                        _ = ReadNoFence(&b.n)
                        InterlockedDecrement(&b.n)
                        _ = InterlockedOr(&b.n, 0)
                        if i == 0 { _ = ReadAcquire(&b.n) } else { _ = InterlockedAnd(&b.n, -1) }
                    }
                }
            }
            for h in hs { join(h) }
            b.seen = Int(b.n)
        }
        assertNoRace(race)
        XCTAssertEqual(b.seen, 40, "each of 20 rounds added 2")
    }

    func testAPlainReadRacesWithAnUnorderedInterlockedWrite() {
        let b = Box()
        let race = raceIn {
            let writer = startThread { InterlockedIncrement(&b.n) }
            let reader = startThread {
                nap()
                b.seen = Int(b.n)
            }
            join(writer, reader)
        }
        guard let r = assertRace(race, previous: "thread 2", writes: true, current: "thread 3", writes: false) else { return }
        XCTAssertTrue(r.previous.atomic, r.description)
        XCTAssertFalse(r.current.atomic, r.description)
        XCTAssertTrue(r.description.contains("atomic write"), r.description)
        XCTAssertEqual(r.address, withUnsafeMutablePointer(to: &b.n) { ULONG_PTR(bitPattern: $0) })
    }

    /// An interlocked write the reader's interlocked read sees publishes what came before it
    /// (release/acquire on the variable): the classic flag hand-off is not a race.
    func testAnInterlockedFlagPublishesTheWritesBeforeIt() {
        let b = Box()
        let race = raceIn {
            let producer = startThread {
                b.x = 1
                WriteRelease(&b.n, 1)
            }
            let consumer = startThread {
                while ReadAcquire(&b.n) == 0 { nap() }
                b.seen = b.x
            }
            join(producer, consumer)
        }
        assertNoRace(race)
        XCTAssertEqual(b.seen, 1)
    }

    // MARK: Options

    /// Two threads that each increment x ten times with `x += 1`.
    private static func counterBody(result: @escaping (Int) -> Void) -> () -> Void {
        return {
            let b = Box()
            let hs = (0..<2).map { _ in startThread { for _ in 0..<10 { b.x += 1 } } }
            for h in hs { join(h) }
            result(b.x)
        }
    }

    /// With race detection off nothing is reported, but shared accesses still preempt: some
    /// schedule loses an update of `x += 1` (a load and a store the other thread can come between).
    func testRaceDetectionOffReportsNothingButStillPreempts() {
        var total = 0
        let body = Self.counterBody { total = $0 }
        guard case .completed = KsRunMachine(KsMachineOptions(raceDetection: false), body) else { return XCTFail("run") }
        XCTAssertNil(KsLastDataRace())
        let exploration = KsExplore(KsExploreOptions(schedules: 200, raceDetection: false), failed: { total != 20 }, body)
        guard let failure = exploration.failure else { return XCTFail("200 schedules lost no update: no preemption") }
        XCTAssertLessThan(total, 20)
        XCTAssertNil(failure.race)
        XCTAssertNil(KsLastDataRace())
        // With detection on, the first schedule already fails, on the race.
        let detecting = KsExplore(KsExploreOptions(schedules: 200), body)
        XCTAssertEqual(detecting.schedulesRun, 1)
        XCTAssertNotNil(detecting.failure?.race)
    }

    /// Preemption at shared accesses is part of the seeded schedule: the same seed gives the same
    /// trace (and the same race), for the random and the PCT strategies.
    func testTheSameSeedGivesTheSameTraceWithPreemption() {
        var total = 0
        let body = Self.counterBody { total = $0 }
        for strategy in [KsStrategy.random, .pct(depth: 3)] {
            var lost = false
            for seed in 0..<10 as Range<UInt64> {
                let options = KsMachineOptions(seed: seed, strategy: strategy)
                guard case .completed = KsRunMachine(options, body) else { return XCTFail("\(strategy) seed \(seed)") }
                let (trace, race, first) = (KsLastTrace(), KsLastDataRace(), total)
                guard case .completed = KsRunMachine(options, body) else { return XCTFail("\(strategy) seed \(seed)") }
                XCTAssertTrue(KsLastTrace() == trace, "\(strategy) seed \(seed): traces differ")
                XCTAssertEqual(total, first, "\(strategy) seed \(seed)")
                XCTAssertNotNil(race)
                XCTAssertEqual(KsLastDataRace()?.current.offset, race?.current.offset, "\(strategy) seed \(seed)")
                XCTAssertEqual(KsLastDataRace()?.previous.offset, race?.previous.offset, "\(strategy) seed \(seed)")
                XCTAssertEqual(KsLastDataRace()?.current.context, race?.current.context, "\(strategy) seed \(seed)")
                XCTAssertGreaterThan(trace.events.filter { $0.kind == .run }.count, 4, "\(strategy) seed \(seed)")
                if total < 20 { lost = true }
            }
            if case .random = strategy { XCTAssertTrue(lost, "ten random seeds never preempted inside x += 1") }
        }
    }

    // MARK: The report

    func testTheReportListsTheLocksHeldAndWhereTheyWereAcquired() {
        let b = Box()
        var acquiredAt = 0
        let race = raceIn {
            b.initialize()
            let holder = startThread {
                acquiredAt = #line; KeAcquireSpinLock(&b.spin, &b.oldIrql)
                b.x = 1
                KeReleaseSpinLock(&b.spin, b.oldIrql)
            }
            let bare = startThread {
                nap()
                b.seen = b.x
            }
            join(holder, bare)
        }
        guard let r = assertRace(race, previous: "thread 2", writes: true, current: "thread 3", writes: false) else { return }
        let lock = withUnsafeMutablePointer(to: &b.spin) { ULONG_PTR(bitPattern: $0) }
        XCTAssertEqual(r.previous.locks, [KsRaceLock(kind: "KSPIN_LOCK", address: lock, file: #filePath, line: acquiredAt)],
                       r.description)
        XCTAssertEqual(r.current.locks, [], r.description)
        XCTAssertEqual(r.previous.irql, DISPATCH_LEVEL)
        XCTAssertEqual(r.current.irql, PASSIVE_LEVEL)
        XCTAssertTrue(r.description.contains("holding KSPIN_LOCK \(hex(lock)) (acquired at \(#filePath):\(acquiredAt))"),
                      r.description)
        XCTAssertTrue(r.description.contains("holding no lock"), r.description)
    }

    func testTheReportGivesEachSidesProcessorAndIrql() {
        let b = Box()
        let race = raceIn {
            b.initializeDpc(target: 1) { b.x = 1 }
            KeInsertQueueDpc(&b.dpc, nil, nil)
            nap()
            b.seen = b.x
            KeFlushQueuedDpcs()
        }
        guard let r = assertRace(race, previous: b.dpcName, writes: true, current: "thread 1", writes: false) else { return }
        XCTAssertEqual(r.previous.processor, 1, r.description)
        XCTAssertEqual(r.previous.irql, DISPATCH_LEVEL, r.description)
        XCTAssertEqual(r.current.irql, PASSIVE_LEVEL, r.description)
        XCTAssertTrue((0..<2).contains(r.current.processor), r.description)
        XCTAssertTrue(r.description.contains("by \(b.dpcName) on processor 1 at IRQL 2"), r.description)
        XCTAssertTrue(r.description.contains("by thread 1 on processor \(r.current.processor) at IRQL 0"), r.description)
    }

    func testTheReportCountsTheRacingPairsOfARun() {
        let b = Box()
        let one = raceIn {
            let writer = startThread { b.x = 1 }
            let reader = startThread {
                nap()
                b.seen = b.x
            }
            join(writer, reader)
        }
        let two = raceIn {
            let writer = startThread {
                b.x = 1
                b.y = 1
            }
            let reader = startThread {
                nap()
                b.seen = b.x
                b.seen = b.y
            }
            join(writer, reader)
        }
        guard let one, let two else { return XCTFail("expected races") }
        XCTAssertGreaterThan(two.racingPairs, one.racingPairs, "x and y race on different lines\n\(two.description)")
        XCTAssertGreaterThan(two.racingPairs, 1)
        XCTAssertTrue(two.description.contains("(\(two.racingPairs - 1) more racing pair(s) of instructions in this run)"),
                      two.description)
    }

    /// A loop that races 10,000 times reports its first race in full and counts racing pairs of
    /// instructions, not occurrences (its speed is `make bench-sim`'s business).
    func testARaceRepeatedTenThousandTimesIsReportedOnce() {
        let b = Box()
        let race = raceIn {
            let hs = (0..<2).map { _ in startThread { for _ in 0..<10_000 { b.x += 1 } } }
            for h in hs { join(h) }
        }
        guard let r = race else { return XCTFail("expected a race") }
        XCTAssertEqual(r.description.components(separatedBy: "data race on").count, 2, r.description)
        XCTAssertLessThanOrEqual(r.racingPairs, 16, "pairs of instructions, not occurrences: \(r.description)")
    }
}
