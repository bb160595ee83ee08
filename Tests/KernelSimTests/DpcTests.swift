import XCTest
@testable import KernelSim

/// A DPC and what its routine saw, in stable storage. Create it on a simulated thread.
final class RecordingDpc {
    var dpc = KDPC()
    var log: [String] = []
    /// Runs inside the routine after it is logged.
    var body: () -> Void = {}

    init() {
        KeInitializeDpc(&dpc, { [unowned self] _, context, argument1, argument2 in
            log.append("ran irql=\(KeGetCurrentIrql()) cpu=\(KeGetCurrentProcessorNumber()) "
                + "context=\(address(context)) args=\(address(argument1)),\(address(argument2))")
            body()
        }, UnsafeMutableRawPointer(bitPattern: 0xC0))
    }
}

private func pointer(_ value: UInt) -> PVOID { UnsafeMutableRawPointer(bitPattern: value) }

final class DpcTests: XCTestCase {
    /// KeDpc.c:77-89: Type, Importance, Number and DpcData are set; the system arguments are not.
    func testKeInitializeDpcSetsTheDocumentedFields() {
        var fields: [String] = []
        let m = simulate {
            var dpc = KDPC()
            dpc.Number = 0x5555
            dpc.SystemArgument1 = pointer(0x55)
            dpc.DpcData = pointer(0x5555)
            KeInitializeDpc(&dpc, { _, _, _, _ in }, pointer(0x77))
            fields = ["\(dpc.Type)", "\(dpc.Importance)", "\(dpc.Number)", "\(address(dpc.DeferredContext))",
                      "\(address(dpc.SystemArgument1))", "\(address(dpc.DpcData))", "\(dpc.DeferredRoutine != nil)"]
        }
        assertCompleted(m)
        XCTAssertEqual(fields, ["19", "1", "0", "119", "85", "0", "true"])
    }

    /// KeDpc.c:92-99: queued at PASSIVE_LEVEL on its own processor, the DPC has run on return.
    func testInsertBelowDispatchLevelRunsTheDpcBeforeReturning() {
        var log: [String] = []
        let m = simulate {
            let r = RecordingDpc()
            r.body = { log.append("in routine") }
            let inserted = KeInsertQueueDpc(&r.dpc, pointer(1), pointer(2))
            log = r.log + log + ["returned \(inserted) irql=\(KeGetCurrentIrql()) DpcData=\(address(r.dpc.DpcData))"]
        }
        assertCompleted(m)
        XCTAssertEqual(log, ["ran irql=2 cpu=0 context=192 args=1,2", "in routine", "returned 1 irql=0 DpcData=0"])
    }

    /// KeDpc.c:105-123: a second insert while queued is FALSE; the DPC runs neither at DISPATCH
    /// nor on a raise to HIGH and back, but once on lowering below DISPATCH, with the first
    /// insert's arguments.
    func testDoubleInsertIsFalseAndTheDpcRunsOnceWithTheFirstArguments() {
        var log: [String] = []
        let m = simulate {
            let r = RecordingDpc()
            let old = KeRaiseIrqlToDpcLevel()
            log.append("first \(KeInsertQueueDpc(&r.dpc, pointer(1), pointer(2)))")
            log.append("second \(KeInsertQueueDpc(&r.dpc, pointer(3), pointer(4)))")
            var dispatch: KIRQL = 0
            KeRaiseIrql(HIGH_LEVEL, &dispatch)
            KeLowerIrql(dispatch)
            log.append("at dispatch: \(r.log.count) runs")
            KeLowerIrql(APC_LEVEL)
            log += r.log
            KeLowerIrql(old)
            log.append("at passive: \(r.log.count) runs")
        }
        assertCompleted(m)
        XCTAssertEqual(log, ["first 1", "second 0", "at dispatch: 0 runs", "ran irql=2 cpu=0 context=192 args=1,2",
                             "at passive: 1 runs"])
    }

    /// KeDpc.c:129-145: removing a queued DPC is TRUE and it never runs; removing it again is FALSE.
    func testRemovedDpcNeverRuns() {
        var log: [String] = []
        let m = simulate {
            let r = RecordingDpc()
            log.append("not queued \(KeRemoveQueueDpc(&r.dpc))")
            let old = KeRaiseIrqlToDpcLevel()
            KeInsertQueueDpc(&r.dpc, nil, nil)
            log.append("queued \(KeRemoveQueueDpc(&r.dpc))")
            log.append("again \(KeRemoveQueueDpc(&r.dpc))")
            KeLowerIrql(old)
            log.append("runs \(r.log.count)")
        }
        assertCompleted(m)
        XCTAssertEqual(log, ["not queued 0", "queued 1", "again 0", "runs 0"])
    }

