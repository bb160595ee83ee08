import Foundation

/// Checks chapters: compiles each chapter's blocks in one program, isolates blocks that break the
/// build, type-checks `compile_fail` blocks on their own, runs every runnable block in its own
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

    public init(compiler: Compiler, runner: BlockRunner = BlockRunner(), cache: ResultCache?,
                workDirectory: String, substituteSolutions: Bool,
                jobs: Int = ProcessInfo.processInfo.activeProcessorCount) {
        self.compiler = compiler
        self.runner = runner
        self.cache = cache
        self.workDirectory = workDirectory
        self.substituteSolutions = substituteSolutions
        self.jobs = max(1, jobs)
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
        var splits: [Int: ProgramGenerator.SplitCode] = [:]
        for block in compiled { splits[block.index] = cache?.split(block.code) ?? ProgramGenerator.split(block.code) }
        let shared = compiled.filter {
            if case .compileFail = $0.expectation { return false }
            return true
        }
        let environment = "\(compiler.identity)\n\(compiler.simulator.identity)"
        let declarations = shared.compactMap { block -> String? in
            let split = splits[block.index]!
            guard split.hasDeclarations || !split.imports.isEmpty else { return nil }
            return "\(block.fence)\n\(split.imports.map(\.text).joined(separator: "\n"))\n\(split.declarations)"
        }.joined(separator: "\n")
        let chapterDigest = ResultCache.chapterDigest(environment: environment, declarations: declarations)
        var keys: [Int: String] = [:]
        for block in blocks {
            if case .ignore = block.expectation {
                results[block.index] = BlockResult(chapter: chapter.path, block: block, status: .ignored,
                                                   message: "ignored")
                continue
            }
            let key = ResultCache.key(chapterDigest: chapterDigest, block: block)
            keys[block.index] = key
            if let cached = cache?.lookup(key, for: block, chapter: chapter.path) { results[block.index] = cached }
        }

        let folder = "\(workDirectory)/\(chapter.slug)\(substituteSolutions ? "-solutions" : "")"
        let moduleName = "Chapter_" + String(chapter.slug.map { $0.isLetter || $0.isNumber ? $0 : "_" })

        // The build: every shared block's declarations, a function for each block still to judge.
        var included = shared.filter { results[$0.index]?.status != .compileError }
        var pending = included.filter { results[$0.index] == nil }
        let executable = "\(folder)/program"
        var source = ""
        while !pending.isEmpty {
            source = ProgramGenerator.program(declarationBlocks: included, statementBlocks: pending, splits: splits)
            let outcome: Compiler.Outcome
            do {
                outcome = try compiler.compile(source: source, moduleName: moduleName, in: folder, executable: executable)
            } catch {
                for block in pending { results[block.index] = failure(chapter, block, .compileError, "\(error)") }
                break
            }
            if outcome.succeeded { break }
            let broken = Self.blocksWithErrors(outcome.diagnostics, among: included)
            guard !broken.isEmpty else {
                let summary = outcome.output.split(separator: "\n").prefix(20).joined(separator: "\n")
                for block in pending {
                    results[block.index] = failure(chapter, block, .compileError,
                                                   "the chapter program did not compile:\n\(summary)")
                }
                pending = []
                break
            }
            for (index, diagnostics) in broken {
                let block = included.first { $0.index == index }!
                let errors = diagnostics.filter { $0.severity == .error }
                var result = failure(chapter, block, .compileError,
                                     errors.map(\.description).joined(separator: "\n"))
                result.diagnostics = diagnostics
                results[index] = result
            }
            included.removeAll { broken[$0.index] != nil }
            pending.removeAll { broken[$0.index] != nil }
        }

        // Run what compiled; no_run blocks pass by compiling.
        let toRun = pending.filter(\.runs)
        for block in pending where !block.runs {
            results[block.index] = BlockResult(chapter: chapter.path, block: block, status: .passed,
                                               message: "compiled (not run)")
        }
        let ran = parallelMap(toRun) { runner.run($0, of: executable, chapter: chapter.path) }
        for result in ran { results[result.block.index] = result }
        rerunTrapsWithDebugInfo(ran, source: source, moduleName: moduleName, folder: folder, chapter: chapter,
                                into: &results)

        // compile_fail blocks, each type-checked alone against the declarations that compiled.
        let expectFailure = compiled.filter { results[$0.index] == nil && !shared.contains($0) }
        let (compiledDeclarations, allSplits) = (included, splits)
        let judged = parallelMap(expectFailure) { block in
            judgeCompileFail(block, chapter: chapter, declarations: compiledDeclarations, splits: allSplits,
                             folder: "\(folder)/compile-fail-\(block.index)", moduleName: moduleName)
        }
        for result in judged { results[result.block.index] = result }

        for block in blocks {
            guard let key = keys[block.index], let result = results[block.index], !result.cached else { continue }
            cache?.store(result, under: key)
        }
        return ChapterResult(chapter: chapter, results: blocks.map { results[$0.index]! })
    }

    /// Debug info costs about a fifth of every compile and only matters when a block traps (the
    /// backtrace then names its chapter line), so trapped blocks are run again from a `-g` build;
    /// the simulation is deterministic, so they trap the same way.
    private func rerunTrapsWithDebugInfo(_ ran: [BlockResult], source: String, moduleName: String, folder: String,
                                         chapter: Chapter, into results: inout [Int: BlockResult]) {
        let trapped = ran.filter { $0.status == .trap }.map(\.block)
        guard !trapped.isEmpty else { return }
        let debugExecutable = "\(folder)/program-g"
        guard let outcome = try? compiler.compile(source: source, moduleName: moduleName, in: "\(folder)/debug",
                                                  executable: debugExecutable, debugInfo: true),
              outcome.succeeded else { return }
        for result in parallelMap(trapped, { runner.run($0, of: debugExecutable, chapter: chapter.path) }) {
            results[result.block.index] = result
        }
    }

    private func judgeCompileFail(_ block: Block, chapter: Chapter, declarations: [Block],
                                  splits: [Int: ProgramGenerator.SplitCode], folder: String,
                                  moduleName: String) -> BlockResult {
        guard case .compileFail(let expected) = block.expectation else { preconditionFailure() }
        let source = ProgramGenerator.program(declarationBlocks: declarations + [block], statementBlocks: [block],
                                              splits: splits)
        let start = Date()
        let outcome: Compiler.Outcome
        do {
            outcome = try compiler.compile(source: source, moduleName: moduleName, in: folder, executable: nil)
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
