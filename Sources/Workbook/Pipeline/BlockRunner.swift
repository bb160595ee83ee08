import Foundation
import KernelSim

/// Runs one block of a compiled chapter program in its own process and judges the outcome.
public struct BlockRunner: Sendable {
    /// Bytes of stdout plus stderr a block may print before it is stopped.
    public var outputLimit: Int = 1 << 20
    /// Block processes are forked by a server per program and worker; `stopServers` ends them.
    let servers = BlockServers()

    public init(outputLimit: Int = 1 << 20) { self.outputLimit = outputLimit }

    /// The result of running `block` from `program`.
    func run(_ block: Block, of program: String, chapter: String) -> BlockResult {
        var result = BlockResult(chapter: chapter, block: block, status: .failed)
        let outcome: ChildProcess.Outcome
        let record: HandshakeRecord?
        do {
            (outcome, record) = try execute(block, of: program)
        } catch {
            result.message = "could not run the block: \(error)"
            return result
        }
        result.duration = outcome.duration
        result.stdout = outcome.stdout
        result.stderr = outcome.stderr
        judge(&result, ending: outcome.ending, record: record)
        placeSharedAccesses(in: &result, of: program)
        return result
    }

    /// Ends the servers of `program` once its blocks have run.
    func stopServers(of program: String) { servers.stop(program) }

    /// Runs the block on a server of the program; when the server is lost, spawns the program for it.
    private func execute(_ block: Block, of program: String) throws -> (ChildProcess.Outcome, HandshakeRecord?) {
        var environment = ProcessInfo.processInfo.environment
        // A compact crash report on stderr; from a `-g` build (trapped blocks are re-run from one)
        // it names the chapter line of the trap.
        environment["SWIFT_BACKTRACE"] = "enable=yes,interactive=no,color=no,registers=none,images=none,threads=crashed"
        if let server = servers.take(program, environment: environment) {
            do {
                let ran = try execute(block, of: program, environment: environment, on: server)
                servers.give(server)
                return ran
            } catch is ServerLost {
                server.stop()
            }
        }
        return try execute(block, of: program, environment: environment, on: nil)
    }

    /// One run of the block, with a fresh result file and nonce: a lost server's child may have
    /// written its record before it was killed.
    private func execute(_ block: Block, of program: String, environment: [String: String],
                     on server: BlockServer?) throws -> (ChildProcess.Outcome, HandshakeRecord?) {
        let resultFile = FileManager.default.temporaryDirectory
            .appendingPathComponent("workbook-result-\(UUID().uuidString).json").path
        defer { try? FileManager.default.removeItem(atPath: resultFile) }
        let nonce = UUID().uuidString
        var environment = environment
        environment["WORKBOOK_RESULT_FILE"] = resultFile
        environment["WORKBOOK_NONCE"] = nonce
        let child = ChildProcess(executable: program, arguments: ["--block", String(block.index)],
                                 environment: environment, timeLimit: block.options.timeoutSeconds,
                                 outputLimit: outputLimit)
        let outcome = try server.map { server in
            try child.supervise {
                try server.start(block: block.index, nonce: nonce, resultFile: resultFile,
                                 stdout: $0, stderr: $1, timeLimit: child.timeLimit)
            }
        } ?? child.run()
        return (outcome, HandshakeRecord.read(resultFile, nonce: nonce))
    }

    /// A thread stopped at a shared-memory access is placed by its offset in the program (the
    /// simulator has no line tables): give the message and the bug check its chapter line.
    private func placeSharedAccesses(in result: inout BlockResult, of program: String) {
        let naming = RaceNaming.shared
        result.message = naming.placingSharedAccesses(in: result.message, of: program)
        guard var check = result.bugCheck else { return }
        check.report = naming.placingSharedAccesses(in: check.report, of: program)
        if let location = check.location, location.file == KsSharedAccessSite.file {
            check.location = naming.chapterLine(ofProgramOffset: UInt64(location.line), in: program)
        }
        result.bugCheck = check
    }

    private func judge(_ result: inout BlockResult, ending: ChildProcess.Ending, record: HandshakeRecord?) {
        let block = result.block
        switch ending {
        case .timedOut:
            result.status = .timeout
            result.message = "did not finish within \(secondsText(block.options.timeoutSeconds)) (stopped; raise it with timeout=SECONDS)"
            return
        case .outputLimitExceeded:
            result.status = .failed
            result.message = "printed more than \(outputLimit / 1024) KiB of output (stopped)"
            return
        case .signaled(let signal):
            result.status = .trap
            result.message = "crashed with signal \(signal) (\(signalName(signal)))" + firstTrapLine(result.stderr)
            return
        case .exited(let code):
            guard let record else {
                result.status = .failed
                result.message = code == 0
                    ? "exited before the block finished (exit status 0, but the simulated machine never stopped)"
                    : "exited with status \(code) before the block finished" + firstTrapLine(result.stderr)
                return
            }
            _ = code
            judge(&result, record: record)
            if result.status != .passed, let explored = record.exploration, let seed = explored.seed {
                result.message += "\n" + scheduleReport(explored, seed: seed)
            }
        }
    }

