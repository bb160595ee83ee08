import XCTest
@testable import KernelSim

/// A connected interrupt whose ISR logs what it saw and then runs `body`. Create it on a
/// simulated thread.
final class Device {
    var interrupt: PKINTERRUPT?
    var log: [String] = []
    var body: () -> Void = {}
    var claims: BOOLEAN = TRUE

    init(vector: ULONG = 0x51, irql: KIRQL = 5, synchronizeIrql: KIRQL = 5, mask: KAFFINITY = 0b11) {
        let status = IoConnectInterrupt(&interrupt, { [unowned self] _, context in
            log.append("isr irql=\(KeGetCurrentIrql()) cpu=\(KeGetCurrentProcessorNumber()) context=\(address(context))")
            body()
            return claims
        }, UnsafeMutableRawPointer(bitPattern: 0xD0), nil, vector, irql, synchronizeIrql, LevelSensitive, FALSE, mask, FALSE)
        XCTAssertEqual(status, STATUS_SUCCESS)
    }
}

final class InterruptTests: XCTestCase {
    func testIoConnectInterruptFillsTheObjectAndValidatesItsParameters() {
        var statuses: [NTSTATUS] = []
        var fields: [String] = []
        let m = simulate {
            var lock: KSPIN_LOCK = 0
            var object: PKINTERRUPT?
            let isr: PKSERVICE_ROUTINE = { _, _ in TRUE }
            let lockAddress = withUnsafeMutablePointer(to: &lock) { $0 }
            statuses.append(IoConnectInterrupt(&object, isr, nil, lockAddress, 7, 6, 8, Latched, TRUE, 0b10, FALSE))
            let i = object!.pointee
            fields = ["\(i.Type)", "\(i.Vector)", "\(i.Irql)", "\(i.SynchronizeIrql)", "\(i.Connected)",
                      "\(i.ActualLock == lockAddress)", "\(i.Affinity)", "\(i.Mode == Latched)"]
            var other: PKINTERRUPT?
            statuses.append(IoConnectInterrupt(&other, isr, nil, nil, 8, 6, 5, LevelSensitive, FALSE, 1, FALSE))
            statuses.append(IoConnectInterrupt(&other, isr, nil, nil, 8, DISPATCH_LEVEL, 5, LevelSensitive, FALSE, 1, FALSE))
            statuses.append(IoConnectInterrupt(&other, isr, nil, nil, 8, 6, 6, LevelSensitive, FALSE, 0b100, FALSE))
            statuses.append(IoConnectInterrupt(&other, isr, nil, nil, 7, 6, 8, Latched, FALSE, 1, FALSE))
            statuses.append(IoConnectInterrupt(&other, isr, nil, nil, 7, 6, 8, Latched, TRUE, 1, FALSE))
            XCTAssertEqual(other!.pointee.ActualLock, withUnsafeMutablePointer(to: &other!.pointee.SpinLock) { $0 })
            IoDisconnectInterrupt(object!)
            fields.append("\(object!.pointee.Connected)")
        }
        assertCompleted(m)
        XCTAssertEqual(statuses, [STATUS_SUCCESS, STATUS_INVALID_PARAMETER, STATUS_INVALID_PARAMETER,
                                  STATUS_INVALID_PARAMETER, STATUS_INVALID_PARAMETER, STATUS_SUCCESS])
        XCTAssertEqual(fields, ["22", "7", "6", "8", "1", "true", "2", "true", "0"])
    }

    /// Asserted from a PASSIVE_LEVEL thread whose processor may take it, the ISR runs at once,
    /// at DIRQL, in that thread's context.
    func testIsrRunsAtOnceAtDirqlOnTheAssertingProcessor() {
        var log: [String] = []
        let m = simulate(processors: 1) {
            let device = Device()
            KsAssertInterrupt(device.interrupt!)
            log = device.log + ["returned irql=\(KeGetCurrentIrql())"]
        }
        assertCompleted(m)
        XCTAssertEqual(log, ["isr irql=5 cpu=0 context=208", "returned irql=0"])
    }

