import Foundation

/// Runs a child process with a time limit and an output cap, and reports how it ended.
///
/// Built on `posix_spawn` rather than `Foundation.Process`: the child gets an empty signal mask and
/// its own process group, and the limits are enforced with SIGKILL to that group, which nothing in
/// the child can block or ignore (toolchain-notes §6: a `Process` started from a GCD thread
/// inherits a mask that blocks SIGTERM, so a deadlocked child would never die).
struct ChildProcess {
    var executable: String
    var arguments: [String]
    var environment: [String: String] = ProcessInfo.processInfo.environment
    var timeLimit: Double
    /// Bytes of stdout plus stderr after which the child is killed.
    var outputLimit: Int = .max

    enum Ending: Equatable {
        case exited(Int32)
        case signaled(Int32)
        case timedOut
        case outputLimitExceeded
    }

    struct Outcome {
        var ending: Ending
        var stdout: String
        var stderr: String
        var duration: Double
    }

    /// A started child, the leader of its own process group, and how to wait for its wait status.
    struct Started {
        var pid: pid_t
        var wait: () throws -> Int32
    }

    /// Runs the child to its end; throws only when it cannot be started.
    func run() throws -> Outcome {
        try supervise { outPath, errPath in
            let pid = try spawn(executable, arguments: arguments, environment: environment,
                                redirecting: [.file("/dev/null", O_RDONLY),
                                              .file(outPath, O_WRONLY | O_CREAT | O_TRUNC),
                                              .file(errPath, O_WRONLY | O_CREAT | O_TRUNC)])
            return Started(pid: pid) {
                var waitStatus: Int32 = 0
                while waitpid(pid, &waitStatus, 0) == -1 && errno == EINTR {}
                return waitStatus
            }
        }
    }

    /// Runs a child that `start` starts with its stdout and stderr going to the two files it is
    /// given, within the limits; rethrows what `start` or the child's `wait` throws.
    func supervise(_ start: (_ stdout: String, _ stderr: String) throws -> Started) throws -> Outcome {
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("workbook-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: scratch) }
        let outPath = scratch.appendingPathComponent("stdout").path
        let errPath = scratch.appendingPathComponent("stderr").path
        let startTime = Date()
        let child = try start(outPath, errPath)
        let pid = child.pid

        // The child is waited for blocking, so a block that takes 5 ms is judged after 5 ms; a
        // watcher enforces the limits meanwhile and records why it killed the child.
        // The watcher gets a thread of its own: a GCD worker might never be scheduled while the
        // pool's threads sit waiting.
        let watcher = LimitWatcher()
        let (limit, limitBytes) = (timeLimit, outputLimit)
        Thread {
            while watcher.exited.wait(timeout: .now() + .milliseconds(10)) == .timedOut {
                var reason: Ending?
                if Date().timeIntervalSince(startTime) > limit {
                    reason = .timedOut
                } else if limitBytes != .max, fileSize(outPath) + fileSize(errPath) > limitBytes {
                    reason = .outputLimitExceeded
                }
                if let reason, watcher.kill(reason) { kill(-pid, SIGKILL) }
            }
            watcher.done.signal()
        }.start()
        let waited = Result { try child.wait() }
        watcher.exited.signal()
        watcher.done.wait()
        kill(-pid, SIGKILL)  // whatever the child left running in its group goes with it
        let waitStatus = try waited.get()
        let duration = Date().timeIntervalSince(startTime)
        var ending = watcher.reason
        if ending == nil {
            let signal = waitStatus & 0x7f
            ending = signal == 0 ? .exited((waitStatus >> 8) & 0xff) : .signaled(signal)
        }
        return Outcome(ending: ending!, stdout: readPrefix(outPath, outputLimit),
                       stderr: readPrefix(errPath, outputLimit), duration: duration)
    }

    private func readPrefix(_ path: String, _ limit: Int) -> String {
        guard let handle = FileHandle(forReadingAtPath: path) else { return "" }
        defer { try? handle.close() }
        let data = (try? handle.read(upToCount: limit)) ?? nil
        return String(decoding: data ?? Data(), as: UTF8.self)
    }
}

/// Where a spawned child's stdin, stdout and stderr come from.
enum Redirection {
    case file(String, Int32)
    case descriptor(Int32)
}

/// Starts `executable` with `posix_spawn`: an empty signal mask, default signal dispositions, a
/// process group of its own, and descriptors 0, 1, 2 from `redirections`.
func spawn(_ executable: String, arguments: [String], environment: [String: String],
           redirecting redirections: [Redirection]) throws -> pid_t {
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    for (target, redirection) in zip(Int32(0)..., redirections) {
        switch redirection {
        case .file(let path, let flags): posix_spawn_file_actions_addopen(&actions, target, path, flags, 0o600)
        case .descriptor(let source): posix_spawn_file_actions_adddup2(&actions, source, target)
        }
    }

    var attributes = posix_spawnattr_t()
    posix_spawnattr_init(&attributes)
    defer { posix_spawnattr_destroy(&attributes) }
    var noSignals = sigset_t()
    sigemptyset(&noSignals)
    var allSignals = sigset_t()
    sigfillset(&allSignals)
    posix_spawnattr_setsigmask(&attributes, &noSignals)
    posix_spawnattr_setsigdefault(&attributes, &allSignals)
    posix_spawnattr_setpgroup(&attributes, 0)
    posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP))

    let argv = ([executable] + arguments).map { strdup($0) } + [nil]
    let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
    defer {
        argv.forEach { free($0) }
        envp.forEach { free($0) }
    }
    var pid: pid_t = 0
    let status = posix_spawn(&pid, executable, &actions, &attributes, argv, envp)
    guard status == 0 else {
        throw ChildProcessError(message: "cannot start \(executable): \(String(cString: strerror(status)))")
    }
    return pid
}

private func fileSize(_ path: String) -> Int {
    var info = stat()
    return stat(path, &info) == 0 ? Int(info.st_size) : 0
}

/// What the limit watcher of one child knows: whether the child exited, and why it was killed.
private final class LimitWatcher: @unchecked Sendable {
    let exited = DispatchSemaphore(value: 0)
    let done = DispatchSemaphore(value: 0)
    private let lock = NSLock()
    private var killedFor: ChildProcess.Ending?

    /// Records the first reason to kill; false when the child was already being killed.
    func kill(_ reason: ChildProcess.Ending) -> Bool {
        lock.lock()
        defer { lock.unlock() }
        guard killedFor == nil else { return false }
        killedFor = reason
        return true
    }

    var reason: ChildProcess.Ending? {
        lock.lock()
        defer { lock.unlock() }
        return killedFor
    }
}

struct ChildProcessError: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}
