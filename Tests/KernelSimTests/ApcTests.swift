import XCTest
@testable import KernelSim

/// An APC in stable storage whose routines log what they saw. Create it on a simulated thread.
final class RecordingApc {
    var apc = KAPC()
    var log: [String] = []
    /// Run inside the kernel routine and the normal routine, after logging.
    var kernelBody: () -> Void = {}
    var normalBody: () -> Void = {}

    /// A special kernel APC (no normal routine) or a normal one, for `thread`.
    init(_ name: String, for thread: PKTHREAD, normal: Bool) {
        let normalRoutine: PKNORMAL_ROUTINE? = normal ? { [unowned self] context, argument1, _ in
            log.append("\(name) normal irql=\(KeGetCurrentIrql()) context=\(address(context)) arg1=\(address(argument1))")
            normalBody()
        } : nil
        KeInitializeApc(&apc, thread, OriginalApcEnvironment, { [unowned self] _, _, context, _, _ in
            log.append("\(name) kernel irql=\(KeGetCurrentIrql())")
            context.pointee = UnsafeMutableRawPointer(bitPattern: 0xBEEF)
            kernelBody()
        }, nil, normalRoutine, KernelMode, UnsafeMutableRawPointer(bitPattern: 0xCAFE))
    }

    @discardableResult
    func insert() -> BOOLEAN { KeInsertQueueApc(&apc, UnsafeMutableRawPointer(bitPattern: 0xA1), nil, IO_NO_INCREMENT) }
}

final class ApcTests: XCTestCase {
    func testKeInitializeApcFields() {
        var fields: [String] = []
        let m = simulate {
            let me = KeGetCurrentThread()
            let special = RecordingApc("s", for: me, normal: false)
            let normal = RecordingApc("n", for: me, normal: true)
            for a in [special.apc, normal.apc] {
                fields.append("type=\(a.Type) thread=\(a.Thread == me) mode=\(a.ApcMode.rawValue) "
                    + "normal=\(a.NormalRoutine != nil) context=\(address(a.NormalContext)) inserted=\(a.Inserted)")
            }
        }
        assertCompleted(m)
        XCTAssertEqual(fields, ["type=18 thread=true mode=0 normal=false context=0 inserted=0",
                                "type=18 thread=true mode=0 normal=true context=51966 inserted=0"])
    }

    /// Queued to the caller at PASSIVE_LEVEL, both kinds run before KeInsertQueueApc returns: the
    /// kernel routine at APC_LEVEL, then the normal routine at PASSIVE_LEVEL with what the kernel
    /// routine handed it.
    func testApcsToTheCallerRunAtOnce() {
        var log: [String] = []
        let m = simulate {
            let me = KeGetCurrentThread()
            let special = RecordingApc("s", for: me, normal: false)
            let normal = RecordingApc("n", for: me, normal: true)
            log.append("insert s \(special.insert())")
            log.append("insert n \(normal.insert())")
            log = special.log + normal.log + log + ["inserted flag \(normal.apc.Inserted)"]
        }
        assertCompleted(m)
        XCTAssertEqual(log, ["s kernel irql=1", "n kernel irql=1", "n normal irql=0 context=48879 arg1=161",
                             "insert s 1", "insert n 1", "inserted flag 0"])
    }

    /// At APC_LEVEL nothing is delivered; a second insert while queued is FALSE; lowering delivers
    /// special APCs first, then normal ones, each kind in queue order.
    func testRaisedIrqlDefersApcsAndLoweringDeliversSpecialOnesFirst() {
        var order: [String] = []
        let m = simulate {
            let me = KeGetCurrentThread()
            let apcs = [RecordingApc("n1", for: me, normal: true), RecordingApc("s1", for: me, normal: false),
                        RecordingApc("n2", for: me, normal: true), RecordingApc("s2", for: me, normal: false)]
            var shared: [String] = []
            for a in apcs { a.kernelBody = { shared.append(a.log.last!) }; a.normalBody = { shared.append(a.log.last!) } }
            var old: KIRQL = 0
            KeRaiseIrql(APC_LEVEL, &old)
            for a in apcs { a.insert() }
            shared.append("again \(apcs[0].insert()), delivered so far \(shared.count)")
            KeLowerIrql(old)
            order = shared
        }
        assertCompleted(m)
        XCTAssertEqual(order, ["again 0, delivered so far 0", "s1 kernel irql=1", "s2 kernel irql=1", "n1 kernel irql=1",
                               "n1 normal irql=0 context=48879 arg1=161", "n2 kernel irql=1",
                               "n2 normal irql=0 context=48879 arg1=161"])
    }