    /// Any lowering path runs pending DPCs: here KeReleaseSpinLock back to PASSIVE_LEVEL.
    func testReleasingASpinLockRunsTheDpcsQueuedUnderIt() {
        var log: [String] = []
        let m = simulate {
            let r = RecordingDpc()
            let lock = PKSPIN_LOCK.allocate(capacity: 1)
            defer { lock.deallocate() }
            KeInitializeSpinLock(lock)
            var old: KIRQL = 0
            KeAcquireSpinLock(lock, &old)
            KeInsertQueueDpc(&r.dpc, nil, nil)
            log.append("held: \(r.log.count)")
            r.body = { log.append("lock word in DPC: \(lock.pointee)") }
            KeReleaseSpinLock(lock, old)
            log += r.log
        }
        assertCompleted(m)
        XCTAssertEqual(log, ["held: 0", "lock word in DPC: 0", "ran irql=2 cpu=0 context=192 args=0,0"])
    }

    func testHighImportanceDpcsJumpTheQueue() {
        var order: [String] = []
        let m = simulate {
            var a = KDPC(), b = KDPC(), c = KDPC()
            for (dpc, name) in [(withUnsafeMutablePointer(to: &a) { $0 }, "a"), (withUnsafeMutablePointer(to: &b) { $0 }, "b"),
                                (withUnsafeMutablePointer(to: &c) { $0 }, "c")] {
                KeInitializeDpc(dpc, { _, _, _, _ in order.append(name) }, nil)
            }
            KeSetImportanceDpc(&c, HighImportance)
            XCTAssertEqual(c.Importance, 2)
            let old = KeRaiseIrqlToDpcLevel()
            KeInsertQueueDpc(&a, nil, nil)
            KeInsertQueueDpc(&b, nil, nil)
            KeInsertQueueDpc(&c, nil, nil)
            KeLowerIrql(old)
        }
        assertCompleted(m)
        XCTAssertEqual(order, ["c", "a", "b"])
    }

    /// A DPC targeted at a processor no thread runs on runs there, in that processor's idle
    /// context, and KeFlushQueuedDpcs returns only after it ran.
    func testTargetedDpcRunsOnItsProcessorAndFlushWaitsForIt() {
        for seed in 0..<10 as Range<UInt64> {
            var log: [String] = []
            var ranOn: PKTHREAD?
            var me: PKTHREAD?
            let m = simulate(seed: seed, processors: 3) {
                me = KeGetCurrentThread()
                let r = RecordingDpc()
                r.body = { ranOn = KeGetCurrentThread() }
                KeSetTargetProcessorDpc(&r.dpc, 2)
                XCTAssertEqual(r.dpc.Number, 66)
                log.append("insert \(KeInsertQueueDpc(&r.dpc, pointer(5), nil)) on cpu \(KeGetCurrentProcessorNumber())")
                KeFlushQueuedDpcs()
                log += r.log
            }
            assertCompleted(m)
            XCTAssertEqual(log, ["insert 1 on cpu 0", "ran irql=2 cpu=2 context=192 args=5,0"], "seed \(seed)")
            XCTAssertNotEqual(ranOn, me)
            XCTAssertEqual(ranOn, m.processors[2].dpc.idle.map { PKTHREAD($0.kthread) }, "seed \(seed)")
        }
    }

