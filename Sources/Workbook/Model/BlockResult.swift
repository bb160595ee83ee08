/// How a block ended. Only `passed` and `ignored` count as success.
public enum BlockStatus: String, Codable, Sendable, CaseIterable {
    case passed
    case failed
    case compileError = "compile_error"
    case bugCheck = "bug_check"
    case deadlock
    case timeout
    case trap
    case ignored

    public var isSuccess: Bool { self == .passed || self == .ignored }
}

/// A compiler diagnostic mapped back to its chapter line.
public struct Diagnostic: Hashable, Codable, Sendable {
    public enum Severity: String, Codable, Sendable { case error, warning, note }
    public var location: SourceLocation
    public var column: Int
    public var severity: Severity
    public var message: String

    public init(location: SourceLocation, column: Int, severity: Severity, message: String) {
        self.location = location
        self.column = column
        self.severity = severity
        self.message = message
    }

    public var description: String { "\(location):\(column): \(severity.rawValue): \(message)" }
}

/// A bug check raised by the simulated kernel, as the report shows it.
public struct BugCheckInfo: Hashable, Codable, Sendable {
    public var code: UInt32
    public var name: String
    public var parameters: [UInt64]
    /// The `!analyze -v`-style crash report from the simulator.
    public var report: String
    /// The chapter line of the kernel call that bug-checked.
    public var location: SourceLocation?

    public init(code: UInt32, name: String, parameters: [UInt64], report: String, location: SourceLocation? = nil) {
        self.code = code
        self.name = name
        self.parameters = parameters
        self.report = report
        self.location = location
    }

    /// `DRIVER_IRQL_NOT_LESS_OR_EQUAL (0xD1)`.
    public var title: String { "\(name) (0x\(String(code, radix: 16, uppercase: true)))" }

    /// The parameters as `!analyze -v` lists them, one `ArgN: value, meaning` line each.
    public var argumentLines: [Substring] { report.split(separator: "\n").filter { $0.hasPrefix("Arg") } }

    /// The report's NOTE: the simulator's explanation of what it saw (which allocation was touched,
    /// which locks were taken in which order). It shows at most a line number, never code, so it is
    /// shown for hidden checks too.
    public var note: String? {
        let lines = report.split(separator: "\n", omittingEmptySubsequences: false)
        guard let start = lines.firstIndex(where: { $0.hasPrefix("NOTE: ") }) else { return nil }
        return lines[start...].prefix { !$0.isEmpty }.joined(separator: "\n")
    }
}

/// The outcome of one block.
public struct BlockResult: Sendable {
    public var chapter: String
    public var block: Block
    public var status: BlockStatus
    /// Wall-clock seconds spent running (0 when not run).
    public var duration: Double
    /// Why the block did not pass, in one or a few lines; empty when it passed.
    public var message: String
    public var stdout: String
    public var stderr: String
    public var diagnostics: [Diagnostic]
    public var bugCheck: BugCheckInfo?
    /// The first data race the run had.
    public var race: DataRaceInfo?
    /// Taken from the cache rather than compiled and run now.
    public var cached: Bool

    public init(chapter: String, block: Block, status: BlockStatus, duration: Double = 0, message: String = "",
                stdout: String = "", stderr: String = "", diagnostics: [Diagnostic] = [],
                bugCheck: BugCheckInfo? = nil, race: DataRaceInfo? = nil, cached: Bool = false) {
        self.chapter = chapter
        self.block = block
        self.status = status
        self.duration = duration
        self.message = message
        self.stdout = stdout
        self.stderr = stderr
        self.diagnostics = diagnostics
        self.bugCheck = bugCheck
        self.race = race
        self.cached = cached
    }
}

/// Everything one `workbook check` produced for one chapter.
public struct ChapterResult: Sendable {
    public var chapter: Chapter
    public var results: [BlockResult]

    public init(chapter: Chapter, results: [BlockResult]) {
        self.chapter = chapter
        self.results = results
    }

    /// Exercise IDs in order of their starters, each with whether all of its blocks passed.
    public var exercises: [(id: String, passed: Bool)] {
        var order: [String] = []
        var passed: [String: Bool] = [:]
        for result in results {
            guard let id = result.block.exerciseID else { continue }
            if passed[id] == nil { order.append(id) }
            passed[id] = (passed[id] ?? true) && result.status == .passed
        }
        return order.map { ($0, passed[$0] ?? false) }
    }
}
