import Foundation

/// Checks chapters: compiles each chapter's blocks in one program, isolates blocks that break the
/// build, checks `compile_fail` blocks on their own (up to SIL), runs every runnable block in its own
/// process (in parallel), and reuses cached results for blocks that did not change.
public struct ChapterChecker: Sendable {
    public var compiler: Compiler
    public var runner: BlockRunner
    public var cache: ResultCache?
    /// Where generated programs are kept, for an author who wants to look at them.
    public var workDirectory: String
    /// Replace each exercise starter by its reference solution.
    public var substituteSolutions: Bool
    public var jobs: Int
    /// Compile a chapter's blocks into one program (the default); false compiles each on its own.
    public var batch: Bool

    public init(compiler: Compiler, runner: BlockRunner = BlockRunner(), cache: ResultCache?,
                workDirectory: String, substituteSolutions: Bool,
                jobs: Int = ProcessInfo.processInfo.activeProcessorCount, batch: Bool = true) {
        self.compiler = compiler
        self.runner = runner
        self.cache = cache
        self.workDirectory = workDirectory
        self.substituteSolutions = substituteSolutions
        self.jobs = max(1, jobs)
        self.batch = batch
    }

    /// The blocks as they will be compiled: with solutions substituted when asked for, the
    /// starter's code and place replaced by the solution's, so diagnostics point at the solution.
    func effectiveBlocks(_ chapter: Chapter) -> [Block] {
        guard substituteSolutions else { return chapter.blocks }
        return chapter.blocks.map { block in
            guard case .exercise(let id) = block.role, let solution = chapter.solutions[id] else { return block }
            var substituted = block
            substituted.code = solution.code
            substituted.fence = solution.fence
            return substituted
        }
    }

    /// Checks `chapters`, as many at once as there are jobs (each chapter's compile uses one core),
    /// calling `finished` as each one ends; the results keep the chapters' order.
    public func check(_ chapters: [Chapter], finished: @Sendable (ChapterResult) -> Void = { _ in }) -> [ChapterResult] {
        let results = ResultsBox<ChapterResult>(count: chapters.count)
        DispatchQueue.concurrentPerform(iterations: min(jobs, chapters.count)) { _ in
            while let index = results.claim() {
                let result = check(chapters[index])
                finished(result)
                results.set(index, result)
            }
        }
        return results.values
    }

    public func check(_ chapter: Chapter) -> ChapterResult {
        let blocks = effectiveBlocks(chapter)
        var results: [Int: BlockResult] = [:]
        let compiled = blocks.filter {
            if case .ignore = $0.expectation { return false }
            return true
        }
        // Parsing is the costliest step before the compile, and blocks parse independently.
        let parsed = parallelMap(compiled) { cache?.split($0.code) ?? ProgramGenerator.split($0.code) }
        let splits = Dictionary(uniqueKeysWithValues: zip(compiled.map(\.index), parsed))
        let shared = compiled.filter {
            if case .compileFail = $0.expectation { return false }
            return true
        }
        // A block's cached result stands while the toolchain, the simulator, the chapter's imports
        // and the declarations it depends on are unchanged.
        let imports = shared.flatMap { splits[$0.index]!.imports.map(\.text) }.sorted().joined(separator: "\n")
        let environment = "\(compiler.identity)\n\(compiler.simulator.identity)\n\(imports)"
        let dependencies = Dependencies.of(compiled, declaredBy: shared, splits: splits)
        func sharedDigest(_ block: Block) -> String {
            // A block's index is its position among the chapter's blocks.
            let declarations = (dependencies[block.index] ?? []).map { "\(blocks[$0].fence)\n\(splits[$0]!.declarations)" }
            return ResultCache.sharedDigest(environment: environment, declarations: declarations.joined(separator: "\n"))
        }
        var keys: [Int: String] = [:]
        for block in blocks {
            if case .ignore = block.expectation {
                results[block.index] = BlockResult(chapter: chapter.path, block: block, status: .ignored,
                                                   message: "ignored")
                continue
            }
            let key = ResultCache.key(sharedDigest: sharedDigest(block), block: block)
            keys[block.index] = key
            if let cached = cache?.lookup(key, for: block, chapter: chapter.path) { results[block.index] = cached }
        }

        let build = ChapterBuild(chapter: chapter, splits: splits,
                                 folder: "\(workDirectory)/\(chapter.slug)\(substituteSolutions ? "-solutions" : "")")
        var included = shared.filter { results[$0.index]?.status != .compileError }
        let pending = included.filter { results[$0.index] == nil }
        if batch {
            let compiled = compileBatch(build, declarations: &included, pending: pending, into: &results)
            runCompiled(compiled.blocks, from: compiled.source, build, into: &results)
        } else {
            let declarations = included
            for result in parallelMap(pending, { compileAndRunAlone($0, declarations: declarations, build) }) {
                results[result.block.index] = result
            }
        }

        // compile_fail blocks, each compiled alone (to SIL) against the declarations that compiled.
        let expectFailure = compiled.filter { results[$0.index] == nil && !shared.contains($0) }
        let compiledDeclarations = included
        let judged = parallelMap(expectFailure) { judgeCompileFail($0, declarations: compiledDeclarations, build) }
        for result in judged { results[result.block.index] = result }

        for block in blocks {
            guard let key = keys[block.index], let result = results[block.index], !result.cached else { continue }
            cache?.store(result, under: key)
        }
        return ChapterResult(chapter: chapter, results: blocks.map { results[$0.index]! })
    }

