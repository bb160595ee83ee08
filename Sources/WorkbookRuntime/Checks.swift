import Glibc

/// A failed `expect` inside a block, with the chapter line that made it.
struct CheckFailure {
    var file: String
    var line: Int
    var message: String
}

/// Failures recorded by the block being run. Checks may run on any simulated thread, so the list
/// is guarded by a plain mutex (the simulator runs one thread at a time, but the OS does not know).
nonisolated(unsafe) private var failures: [CheckFailure] = []
nonisolated(unsafe) private var failuresLock = pthread_mutex_t()
nonisolated(unsafe) private var failuresLockReady = false

private func withFailures<T>(_ body: (inout [CheckFailure]) -> T) -> T {
    if !failuresLockReady {
        pthread_mutex_init(&failuresLock, nil)
        failuresLockReady = true
    }
    pthread_mutex_lock(&failuresLock)
    defer { pthread_mutex_unlock(&failuresLock) }
    return body(&failures)
}

func recordedFailures() -> [CheckFailure] { withFailures { $0 } }

/// Forgets the failures of the previous schedule, so each explored schedule is graded alone.
func resetFailures() { withFailures { $0.removeAll() } }

/// Grades a block: when `condition` is false the block fails with `message` and this line.
/// Like XCTest's assertions it does not stop the block, so one run reports every failed check.
public func expect(_ condition: @autoclosure () -> Bool, _ message: @autoclosure () -> String = "",
                   file: String = #filePath, line: Int = #line) {
    guard !condition() else { return }
    let text = message()
    withFailures { $0.append(CheckFailure(file: file, line: line, message: text.isEmpty ? "expectation failed" : text)) }
}

/// Grades a block: fails unless `actual == expected`, saying both values.
public func expectEqual<T: Equatable>(_ actual: @autoclosure () -> T, _ expected: @autoclosure () -> T,
                                      _ message: @autoclosure () -> String = "",
                                      file: String = #filePath, line: Int = #line) {
    let (a, e) = (actual(), expected())
    guard a != e else { return }
    let text = message()
    let detail = "expected \(e), got \(a)"
    withFailures {
        $0.append(CheckFailure(file: file, line: line, message: text.isEmpty ? detail : "\(text): \(detail)"))
    }
}