    /// Asserted for another processor, the ISR preempts the PASSIVE_LEVEL thread running there.
    func testIsrPreemptsThePassiveThreadOnItsProcessor() {
        for seed in 0..<10 as Range<UInt64> {
            var log: [String] = []
            var interrupted: PKTHREAD?
            var spinner: HANDLE = nil
            let m = simulate(seed: seed) {
                let device = Device()
                var spinnerCpu: ULONG?, stop = false
                spinner = startThread {
                    spinnerCpu = KeGetCurrentProcessorNumber()
                    while !stop { _ = KeGetCurrentIrql() }
                }
                waitUntil { spinnerCpu != nil }
                device.body = { interrupted = KeGetCurrentThread() }
                KsAssertInterrupt(device.interrupt!, processor: spinnerCpu!)
                log.append("pending after assert: \(device.log.count)")
                waitUntil { !device.log.isEmpty }
                log += device.log.map { $0.replacingOccurrences(of: "cpu=\(spinnerCpu!)", with: "cpu=spinner's") }
                stop = true
                join(spinner)
            }
            assertCompleted(m)
            XCTAssertEqual(log, ["pending after assert: 0", "isr irql=5 cpu=spinner's context=208"], "seed \(seed)")
            XCTAssertEqual(interrupted, spinner, "seed \(seed)")
        }
    }

    /// KeSynchronizeExecution holds the interrupt spin lock at SynchronizeIrql: an ISR taken on
    /// another processor meanwhile spins on the lock until the routine is done; one asserted for
    /// the holder's own processor is masked until the IRQL drops.
    func testKeSynchronizeExecutionExcludesTheIsr() {
        for seed in 0..<20 as Range<UInt64> {
            for sameProcessor in [false, true] {
                var log: [String] = []
                let m = simulate(seed: seed) {
                    let device = Device(irql: 5, synchronizeIrql: 6)
                    var holderCpu: ULONG?
                    device.body = { log.append("isr") }
                    let holder = startThread {
                        KeSynchronizeExecution(device.interrupt!, { _ in
                            log.append("sync irql=\(KeGetCurrentIrql())")
                            holderCpu = KeGetCurrentProcessorNumber()
                            for _ in 0..<50 { _ = KeGetCurrentIrql() }
                            log.append("sync done")
                            return TRUE
                        }, nil)
                    }
                    waitUntil { holderCpu != nil }
                    // Not the same processor: the ISR runs here at once and spins on the lock.
                    KsAssertInterrupt(device.interrupt!, processor: sameProcessor ? holderCpu! : 1 - holderCpu!)
                    join(holder)
                    waitUntil { log.last == "isr" }
                }
                assertCompleted(m)
                XCTAssertEqual(log, ["sync irql=6", "sync done", "isr"], "seed \(seed) same=\(sameProcessor)")
            }
        }
    }

    /// The classic pipeline: the ISR queues a DPC, the DPC (same processor, DISPATCH_LEVEL) sets
    /// an event, and the thread waiting on it wakes.
    func testIsrQueuesADpcThatWakesAWaitingThread() {
        func run(_ seed: UInt64) -> (log: [String], trace: KsTrace) {
            var log: [String] = []
            let m = simulate(seed: seed) {
                let device = Device()
                let dpc = RecordingDpc()
                var event = KEVENT()
                KeInitializeEvent(&event, SynchronizationEvent, FALSE)
                var isrCpu: ULONG = 99
                device.body = {
                    isrCpu = KeGetCurrentProcessorNumber()
                    KeInsertQueueDpc(&dpc.dpc, nil, nil)
                    log.append("isr queued, dpc runs=\(dpc.log.count)")
                }
                dpc.body = {
                    log.append("dpc on isr cpu=\(KeGetCurrentProcessorNumber() == isrCpu)")
                    KeSetEvent(&event, IO_NO_INCREMENT, FALSE)
                }
                let waiter = startThread {
                    KeWaitForSingleObject(&event, Executive, KernelMode, FALSE, nil)
                    log.append("woken")
                }
                waitUntil { waiters(&event).count == 1 }
                KsAssertInterrupt(device.interrupt!)
                join(waiter)
                log += device.log.map { String($0.prefix(11)) }
            }
            assertCompleted(m)
            return (log, m.events.trace)
        }
        for seed in 0..<10 as Range<UInt64> {
            let a = run(seed), b = run(seed)
            XCTAssertEqual(a.log, ["isr queued, dpc runs=0", "dpc on isr cpu=true", "woken", "isr irql=5 "], "seed \(seed)")
            XCTAssertEqual(a.trace.interleaving(last: .max), b.trace.interleaving(last: .max), "seed \(seed)")
        }
    }