    /// What every compile of one chapter shares.
    struct ChapterBuild {
        var chapter: Chapter
        var splits: [Int: ProgramGenerator.SplitCode]
        /// Where the generated programs go, kept for an author to look at.
        var folder: String

        var moduleName: String { "Chapter_" + String(chapter.slug.map { $0.isLetter || $0.isNumber ? $0 : "_" }) }
    }

    /// Compiles every pending block into one program with the chapter's declarations. When that
    /// fails, the blocks the errors point into are judged `compile_error` and taken out, and the
    /// rest is compiled again, so one broken block never hides the others' results. Returns the
    /// blocks that compiled and the program's source.
    private func compileBatch(_ build: ChapterBuild, declarations included: inout [Block], pending: [Block],
                              into results: inout [Int: BlockResult]) -> (blocks: [Block], source: String) {
        var pending = pending
        var source = ""
        while !pending.isEmpty {
            source = ProgramGenerator.program(declarationBlocks: included, statementBlocks: pending, splits: build.splits)
            let outcome: Compiler.Outcome
            do {
                outcome = try compiler.compile(source: source, moduleName: build.moduleName, in: build.folder,
                                               executable: "\(build.folder)/program")
            } catch {
                for block in pending { results[block.index] = failure(build.chapter, block, .compileError, "\(error)") }
                return ([], source)
            }
            if outcome.succeeded { break }
            let broken = Self.blocksWithErrors(outcome.diagnostics, among: included)
            guard !broken.isEmpty else {
                let summary = outcome.output.split(separator: "\n").prefix(20).joined(separator: "\n")
                for block in pending {
                    results[block.index] = failure(build.chapter, block, .compileError,
                                                   "the chapter program did not compile:\n\(summary)")
                }
                return ([], source)
            }
            for (index, diagnostics) in broken {
                results[index] = compileError(build.chapter, included.first { $0.index == index }!, diagnostics)
            }
            included.removeAll { broken[$0.index] != nil }
            pending.removeAll { broken[$0.index] != nil }
        }
        return (pending, source)
    }

    /// Runs the compiled blocks of `source`'s program in parallel; no_run blocks pass by compiling.
    private func runCompiled(_ blocks: [Block], from source: String, _ build: ChapterBuild,
                             into results: inout [Int: BlockResult]) {
        for block in blocks where !block.runs {
            results[block.index] = BlockResult(chapter: build.chapter.path, block: block, status: .passed,
                                               message: "compiled (not run)")
        }
        let ran = run(blocks.filter(\.runs), of: "\(build.folder)/program", build)
        for result in ran { results[result.block.index] = result }
        rerunTrapsWithDebugInfo(ran, source: source, build, into: &results)
    }

    /// Without batching (`--no-batch`): the block gets a program of its own with the chapter's
    /// declarations, as a per-block doctest tool would build it.
    private func compileAndRunAlone(_ block: Block, declarations: [Block], _ build: ChapterBuild) -> BlockResult {
        let folder = "\(build.folder)/block-\(block.index)"
        let source = ProgramGenerator.program(declarationBlocks: declarations, statementBlocks: [block],
                                              splits: build.splits)
        let outcome: Compiler.Outcome
        do {
            outcome = try compiler.compile(source: source, moduleName: build.moduleName, in: folder,
                                           executable: "\(folder)/program", debugInfo: true)
        } catch {
            return failure(build.chapter, block, .compileError, "\(error)")
        }
        guard outcome.succeeded else {
            let located = Self.blocksWithErrors(outcome.diagnostics, among: declarations + [block]).values.flatMap { $0 }
            var result = compileError(build.chapter, block, located)
            if located.isEmpty {
                result.message = "the block's program did not compile:\n"
                    + outcome.output.split(separator: "\n").prefix(20).joined(separator: "\n")
            }
            return result
        }
        guard block.runs else {
            return BlockResult(chapter: build.chapter.path, block: block, status: .passed, message: "compiled (not run)")
        }
        return run([block], of: "\(folder)/program", build)[0]
    }

    /// Runs `blocks` of `executable` in parallel, then ends the program's block servers.
    private func run(_ blocks: [Block], of executable: String, _ build: ChapterBuild) -> [BlockResult] {
        defer { runner.stopServers(of: executable) }
        return parallelMap(blocks) { runner.run($0, of: executable, chapter: build.chapter.path) }
    }