    /// A DPC targeted at a processor running a PASSIVE_LEVEL thread interrupts that thread.
    func testTargetedDpcInterruptsThePassiveThreadOnItsProcessor() {
        for seed in 0..<10 as Range<UInt64> {
            var ranIn: PKTHREAD?
            var spinner: HANDLE = nil
            var log: [String] = []
            let m = simulate(seed: seed) {
                var spinnerCpu: ULONG?, stop = false
                spinner = startThread {
                    spinnerCpu = KeGetCurrentProcessorNumber()
                    while !stop { _ = KeGetCurrentIrql() }
                }
                waitUntil { spinnerCpu != nil }
                let r = RecordingDpc()
                r.body = { ranIn = KeGetCurrentThread() }
                KeSetTargetProcessorDpc(&r.dpc, CCHAR(spinnerCpu!))
                KeInsertQueueDpc(&r.dpc, nil, nil)
                log.append("queued from the other cpu: \(KeGetCurrentProcessorNumber() != spinnerCpu!)")
                KeFlushQueuedDpcs()
                log += r.log.map { $0.replacingOccurrences(of: "cpu=\(spinnerCpu!)", with: "cpu=spinner's") }
                stop = true
                join(spinner)
            }
            assertCompleted(m)
            XCTAssertEqual(log, ["queued from the other cpu: true", "ran irql=2 cpu=spinner's context=192 args=0,0"],
                           "seed \(seed)")
            XCTAssertEqual(ranIn, spinner, "seed \(seed)")
        }
    }

    /// The DPC waits inside its routine. Without Driver Verifier the dispatcher catches the switch:
    /// 0xB8 with the interrupted thread and the thread that would have run (here the idle thread).
    func testWaitingInADpcIsAttemptedSwitchFromDpc() {
        var me: PKTHREAD?
        let m = simulate(verifier: false) {
            me = KeGetCurrentThread()
            let r = RecordingDpc()
            var event = KEVENT()
            KeInitializeEvent(&event, NotificationEvent, FALSE)
            r.body = { KeWaitForSingleObject(&event, Executive, KernelMode, FALSE, nil) }
            KeInsertQueueDpc(&r.dpc, nil, nil)
        }
        let idle = m.processors[0].dpc.idle.map { address($0.kthread) }
        assertBugCheck(m, ATTEMPTED_SWITCH_FROM_DPC, [address(me), idle ?? 1, 0, 0])
        XCTAssertTrue(bugCheck(of: m)?.report.contains("FAULTING_SOURCE_LINE") ?? false)
    }

    /// Driver Verifier checks the IRQL at the call, before the wait gets to the dispatcher.
    func testWaitingInADpcUnderVerifierIsTheWaitIrqlViolation() {
        var eventAddress: ULONG_PTR = 0
        let m = simulate(verifier: true) {
            let r = RecordingDpc()
            var event = KEVENT()
            KeInitializeEvent(&event, NotificationEvent, FALSE)
            eventAddress = addressOf(&event)
            r.body = { KeWaitForSingleObject(&event, Executive, KernelMode, FALSE, nil) }
            KeInsertQueueDpc(&r.dpc, nil, nil)
        }
        assertWaitIrqlBugCheck(m, 0x121, irql: 2, object: eventAddress, timeout: 0)
    }

    func testDelayingInADpcIsAttemptedSwitchFromDpc() {
        let m = simulate(verifier: true) {
            let r = RecordingDpc()
            r.body = {
                var interval = LARGE_INTEGER(QuadPart: -10)
                KeDelayExecutionThread(KernelMode, FALSE, &interval)
            }
            KeInsertQueueDpc(&r.dpc, nil, nil)
        }
        XCTAssertEqual(bugCheck(of: m)?.code, ATTEMPTED_SWITCH_FROM_DPC)
    }

    /// A zero-timeout wait is a poll, allowed at DISPATCH_LEVEL, and does not switch.
    func testPollingAnEventInADpcIsAllowed() {
        var status: NTSTATUS = -1
        let m = simulate(verifier: true) {
            let r = RecordingDpc()
            var event = KEVENT()
            KeInitializeEvent(&event, NotificationEvent, FALSE)
            r.body = {
                var zero = LARGE_INTEGER(QuadPart: 0)
                status = KeWaitForSingleObject(&event, Executive, KernelMode, FALSE, &zero)
            }
            KeInsertQueueDpc(&r.dpc, nil, nil)
        }
        assertCompleted(m)
        XCTAssertEqual(status, STATUS_TIMEOUT)
    }