    /// KeAcquireInterruptSpinLock raises to SynchronizeIrql; the ISR asserted meanwhile on the
    /// same processor runs when KeReleaseInterruptSpinLock lowers the IRQL.
    func testInterruptSpinLockMasksTheIsrUntilReleased() {
        var log: [String] = []
        let m = simulate(processors: 1) {
            let device = Device(irql: 5, synchronizeIrql: 5)
            let old = KeAcquireInterruptSpinLock(device.interrupt!)
            log.append("held irql=\(KeGetCurrentIrql()) old=\(old) lock=\(device.interrupt!.pointee.SpinLock)")
            KsAssertInterrupt(device.interrupt!)
            log.append("isr runs=\(device.log.count)")
            KeReleaseInterruptSpinLock(device.interrupt!, old)
            log += device.log + ["released irql=\(KeGetCurrentIrql())"]
        }
        assertCompleted(m)
        XCTAssertEqual(log, ["held irql=5 old=0 lock=1", "isr runs=0", "isr irql=5 cpu=0 context=208", "released irql=0"])
    }

    /// A level-sensitive chain stops at the first ISR that claims the interrupt; a latched one
    /// calls every ISR on the vector.
    func testSharedVectorChains() {
        func run(_ mode: KINTERRUPT_MODE) -> [String] {
            var log: [String] = []
            let m = simulate(processors: 1) {
                var objects: [PKINTERRUPT?] = [nil, nil]
                for n in 0..<2 {
                    XCTAssertEqual(IoConnectInterrupt(&objects[n], { _, _ in log.append("isr \(n)"); return TRUE }, nil, nil,
                                                      9, 5, 5, mode, TRUE, 1, FALSE), STATUS_SUCCESS)
                }
                KsAssertInterrupt(objects[1]!)
            }
            assertCompleted(m)
            return log
        }
        XCTAssertEqual(run(LevelSensitive), ["isr 0"])
        XCTAssertEqual(run(Latched), ["isr 0", "isr 1"])
    }

    /// An ISR that returns at another IRQL: Driver Verifier's 0xC4/0x111 (IRQL before, after);
    /// the retail kernel's 0xC8 with UniqueValue 3.
    func testIsrReturningAtAnotherIrqlIs0xC4_0x111OrRetail0xC8() {
        func run(verifier: Bool) -> (Machine, ULONG_PTR) {
            var interrupt: ULONG_PTR = 0
            let m = simulate(processors: 1, verifier: verifier) {
                let device = Device(irql: 5)
                interrupt = ULONG_PTR(bitPattern: device.interrupt!)
                device.body = {
                    var old: KIRQL = 0
                    KeRaiseIrql(HIGH_LEVEL, &old)
                }
                KsAssertInterrupt(device.interrupt!)
            }
            return (m, interrupt)
        }
        assertBugCheck(run(verifier: true).0, DRIVER_VERIFIER_DETECTED_VIOLATION, [0x111, 0, 5, 15])
        let (retail, interrupt) = run(verifier: false)
        assertBugCheck(retail, IRQL_UNEXPECTED_VALUE, [(15 << 16) | (5 << 8) | 3, 0, interrupt, 0])
    }

    /// Driver Verifier's IRQL checks apply inside an ISR: KeSetEvent above DISPATCH_LEVEL.
    func testSettingAnEventInAnIsrIsAVerifierViolation() {
        let m = simulate(processors: 1) {
            let device = Device(irql: 7, synchronizeIrql: 7)
            var event = KEVENT()
            KeInitializeEvent(&event, NotificationEvent, FALSE)
            device.body = { KeSetEvent(&event, IO_NO_INCREMENT, FALSE) }
            KsAssertInterrupt(device.interrupt!)
        }
        XCTAssertEqual(bugCheck(of: m)?.parameters.prefix(2), [0x80, 7])
    }

    /// An idle processor services an interrupt under Verifier: its idle context takes the
    /// interrupt spin lock before it has made any kernel call of its own.
    func testAnIdleProcessorServicesAnInterruptUnderVerifier() {
        final class Device { var interrupt: PKINTERRUPT? = nil; var serviced = 0 }
        let device = Device()
        let machine = simulate {
            _ = IoConnectInterrupt(&device.interrupt, { _, _ in device.serviced += 1; return TRUE },
                                   nil, nil, 0x71, 7, 7, Latched, FALSE, 0b11, FALSE)
            join(startThread { KsAssertInterrupt(device.interrupt!, processor: 0) })
        }
        assertCompleted(machine)
        XCTAssertEqual(device.serviced, 1)
    }
}