    /// Debug info costs about a fifth of every compile and only matters when a block traps (the
    /// backtrace then names its chapter line), so trapped blocks are run again from a `-g` build;
    /// the simulation is deterministic, so they trap the same way.
    private func rerunTrapsWithDebugInfo(_ ran: [BlockResult], source: String, _ build: ChapterBuild,
                                         into results: inout [Int: BlockResult]) {
        let trapped = ran.filter { $0.status == .trap }.map(\.block)
        guard !trapped.isEmpty else { return }
        let debugExecutable = "\(build.folder)/program-g"
        guard let outcome = try? compiler.compile(source: source, moduleName: build.moduleName,
                                                  in: "\(build.folder)/debug", executable: debugExecutable,
                                                  debugInfo: true),
              outcome.succeeded else { return }
        for result in run(trapped, of: debugExecutable, build) {
            results[result.block.index] = result
        }
    }

    private func judgeCompileFail(_ block: Block, declarations: [Block], _ build: ChapterBuild) -> BlockResult {
        guard case .compileFail(let expected) = block.expectation else { preconditionFailure() }
        let chapter = build.chapter
        let source = ProgramGenerator.program(declarationBlocks: declarations + [block], statementBlocks: [block],
                                              splits: build.splits)
        let start = Date()
        let outcome: Compiler.Outcome
        do {
            outcome = try compiler.compile(source: source, moduleName: build.moduleName,
                                           in: "\(build.folder)/compile-fail-\(block.index)", executable: nil)
        } catch {
            return failure(chapter, block, .failed, "\(error)")
        }
        var result = BlockResult(chapter: chapter.path, block: block, status: .passed,
                                 duration: Date().timeIntervalSince(start), diagnostics: outcome.diagnostics)
        let errors = outcome.diagnostics.filter { $0.severity == .error }
        if outcome.succeeded {
            result.status = .failed
            result.message = "compiled without errors, but the block is marked compile_fail"
        } else if let expected, !errors.contains(where: { $0.message.contains(expected) }) {
            result.status = .failed
            result.message = "failed to compile, but no error contains \"\(expected)\"; the errors were:\n"
                + errors.map(\.description).joined(separator: "\n")
        } else {
            result.message = errors.first.map { "failed to compile as expected: \($0.message)" } ?? "failed to compile as expected"
        }
        return result
    }

    /// Error and note diagnostics grouped by the block whose lines they fall in.
    static func blocksWithErrors(_ diagnostics: [Diagnostic], among blocks: [Block]) -> [Int: [Diagnostic]] {
        var owner: [Int: [Diagnostic]] = [:]
        var erroneous: Set<Int> = []
        for diagnostic in diagnostics {
            guard let block = blocks.first(where: {
                $0.fence.file == diagnostic.location.file
                    && ($0.firstCodeLine..<($0.firstCodeLine + max($0.lineCount, 1))).contains(diagnostic.location.line)
            }) else { continue }
            owner[block.index, default: []].append(diagnostic)
            if diagnostic.severity == .error { erroneous.insert(block.index) }
        }
        return owner.filter { erroneous.contains($0.key) }
    }

    private func failure(_ chapter: Chapter, _ block: Block, _ status: BlockStatus, _ message: String) -> BlockResult {
        BlockResult(chapter: chapter.path, block: block, status: status, message: message)
    }

    private func compileError(_ chapter: Chapter, _ block: Block, _ diagnostics: [Diagnostic]) -> BlockResult {
        let errors = diagnostics.filter { $0.severity == .error }
        var result = failure(chapter, block, .compileError, errors.map(\.description).joined(separator: "\n"))
        result.diagnostics = diagnostics
        return result
    }

    private func parallelMap<T: Sendable>(_ items: [Block], _ body: @Sendable (Block) -> T) -> [T] {
        guard !items.isEmpty else { return [] }
        let output = ResultsBox<T>(count: items.count)
        DispatchQueue.concurrentPerform(iterations: min(jobs, items.count)) { _ in
            while let index = output.claim() { output.set(index, body(items[index])) }
        }
        return output.values
    }
}

/// Slots written by parallel workers, one slot per item.
private final class ResultsBox<T>: @unchecked Sendable {
    private var slots: [T?]
    private var claimed = 0
    private let lock = NSLock()

    /// The next unclaimed slot, so a slow item never holds up the items behind it.
    func claim() -> Int? {
        lock.lock()
        defer { lock.unlock() }
        guard claimed < slots.count else { return nil }
        claimed += 1
        return claimed - 1
    }

    init(count: Int) { slots = Array(repeating: nil, count: count) }

    func set(_ index: Int, _ value: T) {
        lock.lock()
        slots[index] = value
        lock.unlock()
    }

    var values: [T] { slots.map { $0! } }
}