    /// A critical region defers normal kernel APCs but not special ones; leaving the outermost
    /// region delivers them before KeLeaveCriticalRegion returns.
    func testCriticalRegionDefersNormalApcsUntilLeft() {
        var log: [String] = []
        let m = simulate {
            let me = KeGetCurrentThread()
            let special = RecordingApc("s", for: me, normal: false)
            let normal = RecordingApc("n", for: me, normal: true)
            var shared: [String] = []
            special.kernelBody = { shared.append("s ran") }
            normal.normalBody = { shared.append("n ran") }
            KeEnterCriticalRegion()
            KeEnterCriticalRegion()
            normal.insert()
            special.insert()
            shared.append("in region, apcs disabled=\(KeAreApcsDisabled())")
            KeLeaveCriticalRegion()
            shared.append("left one of two")
            KeLeaveCriticalRegion()
            shared.append("left both")
            log = shared
        }
        assertCompleted(m)
        XCTAssertEqual(log, ["s ran", "in region, apcs disabled=1", "left one of two", "n ran", "left both"])
    }

    /// A guarded region (SpecialApcDisable, written directly as kmtest KeApc.c:138-145 does)
    /// defers special kernel APCs too; they run at the thread's next delivery point once it is 0.
    func testGuardedRegionDefersSpecialApcs() {
        var log: [String] = []
        let m = simulate {
            let me = KeGetCurrentThread()
            let thread = me.assumingMemoryBound(to: KTHREAD.self)
            let special = RecordingApc("s", for: me, normal: false)
            thread.pointee.SpecialApcDisable = -1
            special.insert()
            log.append("guarded: ran \(special.log.count), all disabled=\(KeAreAllApcsDisabled())")
            thread.pointee.SpecialApcDisable = 0
            _ = KeGetCurrentIrql()
            log += special.log
        }
        assertCompleted(m)
        XCTAssertEqual(log, ["guarded: ran 0, all disabled=1", "s kernel irql=1"])
    }

    /// Kernel APCs reach a thread blocked in a wait: the APC runs in that thread, and the wait
    /// goes on until the event is set.
    func testApcInterruptsAWaitAndTheWaitResumes() {
        for seed in 0..<10 as Range<UInt64> {
            var log: [String] = []
            let m = simulate(seed: seed) {
                var event = KEVENT()
                KeInitializeEvent(&event, NotificationEvent, FALSE)
                let waiter = startThread {
                    let status = KeWaitForSingleObject(&event, Executive, KernelMode, FALSE, nil)
                    log.append("waiter woke with \(status)")
                }
                waitUntil { waiters(&event).count == 1 }
                let special = RecordingApc("s", for: PKTHREAD(waiter!), normal: false)
                var ranIn: PKTHREAD?
                special.kernelBody = { ranIn = KeGetCurrentThread() }
                special.insert()
                waitUntil { ranIn != nil && waiters(&event).count == 1 }
                log += special.log + ["ran in waiter \(ranIn == waiter), still waiting"]
                KeSetEvent(&event, IO_NO_INCREMENT, FALSE)
                join(waiter)
            }
            assertCompleted(m)
            XCTAssertEqual(log, ["s kernel irql=1", "ran in waiter true, still waiting", "waiter woke with 0"], "seed \(seed)")
        }
    }

