import ArgumentParser
import Foundation
import Workbook

/// `workbook check`: checks chapters, prints the results and writes the report and course pages.
struct CheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Check chapters: compile and run every swift block, grade every exercise.",
        discussion: """
            Without --solutions this grades the exercises as the chapters stand (a learner's edits);
            with --solutions DIR each exercise starter is replaced by its reference solution from
            DIR/<chapter file name>, which is how an author checks the course itself.
            Exits 0 when every block passed, 1 when any failed, 2 when a chapter is malformed.
            """
    )

    @Argument(help: "Chapter files or folders of chapters (their *.md files).")
    var paths: [String] = ["chapters"]

    @Option(name: .long, help: ArgumentHelp("Substitute the reference solutions from this folder.", valueName: "dir"))
    var solutions: String?

    @Option(name: .long, help: ArgumentHelp("Folder for the report, the pages, the cache and generated programs.", valueName: "dir"))
    var buildDir: String = "build"

    @Option(name: .long, help: ArgumentHelp("Also write the results as JSON (schema: docs/results-schema.md).", valueName: "path"))
    var json: String?

    @Option(name: .long, help: ArgumentHelp("Also write the results as JUnit XML.", valueName: "path"))
    var junit: String?

    @Option(name: .long, help: "Blocks to run at once (default: the number of cores).")
    var jobs: Int = ProcessInfo.processInfo.activeProcessorCount

    @Flag(name: .long, help: "Compile and run every block even when a cached result exists.")
    var noCache = false

    @Flag(name: .long, help: "Compile each block in a program of its own instead of one per chapter (slower; for comparison).")
    var noBatch = false

    @Flag(name: .long, help: "Show the hidden check blocks in the course pages.")
    var showChecks = false

    @Flag(name: .long, help: "Show the reference solutions in the course pages (needs --solutions).")
    var showSolutions = false

    func validate() throws {
        if showSolutions && solutions == nil { throw ValidationError("--show-solutions needs --solutions DIR") }
        if jobs < 1 { throw ValidationError("--jobs must be at least 1") }
    }

    func run() throws {
        let chapters: [Chapter]
        do {
            chapters = try ChapterLoader.load(try ChapterLoader.chapterFiles(paths), solutionsFolder: solutions)
        } catch {
            FileHandle.standardError.write(Data((error.description + "\n").utf8))
            throw ExitCode(2)
        }
        guard !chapters.isEmpty else {
            FileHandle.standardError.write(Data("workbook: no chapters (*.md) in \(paths.joined(separator: ", "))\n".utf8))
            throw ExitCode(2)
        }
        let checker: ChapterChecker
        do {
            let compiler = try Compiler(simulator: try SimulatorBuild.locate(), moduleCache: "\(buildDir)/cache/modules")
            checker = ChapterChecker(compiler: compiler,
                                     cache: noCache ? nil : ResultCache(directory: "\(buildDir)/cache/results"),
                                     workDirectory: "\(buildDir)/programs", substituteSolutions: solutions != nil,
                                     jobs: jobs, batch: !noBatch)
        } catch {
            FileHandle.standardError.write(Data("workbook: \(error)\n".utf8))
            throw ExitCode(2)
        }
        let learnerMode = solutions == nil
        let printLock = NSLock()
        let results = checker.check(chapters) { result in
            printLock.lock()
            print(TerminalSummary.chapterReport(result, learnerMode: learnerMode))
            fflush(nil)
            printLock.unlock()
        }
        try writeOutputs(results)
        print(TerminalSummary.closingLine(results))
        if learnerMode, let progress = TerminalSummary.progressLine(results) { print(progress) }
        if results.flatMap(\.results).contains(where: { !$0.status.isSuccess }) { throw ExitCode(1) }
    }

    private func writeOutputs(_ results: [ChapterResult]) throws {
        let report = "\(buildDir)/report"
        let pages = "\(buildDir)/book"
        try writeHTMLReport(results, to: report)
        try writeCoursePages(results, options: PageOptions(showChecks: showChecks, showSolutions: showSolutions), to: pages)
        if let json { try jsonReport(results).write(toFile: json, atomically: true, encoding: .utf8) }
        if let junit { try junitReport(results).write(toFile: junit, atomically: true, encoding: .utf8) }
        print("report: \(report)/index.html  pages: \(pages)/index.html")
    }
}