    /// A fast mutex in a DPC: Verifier stops the acquire (0xC4/0x33); a free build lets an
    /// uncontended acquire through but a contended one must wait, which is 0xB8.
    func testFastMutexInADpc() {
        func run(verifier: Bool) -> Machine {
            simulate(verifier: verifier) {
                var mutex = FAST_MUTEX()
                ExInitializeFastMutex(&mutex)
                ExAcquireFastMutex(&mutex)
                let r = RecordingDpc()
                r.body = { ExAcquireFastMutex(&mutex) }
                var old: KIRQL = 0
                KeRaiseIrql(DISPATCH_LEVEL, &old)
                KeInsertQueueDpc(&r.dpc, nil, nil)
                KeLowerIrql(old)
            }
        }
        XCTAssertEqual(bugCheck(of: run(verifier: true))?.parameters.first, 0x33)
        XCTAssertEqual(bugCheck(of: run(verifier: false))?.code, ATTEMPTED_SWITCH_FROM_DPC)
    }

    /// Lowering below DISPATCH_LEVEL inside a DPC: Verifier 0xC4/0x31 with P4 = 1; a free build
    /// stops when the routine returns, with 0xC8 (UniqueValue 2, P3 = the DeferredContext).
    func testDpcThatLowersTheIrql() {
        func run(verifier: Bool) -> Machine {
            simulate(verifier: verifier) {
                let r = RecordingDpc()
                r.body = { KeLowerIrql(PASSIVE_LEVEL) }
                KeInsertQueueDpc(&r.dpc, nil, nil)
            }
        }
        assertBugCheck(run(verifier: true), DRIVER_VERIFIER_DETECTED_VIOLATION, [0x31, 2, 0, 1])
        assertBugCheck(run(verifier: false), IRQL_UNEXPECTED_VALUE, [0x0202, 0, 0xC0, 0])
    }

    /// A DPC that spins for longer than its allotment: 0x133 with P1 = 0, P2 = the time it ran,
    /// P3 = the allotment (100 ns units; one scheduling step is 10).
    func testLongRunningDpcTripsTheSingleDpcWatchdog() {
        let m = simulate {
            let r = RecordingDpc()
            r.body = { while true { _ = KeGetCurrentIrql() } }
            KeInsertQueueDpc(&r.dpc, nil, nil)
        }
        assertBugCheck(m, DPC_WATCHDOG_VIOLATION, [0, ULONG_PTR(dpcTimeLimit + stepTime), ULONG_PTR(dpcTimeLimit), 0])
    }

    func testTargetedDpcsAreDeterministicUnderASeed() {
        func run(_ seed: UInt64) -> (log: [String], trace: KsTrace) {
            var log: [String] = []
            let m = simulate(seed: seed, processors: 2) {
                let dpcs = (0..<3).map { _ in RecordingDpc() }
                let worker = startThread {
                    for i in 0..<3 { log.append("worker \(i) cpu=\(KeGetCurrentProcessorNumber())") }
                }
                for (i, r) in dpcs.enumerated() {
                    r.body = { log.append("dpc \(i)") }
                    KeSetTargetProcessorDpc(&r.dpc, CCHAR(i % 2))
                    KeInsertQueueDpc(&r.dpc, nil, nil)
                }
                KeFlushQueuedDpcs()
                join(worker)
            }
            assertCompleted(m)
            return (log, m.events.trace)
        }
        for seed in [1, 7, 99] as [UInt64] {
            let a = run(seed), b = run(seed)
            XCTAssertEqual(a.log, b.log, "seed \(seed)")
            XCTAssertEqual(a.trace.interleaving(last: .max), b.trace.interleaving(last: .max), "seed \(seed)")
            XCTAssertEqual(a.log.filter { $0.hasPrefix("dpc") }.count, 3)
        }
    }

    /// Under Verifier, a DPC on an idle processor takes and releases a spin lock like any DPC:
    /// its idle context is the lock's owner, not "nobody" (no 0xC4/0x1007).
    func testADpcOnAnIdleProcessorReleasesItsSpinLock() {
        final class Shared { var dpc = KDPC(); var lock: KSPIN_LOCK = 0; var count = 0 }
        let shared = Shared()
        let machine = simulate {
            KeInitializeSpinLock(&shared.lock)
            KeInitializeDpc(&shared.dpc, { _, _, _, _ in
                KeAcquireSpinLockAtDpcLevel(&shared.lock)
                shared.count += 1
                KeReleaseSpinLockFromDpcLevel(&shared.lock)
            }, nil)
            KeSetTargetProcessorDpc(&shared.dpc, 1)
            KeInsertQueueDpc(&shared.dpc, nil, nil)
            KeFlushQueuedDpcs()
        }
        assertCompleted(machine)
        XCTAssertEqual(shared.count, 1)
    }
}
