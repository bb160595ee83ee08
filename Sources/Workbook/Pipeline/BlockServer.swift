import Foundation

/// A chapter program started with `--serve` (see `workbookMain`): it forks a process per block, so
/// the Swift runtime is loaded once per program and worker rather than once per block.
final class BlockServer: @unchecked Sendable {
    let program: String
    let pid: pid_t
    /// The runner's end of a socket pair that is the server's stdin and stdout. A socket rather than
    /// pipes: writing to a server that died then fails with EPIPE (`MSG_NOSIGNAL`) instead of
    /// raising SIGPIPE in the runner.
    private let socket: Int32
    private var replies: [UInt8] = []
    /// Set once the server failed to answer; it is then stopped, never reused.
    private(set) var lost = false

    init(program: String, environment: [String: String]) throws {
        var pair: [Int32] = [0, 0]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &pair) == 0 else {
            throw ChildProcessError(message: "socketpair: \(String(cString: strerror(errno)))")
        }
        defer { close(pair[1]) }
        do {
            pid = try spawn(program, arguments: ["--serve"], environment: environment,
                            redirecting: [.descriptor(pair[1]), .descriptor(pair[1]), .file("/dev/null", O_WRONLY)])
        } catch {
            close(pair[0])
            throw error
        }
        self.program = program
        socket = pair[0]
    }

    /// Starts block `index` in a child of the server, writing its record to `resultFile`; the
    /// child's wait status is expected within `timeLimit` (plus a grace period: the runner kills it
    /// at the limit). Throws `ServerLost` when the server does not answer.
    func start(block index: Int, nonce: String, resultFile: String,
               stdout: String, stderr: String, timeLimit: Double) throws -> ChildProcess.Started {
        let fields = ["run", String(index), nonce, resultFile, stdout, stderr]
        try send(fields.map(Self.encoded).joined(separator: " ") + "\n")
        let pid = pid_t(try reply("pid", within: 10))
        return ChildProcess.Started(pid: pid) { Int32(try self.reply("status", within: timeLimit + 10)) }
    }

    /// Ends the server: EOF on its stdin, or SIGKILL when it was lost.
    func stop() {
        if lost { kill(pid, SIGKILL) }
        close(socket)
        var status: Int32 = 0
        while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
    }

    /// `%XX` for the bytes that would end a field or a line, for `%` itself, and for every non-ASCII
    /// byte (appending those one by one as scalars would re-encode a UTF-8 path as Latin-1).
    static func encoded(_ field: String) -> String {
        var out = ""
        for byte in field.utf8 {
            if byte <= 0x20 || byte >= 0x7f || byte == UInt8(ascii: "%") {
                out += String(format: "%%%02X", byte)
            } else {
                out.unicodeScalars.append(Unicode.Scalar(byte))
            }
        }
        return out
    }

    private func send(_ text: String) throws {
        var bytes = Array(text.utf8)[...]
        while !bytes.isEmpty {
            let sent = bytes.withUnsafeBytes { Glibc.send(socket, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if sent < 0 && errno == EINTR { continue }
            guard sent > 0 else { throw lose("cannot send a request") }
            bytes = bytes.dropFirst(sent)
        }
    }

    /// The number in the next reply line, which must read `keyword NUMBER`.
    private func reply(_ keyword: String, within seconds: Double) throws -> Int {
        let deadline = Date().addingTimeInterval(seconds)
        while true {
            if let newline = replies.firstIndex(of: UInt8(ascii: "\n")) {
                let line = String(decoding: replies[..<newline], as: UTF8.self)
                replies.removeSubrange(...newline)
                let words = line.split(separator: " ")
                guard words.count == 2, words[0] == keyword, let number = Int(words[1]) else {
                    throw lose("unexpected reply \(line)")
                }
                return number
            }
            var descriptor = pollfd(fd: socket, events: Int16(POLLIN), revents: 0)
            let remaining = Int32(min(max(deadline.timeIntervalSinceNow * 1000, 0), Double(Int32.max)))
            let ready = poll(&descriptor, 1, remaining)
            if ready < 0 && errno == EINTR { continue }
            guard ready > 0 else { throw lose("no reply") }
            var chunk = [UInt8](repeating: 0, count: 256)
            let count = chunk.withUnsafeMutableBytes { read(socket, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { throw lose("the server ended") }
            replies += chunk[..<count]
        }
    }

    private func lose(_ reason: String) -> ServerLost {
        lost = true
        return ServerLost(reason: reason)
    }
}

/// The server died or stopped answering; the block is then run by spawning the program.
struct ServerLost: Error {
    var reason: String
}

/// The idle fork servers of chapter programs, kept for the program's next block.
final class BlockServers: @unchecked Sendable {
    private var idle: [String: [BlockServer]] = [:]
    private let lock = NSLock()

    /// An idle server of `program`, or a new one; nil when none can be started.
    func take(_ program: String, environment: [String: String]) -> BlockServer? {
        lock.withLock { idle[program]?.popLast() } ?? (try? BlockServer(program: program, environment: environment))
    }

    func give(_ server: BlockServer) {
        lock.withLock { idle[server.program, default: []].append(server) }
    }

    /// Stops the servers of `program`, once its blocks have run (the file may be rebuilt after).
    func stop(_ program: String) {
        let servers = lock.withLock { idle.removeValue(forKey: program) ?? [] }
        servers.forEach { $0.stop() }
    }

    /// How many servers of `program` are idle.
    func idleCount(_ program: String) -> Int { lock.withLock { idle[program]?.count ?? 0 } }
}
