import Glibc
import KernelSim

/// One block of a generated chapter program: its statements and the machine it runs on.
public struct WorkbookBlock {
    public var processors: Int
    public var seed: UInt64
    public var verifier: Bool
    /// Schedules to explore (`schedules=N`); 1 runs the block once with `seed`.
    public var schedules: Int
    public var strategy: KsStrategy
    /// Report data races (`races=off` turns it off).
    public var races: Bool
    public var body: () -> Void

    public init(processors: Int, seed: UInt64, verifier: Bool, schedules: Int = 1, strategy: KsStrategy = .random,
                races: Bool = true, body: @escaping () -> Void) {
        self.processors = processors
        self.seed = seed
        self.verifier = verifier
        self.schedules = schedules
        self.strategy = strategy
        self.races = races
        self.body = body
    }
}

/// What `schedules=N` explored, for the result record.
struct ExplorationSummary {
    var schedules: Int
    var explored: Int
    /// The failing schedule, if one failed.
    var failure: KsScheduleFailure?
}

/// Runs the block once, or explores its schedules silently and then replays the first failing
/// one (or schedule 0) with its output, so the recorded outcome, failures and output are those
/// of one schedule, which its seed reproduces.
private func run(_ block: WorkbookBlock) -> (KsOutcome, ExplorationSummary?) {
    var options = KsMachineOptions(processorCount: block.processors, seed: block.seed, verifier: block.verifier,
                                   strategy: block.strategy, raceDetection: block.races)
    let body = { resetFailures(); block.body() }
    var summary: ExplorationSummary?
    if block.schedules > 1 {
        let exploration = KsExplore(KsExploreOptions(schedules: block.schedules, strategy: block.strategy, seed: block.seed,
                                                     processorCount: block.processors, verifier: block.verifier,
                                                     raceDetection: block.races, silent: true),
                                    failed: { !recordedFailures().isEmpty }, body)
        summary = ExplorationSummary(schedules: block.schedules, explored: exploration.schedulesRun, failure: exploration.failure)
        if let failure = exploration.failure { options = failure.options }
    }
    return (KsRunMachine(options, body), summary)
}

/// The entry point of every generated chapter program: `program --block N` runs block N in a fresh
/// simulated machine and writes its outcome to the file named by `WORKBOOK_RESULT_FILE`;
/// `program --serve` runs blocks on request in forked processes (see `serve`).
///
/// The record is the completion handshake: it carries the nonce the runner put in
/// `WORKBOOK_NONCE`, and it is written only after the machine stopped, so a block that calls
/// `exit(0)` early or traps leaves no record and can never count as a pass.
public func workbookMain(_ blocks: [Int: WorkbookBlock]) -> Never {
    let arguments = CommandLine.arguments
    if arguments.count == 2, arguments[1] == "--serve" { serve(blocks) }
    guard arguments.count == 3, arguments[1] == "--block", let index = Int(arguments[2]) else {
        usage(blocks)
    }
    runBlock(index, of: blocks)
}

private func usage(_ blocks: [Int: WorkbookBlock]) -> Never {
    writeError("usage: \(CommandLine.arguments.first ?? "program") --block N | --serve  (N one of \(blocks.keys.sorted()))\n")
    exit(64)
}

/// Runs block `index` and hands in its record; all that `--block N` does, and a served block's child.
private func runBlock(_ index: Int, of blocks: [Int: WorkbookBlock]) -> Never {
    guard let block = blocks[index] else { usage(blocks) }
    let (outcome, exploration) = run(block)
    fflush(nil)
    let record = ResultRecord(nonce: environment("WORKBOOK_NONCE") ?? "", outcome: outcome,
                              failures: recordedFailures(), exploration: exploration, race: KsLastDataRace())
    if let path = environment("WORKBOOK_RESULT_FILE") {
        guard let file = fopen(path, "w") else {
            writeError("workbook: cannot write the result file \(path)\n")
            exit(70)
        }
        fputs(record.json, file)
        fclose(file)
    } else {
        print(record.json)
    }
    // _exit: parked simulated threads and atexit handlers must not get a say after the handshake.
    fflush(nil)
    _exit(0)
}

