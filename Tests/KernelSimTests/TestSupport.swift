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
