import XCTest
@testable import KernelSim

/// Runs `body` on a fresh machine and returns the finished machine (outcome and traces).
func simulate(seed: UInt64 = 0, processors: Int = 2, verifier: Bool = true, _ body: @escaping () -> Void) -> Machine {
    runMachine(KsMachineOptions(processorCount: processors, seed: seed, verifier: verifier), body)
}

/// The bug check a run ended with; fails the test if it ended otherwise.
func bugCheck(of machine: Machine, file: StaticString = #filePath, line: UInt = #line) -> KsBugCheck? {
    guard case .bugCheck(let b)? = machine.outcome else {
        XCTFail("expected a bug check, got \(String(describing: machine.outcome))", file: file, line: line)
        return nil
    }
    return b
}

/// Asserts that the run ended with bug check `code` and exactly `parameters`.
func assertBugCheck(_ machine: Machine, _ code: ULONG, _ parameters: [ULONG_PTR],
                    file: StaticString = #filePath, line: UInt = #line) {
    guard let b = bugCheck(of: machine, file: file, line: line) else { return }
    XCTAssertEqual(b.code, code, "bug check code", file: file, line: line)
    XCTAssertEqual(b.name, KsBugCheckName(code), file: file, line: line)
    XCTAssertEqual(b.parameters, parameters, "parameters", file: file, line: line)
}

/// Asserts a wait-IRQL violation (0xC4/0x120–0x122): P2 is documented as the "Address of the IRQL
/// value", so it must point at `irql` in one of the machine's processors.
func assertWaitIrqlBugCheck(_ machine: Machine, _ subcode: ULONG_PTR, irql: KIRQL, object: ULONG_PTR,
                            timeout: ULONG_PTR, file: StaticString = #filePath, line: UInt = #line) {
    guard let b = bugCheck(of: machine, file: file, line: line) else { return }
    XCTAssertEqual(b.code, DRIVER_VERIFIER_DETECTED_VIOLATION, file: file, line: line)
    XCTAssertEqual([b.parameters[0], b.parameters[2], b.parameters[3]], [subcode, object, timeout], file: file, line: line)
    let value = machine.processors.first { addressOf($0.irqlValue) == b.parameters[1] }?.irqlValue
    XCTAssertNotNil(value, "parameter 2 must be the address of the IRQL value", file: file, line: line)
    XCTAssertEqual(value?.pointee, irql, file: file, line: line)
}

func assertCompleted(_ machine: Machine, file: StaticString = #filePath, line: UInt = #line) {
    guard case .completed? = machine.outcome else {
        XCTFail("expected completion, got \(String(describing: machine.outcome))", file: file, line: line)
        return
    }
}

/// The deadlock report of a run; fails the test if it did not deadlock.
func deadlockReport(of machine: Machine, file: StaticString = #filePath, line: UInt = #line) -> String {
    guard case .deadlock(let report)? = machine.outcome else {
        XCTFail("expected a deadlock, got \(String(describing: machine.outcome))", file: file, line: line)
        return ""
    }
    return report
}

/// The address the kernel routines see for `&value`.
func addressOf<T>(_ pointer: UnsafeMutablePointer<T>) -> ULONG_PTR { ULONG_PTR(bitPattern: pointer) }

/// Sleeps in 1 µs steps until `condition` holds, letting other threads run.
func waitUntil(_ condition: () -> Bool) {
    var interval = LARGE_INTEGER(QuadPart: -10)
    while !condition() { KeDelayExecutionThread(KernelMode, FALSE, &interval) }
}

/// Creates a system thread running `body`.
@discardableResult
func startThread(_ body: @escaping () -> Void) -> HANDLE {
    var handle: HANDLE = nil
    PsCreateSystemThread(&handle, THREAD_ALL_ACCESS, nil, nil, nil, { _ in body() }, nil)
    return handle
}

func join(_ handles: HANDLE...) {
    for h in handles {
        XCTAssertEqual(ZwWaitForSingleObject(h, FALSE, nil), STATUS_WAIT_0)
        ZwClose(h)
    }
}

/// A notification event in stable storage, for ordering test threads. Create it on a simulated thread.
final class Gate {
    var event = KEVENT()
    init() { KeInitializeEvent(&event, NotificationEvent, FALSE) }
    func open() { KeSetEvent(&event, IO_NO_INCREMENT, FALSE) }
    func pass() { KeWaitForSingleObject(&event, Executive, KernelMode, FALSE, nil) }
}