/// `--serve`: the fork server. Start-up of a Swift program (loading its runtime) costs several
/// times a block's own work, so the program starts once and forks a process per block.
///
/// Each request on stdin is one line, `run INDEX NONCE RESULT-FILE STDOUT STDERR`, its fields
/// separated by single spaces and percent-encoded (`ServeRequest`). The server answers `pid P`
/// once the child exists (the leader of its own process group, so the runner can kill the group),
/// then `status S`, the child's raw wait status. EOF ends the server; a malformed request or a
/// failed fork ends it too, and the runner then spawns.
///
/// Forking is safe because the server never leaves this function's single thread: no simulated
/// machine runs here.
private func serve(_ blocks: [Int: WorkbookBlock]) -> Never {
    var requests = LineReader(descriptor: STDIN_FILENO)
    while let line = requests.next() {
        guard let request = ServeRequest(line) else { exit(65) }
        let child = fork()
        if child < 0 { exit(71) }
        if child == 0 { runServed(request, of: blocks) }
        // Both sides set the group, so it exists before the runner can signal it.
        setpgid(child, child)
        guard reply("pid \(child)\n") else { exit(0) }
        var status: Int32 = 0
        while waitpid(child, &status, 0) == -1 && errno == EINTR {}
        guard reply("status \(status)\n") else { exit(0) }
    }
    exit(0)
}

/// In the forked child: the process `--block N` would have been, then the block.
private func runServed(_ request: ServeRequest, of blocks: [Int: WorkbookBlock]) -> Never {
    setpgid(0, 0)
    // Dispositions stay as the runtime installed them at start-up (the server changes none, and
    // Swift's crash backtracer lives there); the mask is emptied as posix_spawn did.
    var noSignals = sigset_t()
    sigemptyset(&noSignals)
    sigprocmask(SIG_SETMASK, &noSignals, nil)
    for (descriptor, path, flags) in [(STDIN_FILENO, "/dev/null", O_RDONLY),
                                      (STDOUT_FILENO, request.stdout, O_WRONLY | O_CREAT | O_TRUNC),
                                      (STDERR_FILENO, request.stderr, O_WRONLY | O_CREAT | O_TRUNC)] {
        let opened = open(path, flags | O_CLOEXEC, 0o600)
        guard opened >= 0, dup2(opened, descriptor) >= 0 else { _exit(70) }
        close(opened)
    }
    setenv("WORKBOOK_RESULT_FILE", request.resultFile, 1)
    setenv("WORKBOOK_NONCE", request.nonce, 1)
    runBlock(request.index, of: blocks)
}

/// Writes all of `text` to stdout; false once the runner is gone.
private func reply(_ text: String) -> Bool {
    var bytes = Array(text.utf8)[...]
    while !bytes.isEmpty {
        let written = bytes.withUnsafeBytes { write(STDOUT_FILENO, $0.baseAddress, $0.count) }
        if written < 0 && errno == EINTR { continue }
        guard written > 0 else { return false }
        bytes = bytes.dropFirst(written)
    }
    return true
}

/// One `--serve` request line.
struct ServeRequest {
    var index: Int
    var nonce: String
    var resultFile: String
    var stdout: String
    var stderr: String

    init?(_ line: [UInt8]) {
        let fields = line.split(separator: UInt8(ascii: " "), omittingEmptySubsequences: false)
        guard fields.count == 6, fields[0].elementsEqual("run".utf8),
              let decoded = Optional(fields.dropFirst().map(percentDecoded)), !decoded.contains(where: { $0 == nil }),
              let index = Int(decoded[0]!) else { return nil }
        self.index = index
        (nonce, resultFile, stdout, stderr) = (decoded[1]!, decoded[2]!, decoded[3]!, decoded[4]!)
    }
}

/// `%XX` escapes decoded; nil for a malformed escape or text that is not UTF-8.
private func percentDecoded(_ field: ArraySlice<UInt8>) -> String? {
    var bytes: [UInt8] = []
    var position = field.startIndex
    while position < field.endIndex {
        if field[position] == UInt8(ascii: "%") {
            guard position + 2 < field.endIndex,
                  let byte = UInt8(String(decoding: field[(position + 1)...(position + 2)], as: UTF8.self), radix: 16)
            else { return nil }
            bytes.append(byte)
            position += 3
        } else {
            bytes.append(field[position])
            position += 1
        }
    }
    return String(validating: bytes, as: UTF8.self)
}

