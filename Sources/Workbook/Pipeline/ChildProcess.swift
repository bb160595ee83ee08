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

    /// Runs the child to its end; throws only when it cannot be started.
    func run() throws -> Outcome {
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("workbook-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: scratch) }
        let outPath = scratch.appendingPathComponent("stdout").path
        let errPath = scratch.appendingPathComponent("stderr").path

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, outPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_addopen(&actions, 2, errPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)

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
        let start = Date()
        let status = posix_spawn(&pid, executable, &actions, &attributes, argv, envp)
        guard status == 0 else {
            throw ChildProcessError(message: "cannot start \(executable): \(String(cString: strerror(status)))")
        }

        var ending: Ending?
        var waitStatus: Int32 = 0
        var pause: useconds_t = 200
        while true {
            let reaped = waitpid(pid, &waitStatus, WNOHANG)
            if reaped == pid { break }
            if ending == nil {
                if Date().timeIntervalSince(start) > timeLimit {
                    ending = .timedOut
                } else if outputLimit != .max, fileSize(outPath) + fileSize(errPath) > outputLimit {
                    ending = .outputLimitExceeded
                }
                if ending != nil { kill(-pid, SIGKILL) }
            }
            usleep(pause)
            pause = min(pause * 2, 5_000)
        }
        kill(-pid, SIGKILL)  // whatever the child left running in its group goes with it
        let duration = Date().timeIntervalSince(start)
        if ending == nil {
            let signal = waitStatus & 0x7f
            ending = signal == 0 ? .exited((waitStatus >> 8) & 0xff) : .signaled(signal)
        }
        let cap = outputLimit == .max ? Int.max : outputLimit
        return Outcome(ending: ending!, stdout: readPrefix(outPath, cap), stderr: readPrefix(errPath, cap),
                       duration: duration)
    }

    private func fileSize(_ path: String) -> Int {
        var info = stat()
        return stat(path, &info) == 0 ? Int(info.st_size) : 0
    }

    private func readPrefix(_ path: String, _ limit: Int) -> String {
        guard let handle = FileHandle(forReadingAtPath: path) else { return "" }
        defer { try? handle.close() }
        let data = (try? handle.read(upToCount: limit)) ?? nil
        return String(decoding: data ?? Data(), as: UTF8.self)
    }
}

struct ChildProcessError: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}
