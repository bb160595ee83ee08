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
    public var body: () -> Void

    public init(processors: Int, seed: UInt64, verifier: Bool, schedules: Int = 1, strategy: KsStrategy = .random,
                body: @escaping () -> Void) {
        self.processors = processors
        self.seed = seed
        self.verifier = verifier
        self.schedules = schedules
        self.strategy = strategy
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
                                   strategy: block.strategy)
    let body = { resetFailures(); block.body() }
    var summary: ExplorationSummary?
    if block.schedules > 1 {
        let exploration = KsExplore(KsExploreOptions(schedules: block.schedules, strategy: block.strategy, seed: block.seed,
                                                     processorCount: block.processors, verifier: block.verifier, silent: true),
                                    failed: { !recordedFailures().isEmpty }, body)
        summary = ExplorationSummary(schedules: block.schedules, explored: exploration.schedulesRun, failure: exploration.failure)
        if let failure = exploration.failure { options = failure.options }
    }
    return (KsRunMachine(options, body), summary)
}

/// The entry point of every generated chapter program: `program --block N` runs block N in a fresh
/// simulated machine and writes its outcome to the file named by `WORKBOOK_RESULT_FILE`.
///
/// The record is the completion handshake: it carries the nonce the runner put in
/// `WORKBOOK_NONCE`, and it is written only after the machine stopped, so a block that calls
/// `exit(0)` early or traps leaves no record and can never count as a pass.
public func workbookMain(_ blocks: [Int: WorkbookBlock]) -> Never {
    let arguments = CommandLine.arguments
    guard arguments.count == 3, arguments[1] == "--block", let index = Int(arguments[2]),
          let block = blocks[index] else {
        writeError("usage: \(arguments.first ?? "program") --block N  (N one of \(blocks.keys.sorted()))\n")
        exit(64)
    }
    let (outcome, exploration) = run(block)
    fflush(nil)
    let record = ResultRecord(nonce: environment("WORKBOOK_NONCE") ?? "", outcome: outcome,
                              failures: recordedFailures(), exploration: exploration)
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