    /// PsCreateSystemThread's thread starts in a critical region, so a normal APC waits until the
    /// thread leaves it; a delay is not cut short by the APC.
    func testNewSystemThreadGetsNormalApcsOnlyOutsideItsCriticalRegion() {
        for seed in 0..<10 as Range<UInt64> {
            var log: [String] = []
            let m = simulate(seed: seed) {
                var queued = false
                var normal: RecordingApc?
                let worker = startThread {
                    waitUntil { queued }
                    log.append("worker: disabled=\(KeAreApcsDisabled()) ran=\(normal!.log.count)")
                    KeLeaveCriticalRegion()
                    log.append("worker left: ran=\(normal!.log.count)")
                    KeEnterCriticalRegion()
                }
                normal = RecordingApc("n", for: PKTHREAD(worker!), normal: true)
                normal!.insert()
                queued = true
                join(worker)
                log += normal!.log
            }
            assertCompleted(m)
            XCTAssertEqual(log, ["worker: disabled=1 ran=0", "worker left: ran=2", "n kernel irql=1",
                                 "n normal irql=0 context=48879 arg1=161"], "seed \(seed)")
        }
    }

    func testKernelRoutineReturningAtAnotherIrqlIs0xC8() {
        var apc: ULONG_PTR = 0
        let m = simulate {
            let special = RecordingApc("s", for: KeGetCurrentThread(), normal: false)
            apc = addressOf(&special.apc)
            special.kernelBody = { _ = KeRaiseIrqlToDpcLevel() }
            special.insert()
        }
        assertBugCheck(m, IRQL_UNEXPECTED_VALUE, [(2 << 16) | (1 << 8) | 0, 0, apc, 0])
    }

    func testNormalRoutineReturningAtAnotherIrqlIs0xC8() {
        var apc: ULONG_PTR = 0
        let m = simulate {
            let normal = RecordingApc("n", for: KeGetCurrentThread(), normal: true)
            apc = addressOf(&normal.apc)
            normal.normalBody = {
                var old: KIRQL = 0
                KeRaiseIrql(APC_LEVEL, &old)
            }
            normal.insert()
        }
        assertBugCheck(m, IRQL_UNEXPECTED_VALUE, [(1 << 16) | (0 << 8) | 1, 0, apc, 0])
    }

    /// A kernel APC still queued when its thread ends is 0x20 with P1 = the APC.
    func testThreadEndingWithAKernelApcQueuedIs0x20() {
        var apc: ULONG_PTR = 0
        let m = simulate {
            var queued = false
            let worker = startThread {
                KeEnterCriticalRegion()
                waitUntil { queued }
            }
            let normal = RecordingApc("n", for: PKTHREAD(worker!), normal: true)
            apc = addressOf(&normal.apc)
            normal.insert()
            queued = true
            join(worker)
        }
        assertBugCheck(m, KERNEL_APC_PENDING_DURING_EXIT, [apc, 0xFFFF, 0, 0])
    }

    func testApcDeliveryIsDeterministicUnderASeed() {
        func run(_ seed: UInt64) -> (log: [String], trace: KsTrace) {
            var log: [String] = []
            let m = simulate(seed: seed) {
                var stop = false
                let worker = startThread {
                    KeLeaveCriticalRegion()
                    while !stop { log.append("work"); _ = KeGetCurrentIrql() }
                    KeEnterCriticalRegion()
                }
                let apcs = (0..<3).map { RecordingApc("a\($0)", for: PKTHREAD(worker!), normal: $0 != 1) }
                for a in apcs {
                    a.kernelBody = { log.append(a.log.last!) }
                    a.insert()
                    _ = KeGetCurrentIrql()
                }
                stop = true
                join(worker)
            }
            assertCompleted(m)
            return (log, m.events.trace)
        }
        for seed in [3, 8, 21] as [UInt64] {
            let a = run(seed), b = run(seed)
            XCTAssertEqual(a.log, b.log, "seed \(seed)")
            XCTAssertEqual(a.trace.interleaving(last: .max), b.trace.interleaving(last: .max), "seed \(seed)")
            XCTAssertEqual(a.log.filter { $0.hasPrefix("a") }.count, 3, "seed \(seed)")
        }
    }
}
