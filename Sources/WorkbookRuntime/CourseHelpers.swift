import KernelSim

/// Runs `body` on a new system thread, created with `PsCreateSystemThread` at PASSIVE_LEVEL;
/// `wait()` returns once the thread has ended. Every chapter may use it.
public final class SystemThread {
    public var handle: HANDLE = nil

    public init(_ body: @escaping () -> Void, file: String = #filePath, line: Int = #line) {
        let status = PsCreateSystemThread(&handle, THREAD_ALL_ACCESS, nil, nil, nil, { _ in body() }, nil,
                                          file: file, line: line)
        expect(NT_SUCCESS(status), "PsCreateSystemThread failed", file: file, line: line)
    }

    /// Waits for the thread to end and closes its handle. Call at PASSIVE_LEVEL.
    public func wait(file: String = #filePath, line: Int = #line) {
        _ = ZwWaitForSingleObject(handle, FALSE, nil, file: file, line: line)
        _ = ZwClose(handle, file: file, line: line)
    }
}

/// Sleeps for `milliseconds` with `KeDelayExecutionThread`, which takes a negative value for a
/// relative time, in units of 100 nanoseconds. Call at IRQL <= APC_LEVEL.
public func SleepMilliseconds(_ milliseconds: Int64, file: String = #filePath, line: Int = #line) {
    var interval = LARGE_INTEGER()
    interval.QuadPart = -10_000 * milliseconds
    _ = KeDelayExecutionThread(KernelMode, FALSE, &interval, file: file, line: line)
}