/// Lines read from a descriptor with `read` alone: stdio would buffer requests ahead, and a
/// forked child would inherit that buffer.
struct LineReader {
    let descriptor: Int32
    private var buffer: [UInt8] = []

    init(descriptor: Int32) { self.descriptor = descriptor }

    /// The next line without its newline; nil at EOF (an unterminated last line is dropped).
    mutating func next() -> [UInt8]? {
        while true {
            if let newline = buffer.firstIndex(of: UInt8(ascii: "\n")) {
                let line = Array(buffer[..<newline])
                buffer.removeSubrange(...newline)
                return line
            }
            var chunk = [UInt8](repeating: 0, count: 4096)
            let count = chunk.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { return nil }
            buffer += chunk[..<count]
        }
    }
}

private func writeError(_ text: String) {
    var bytes = Array(text.utf8)
    _ = write(STDERR_FILENO, &bytes, bytes.count)
}

private func environment(_ name: String) -> String? {
    getenv(name).map { String(cString: $0) }
}

/// The outcome of one block as JSON, written without Foundation to keep process start-up cheap.
struct ResultRecord {
    var nonce: String
    var outcome: KsOutcome
    var failures: [CheckFailure]
    var exploration: ExplorationSummary?
    var race: KsDataRace?

    var json: String {
        var fields: [String] = ["\"nonce\":\(quote(nonce))"]
        switch outcome {
        case .completed:
            fields.append("\"outcome\":\"completed\"")
        case .deadlock(let report):
            fields.append("\"outcome\":\"deadlock\"")
            fields.append("\"report\":\(quote(report))")
        case .bugCheck(let check):
            fields.append("\"outcome\":\"bugcheck\"")
            let parameters = check.parameters.map { "\(UInt64($0))" }.joined(separator: ",")
            fields.append("""
                "bugcheck":{"code":\(check.code),"name":\(quote(check.name)),"parameters":[\(parameters)],\
                "file":\(quote(check.file)),"line":\(check.line),"report":\(quote(check.report))}
                """)
        }
        let failureList = failures.map {
            "{\"file\":\(quote($0.file)),\"line\":\($0.line),\"message\":\(quote($0.message))}"
        }
        fields.append("\"failures\":[\(failureList.joined(separator: ","))]")
        if let exploration {
            var entries = ["\"schedules\":\(exploration.schedules)", "\"explored\":\(exploration.explored)"]
            if let failure = exploration.failure {
                let strategy: String
                if case .pct = failure.options.strategy { strategy = "pct" } else { strategy = "random" }
                entries += ["\"index\":\(failure.index)", "\"seed\":\(failure.seed)", "\"strategy\":\(quote(strategy))",
                            "\"interleaving\":\(quote(failure.interleaving(last: 30)))"]
            }
            fields.append("\"exploration\":{\(entries.joined(separator: ","))}")
        }
        if let race {
            func access(_ a: KsDataRace.Access) -> String {
                let locks = a.locks.map {
                    "{\"kind\":\(quote($0.kind)),\"address\":\($0.address),\"file\":\(quote($0.file)),\"line\":\($0.line)}"
                }
                return "{\"write\":\(a.write),\"atomic\":\(a.atomic),\"module\":\(quote(a.module)),\"offset\":\(a.offset),"
                    + "\"function\":\(a.function.map(quote) ?? "null"),\"context\":\(quote(a.context)),"
                    + "\"processor\":\(a.processor),\"irql\":\(a.irql),\"locks\":[\(locks.joined(separator: ","))]}"
            }
            fields.append("\"race\":{\"address\":\(race.address),\"size\":\(race.size),"
                + "\"variable\":\(race.variable.map(quote) ?? "null"),\"racingPairs\":\(race.racingPairs),"
                + "\"current\":\(access(race.current)),\"previous\":\(access(race.previous))}")
        }
        return "{\(fields.joined(separator: ","))}\n"
    }
}

private func quote(_ text: String) -> String {
    var out = "\""
    for scalar in text.unicodeScalars {
        switch scalar {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        case _ where scalar.value < 0x20:
            let hex = String(scalar.value, radix: 16)
            out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
        default: out.unicodeScalars.append(scalar)
        }
    }
    return out + "\""
}