/// The threads (as PKTHREADs) in a dispatcher object's wait list, oldest first.
func waiters(_ object: UnsafeMutableRawPointer) -> [PVOID] {
    let head = waitListHead(object)
    var result: [PVOID] = []
    var entry = head.pointee.Flink!
    while entry != head {
        result.append(UnsafeMutableRawPointer(entry).assumingMemoryBound(to: KWAIT_BLOCK.self).pointee.Thread)
        entry = entry.pointee.Flink!
    }
    return result
}

/// The routines of one mutex flavour (fast or guarded: since Windows 8 the same struct and Count
/// algorithm), so the kmtests' shared hand-off scenario can run against either.
struct MutexRoutines {
    var initialize: (PFAST_MUTEX) -> Void
    var acquire: (PFAST_MUTEX) -> Void
    var tryToAcquire: (PFAST_MUTEX) -> BOOLEAN
    var release: (PFAST_MUTEX) -> Void
    var acquireUnsafe: (PFAST_MUTEX) -> Void
    var releaseUnsafe: (PFAST_MUTEX) -> Void
}

/// What the hand-off scenario saw: the mutex's fields at each step, and each owner's note.
struct HandOff {
    var machine: Machine
    var snapshots: [String]
    var owners: [String]
}

/// The kmtest hand-off sequence (ExFastMutex.c / KeGuardedMutex.c; the worked trace of
/// reactos-sync-semantics.md §2.7.B): A owns (a try-acquire then fails); C blocks; A releases;
/// D (Unsafe routines at APC_LEVEL) and E block; C releases; D releases; E releases. `fields`
/// adds flavour-specific fields to each snapshot, `note` to what each owner records.
func handOff(_ routines: MutexRoutines, seed: UInt64, fields: @escaping (FAST_MUTEX) -> String = { _ in "" },
             note: @escaping () -> String = { "" }) -> HandOff {
    var snapshots: [String] = []
    var owners: [String] = []
    let machine = simulate(seed: seed) {
        var m = FAST_MUTEX()
        routines.initialize(&m)
        let startC = Gate(), startD = Gate(), startE = Gate(), releaseC = Gate(), releaseD = Gate()
        // Threads must be created at PASSIVE_LEVEL, so each waits for its start gate.
        func atApcLevel(_ body: () -> Void) {
            var old: KIRQL = 0
            KeRaiseIrql(APC_LEVEL, &old)
            body()
            KeLowerIrql(old)
        }
        let c = startThread {
            startC.pass()
            atApcLevel {
                routines.acquire(&m)
                owners.append("C" + note())
                releaseC.pass()
                routines.release(&m)
            }
        }
        let d = startThread {
            startD.pass()
            atApcLevel {
                routines.acquireUnsafe(&m)
                owners.append("D" + note())
                releaseD.pass()
                routines.releaseUnsafe(&m)
            }
        }
        let e = startThread {
            startE.pass()
            routines.acquire(&m)
            owners.append("E" + note())
            routines.release(&m)
        }
        let a = KeGetCurrentThread()
        func snapshot(_ label: String) {
            let names: [(PVOID, String)] = [(a, "A"), (c, "C"), (d, "D"), (e, "E"), (nil, "NULL")]
            let owner = names.first { $0.0 == m.Owner }!.1
            snapshots.append("\(label): Count=\(m.Count) Owner=\(owner) Contention=\(m.Contention)\(fields(m))")
        }
        routines.acquire(&m)
        snapshot("A acquires")
        XCTAssertEqual(routines.tryToAcquire(&m), FALSE, "owned, even by the caller")
        startC.open()
        waitUntil { m.Count == 4 }
        snapshot("C blocks")
        routines.release(&m)
        waitUntil { m.Owner == c }
        snapshot("A releases")
        startD.open()
        waitUntil { m.Count == 4 }
        snapshot("D blocks")
        startE.open()
        waitUntil { m.Count == 8 }
        snapshot("E blocks")
        releaseC.open()
        waitUntil { m.Owner == d }
        snapshot("C releases")
        releaseD.open()
        join(c, d, e)
        snapshot("E releases")
    }
    return HandOff(machine: machine, snapshots: snapshots, owners: owners)
}
