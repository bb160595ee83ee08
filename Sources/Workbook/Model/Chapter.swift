/// A place in a chapter file, 1-based, as an editor shows it.
public struct SourceLocation: Hashable, Codable, Sendable, CustomStringConvertible {
    public var file: String
    public var line: Int

    public init(file: String, line: Int) {
        self.file = file
        self.line = line
    }

    public var description: String { "\(file):\(line)" }
}

/// One Markdown chapter of the course, with its checked blocks.
public struct Chapter: Sendable {
    /// The path as the user named it (relative paths stay relative), used in every diagnostic.
    public var path: String
    /// The first level-1 heading, or the file name when there is none.
    public var title: String
    /// The full Markdown text, kept for rendering the course pages.
    public var markdown: String
    /// Every fenced `swift` block in document order, and the `output` blocks attached to them.
    public var blocks: [Block]
    /// Reference solutions by exercise ID, loaded from the solutions folder when asked for.
    public var solutions: [String: Solution]

    public init(path: String, title: String, markdown: String, blocks: [Block], solutions: [String: Solution] = [:]) {
        self.path = path
        self.title = title
        self.markdown = markdown
        self.blocks = blocks
        self.solutions = solutions
    }

    /// The file name without its extension, e.g. `02-fast-mutex`; chapters are ordered by it.
    public var slug: String {
        let name = path.split(separator: "/").last.map(String.init) ?? path
        return name.hasSuffix(".md") ? String(name.dropLast(3)) : name
    }
}

/// What a block must do to pass.
public enum Expectation: Hashable, Sendable {
    /// Compile and run to completion with no bug check, deadlock, trap or timeout.
    case run
    /// Compile, run, and bug-check; `nil` accepts any code.
    case bugCheck(code: UInt32?)
    /// Compile, run, and report a data race (`race`).
    case race
    /// Fail to compile; when `containing` is set, a diagnostic must contain it.
    case compileFail(containing: String?)
    /// Compile only.
    case noRun
    /// Neither compiled nor run.
    case ignore
}

/// The part a block plays in the course.
public enum BlockRole: Hashable, Sendable {
    case example
    /// The starter a learner edits.
    case exercise(id: String)
    /// Code that grades an exercise.
    case check(id: String)
}

/// Per-block settings for the simulated machine and the runner.
public struct RunOptions: Hashable, Sendable {
    public var timeoutSeconds: Double = 10
    public var processors: Int = 2
    public var seed: UInt64 = 0
    /// Driver Verifier is on by default, as a developer runs it; `verifier=off` runs the retail kernel.
    public var verifier: Bool = true
    /// `schedules=N`: explore N schedules (seeds `seed` … `seed + N − 1`); the block passes only if all do.
    public var schedules: Int = 1
    public var strategy: ScheduleStrategy = .random
    /// `races=off`: the race detector reports nothing (accesses to shared memory still preempt).
    public var raceDetection = true

    public init() {}
}

/// How the simulated scheduler chooses threads (`strategy=`).
public enum ScheduleStrategy: String, Hashable, Sendable, CaseIterable {
    /// A seeded uniformly random choice at every scheduling point.
    case random
    /// Probabilistic Concurrency Testing with depth 3.
    case pct
}

/// A fenced ` ```swift ` block.
public struct Block: Hashable, Sendable {
    /// Position among the chapter's swift blocks, from 0.
    public var index: Int
    /// The line of the opening fence.
    public var fence: SourceLocation
    /// The block's code, one `\n` after each line.
    public var code: String
    public var expectation: Expectation
    public var role: BlockRole
    public var options: RunOptions
    /// The ` ```output ` block that follows, if any.
    public var expectedOutput: ExpectedOutput?
    /// Hidden from the course pages unless the reader asks (check blocks are hidden by default).
    public var hidden: Bool

    public init(index: Int, fence: SourceLocation, code: String, expectation: Expectation = .run,
                role: BlockRole = .example, options: RunOptions = RunOptions(),
                expectedOutput: ExpectedOutput? = nil, hidden: Bool = false) {
        self.index = index
        self.fence = fence
        self.code = code
        self.expectation = expectation
        self.role = role
        self.options = options
        self.expectedOutput = expectedOutput
        self.hidden = hidden
    }

    /// The first line of code, one after the fence.
    public var firstCodeLine: Int { fence.line + 1 }

    /// The number of lines of code.
    public var lineCount: Int { code.reduce(0) { $1 == "\n" ? $0 + 1 : $0 } }

    /// The exercise this block belongs to, as starter or as check.
    public var exerciseID: String? {
        switch role {
        case .example: return nil
        case .exercise(let id), .check(let id): return id
        }
    }

    /// Whether the runner executes this block.
    public var runs: Bool {
        switch expectation {
        case .run, .bugCheck, .race: return true
        case .compileFail, .noRun, .ignore: return false
        }
    }
}

/// The standard output a block must print.
public struct ExpectedOutput: Hashable, Sendable {
    public var text: String
    public var fence: SourceLocation

    public init(text: String, fence: SourceLocation) {
        self.text = text
        self.fence = fence
    }
}

/// The reference solution of an exercise, kept out of the learner's chapter in
/// `solutions/<chapter>.md` as a ` ```swift solution=ID ` block.
public struct Solution: Hashable, Sendable {
    public var id: String
    public var fence: SourceLocation
    public var code: String

    public init(id: String, fence: SourceLocation, code: String) {
        self.id = id
        self.fence = fence
        self.code = code
    }
}