    private func judge(_ result: inout BlockResult, record: HandshakeRecord) {
        let block = result.block
        let failures = record.failures.map { "\($0.file):\($0.line): \($0.message)" }
        result.race = record.race.map(RaceNaming.shared.name)
        switch record.outcome {
        case .deadlock(let report):
            result.status = .deadlock
            result.message = "deadlock: every simulated thread is blocked\n\(report)"
            return
        case .bugCheck(let info):
            result.bugCheck = info
            switch block.expectation {
            case .bugCheck(let expected) where expected == nil || expected == info.code:
                break
            case .bugCheck(let expected?):
                result.status = .bugCheck
                let want = "0x" + String(expected, radix: 16, uppercase: true)
                result.message = "expected bug check \(BugCheckNames.title(expected) ?? want), but the kernel raised \(info.title)\(info.locationSuffix)"
                return
            default:
                result.status = .bugCheck
                // The four parameters as `!analyze -v` lists them (parameter 1 of a 0xC4 names the
                // rule that was broken, what a learner needs first), then the simulator's NOTE.
                let details = info.argumentLines.map(String.init) + (info.note.map { [$0] } ?? [])
                result.message = (["the simulated kernel bug-checked: \(info.title)\(info.locationSuffix)"]
                    + details.map { "  \($0)" }).joined(separator: "\n")
                return
            }
        case .completed:
            if block.expectation == .race {
                guard result.race != nil else {
                    result.status = .failed
                    result.message = "expected a data race, but the race detector found none"
                    return
                }
            } else if let race = result.race {
                result.status = .failed
                result.message = ([race.text] + failures).joined(separator: "\n")
                return
            }
            if case .bugCheck(let expected) = block.expectation {
                result.status = .failed
                result.message = "expected the kernel to bug-check" + (expected.map { " with \(BugCheckNames.title($0) ?? String($0))" } ?? "")
                    + ", but the block completed"
                return
            }
        }
        if !failures.isEmpty {
            result.status = .failed
            result.message = failures.joined(separator: "\n")
            return
        }
        if let expected = block.expectedOutput, let difference = OutputComparison.difference(expected: expected.text, actual: result.stdout) {
            result.status = .failed
            result.message = "output differs from the expected output at \(expected.fence):\n\(difference)"
            return
        }
        result.status = .passed
    }

    /// Which schedule failed, how to replay it, and its interleaving.
    private func scheduleReport(_ explored: HandshakeRecord.Exploration, seed: UInt64) -> String {
        let strategy = explored.strategy == "pct" ? " strategy=pct" : ""
        return "schedule \((explored.index ?? 0) + 1) of \(explored.schedules) failed (seed \(seed)); "
            + "replay it alone with `seed=\(seed)\(strategy)` instead of `schedules=\(explored.schedules)`\n"
            + (explored.interleaving ?? "")
    }

    private func firstTrapLine(_ stderr: String) -> String {
        let line = stderr.split(separator: "\n").first { $0.contains("Fatal error") || $0.contains("fatal error") || $0.contains("Crash") }
        return line.map { ": \($0.trimmingCharacters(in: .whitespaces))" } ?? ""
    }

    private func signalName(_ signal: Int32) -> String {
        switch signal {
        case SIGILL: return "SIGILL: a Swift runtime trap such as a failed precondition, overflow or out-of-range index"
        case SIGTRAP: return "SIGTRAP: a Swift runtime trap"
        case SIGSEGV: return "SIGSEGV: invalid memory access"
        case SIGBUS: return "SIGBUS: invalid memory access"
        case SIGABRT: return "SIGABRT: abort"
        case SIGFPE: return "SIGFPE: arithmetic error"
        case SIGKILL: return "SIGKILL"
        default: return "signal \(signal)"
        }
    }
}

/// A setting in seconds as a person writes it: `10 s`, `2.5 s`.
func secondsText(_ seconds: Double) -> String {
    seconds == seconds.rounded() ? "\(Int(seconds)) s" : String(format: "%.1f s", seconds)
}

extension BugCheckInfo {
    var locationSuffix: String { location.map { " at \($0)" } ?? "" }
}
