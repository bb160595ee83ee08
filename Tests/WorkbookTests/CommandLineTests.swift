import XCTest
@testable import Workbook

/// The `workbook` command as a user runs it: exit statuses, messages and the files it writes.
final class CommandLineTests: XCTestCase {
    private func workbook(_ arguments: [String]) throws -> ChildProcess.Outcome {
        let executable = "\(try SimulatorBuild.locate().directory)/workbook"
        return try ChildProcess(executable: executable, arguments: arguments, timeLimit: 120).run()
    }

    private func chapterFile(_ markdown: String) throws -> String {
        let path = "\(try temporaryFolder())/01-cli.md"
        try markdown.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    func testMalformedChapterNamesFileAndLineAndExitsTwo() throws {
        let path = try chapterFile("# CLI\n\n```swift no-run\nlet a = 1\n```\n\n```output\nx\n```\n")
        let outcome = try workbook(["check", path, "--build-dir", try temporaryFolder()])
        XCTAssertEqual(outcome.ending, .exited(2))
        XCTAssertTrue(outcome.stderr.contains("\(path):3: error: unknown attribute 'no-run' (did you mean 'no_run'?)"), outcome.stderr)
        XCTAssertFalse(outcome.stderr.contains("Fatal error"), "a clear error, never a trap")
    }

    func testPassingChapterWritesEveryOutputAndExitsZero() throws {
        let path = try chapterFile("# CLI\n\n```swift\nprint(KeGetCurrentIrql())\n```\n\n```output\n0\n```\n\n```swift ignore\nnope\n```\n")
        let build = try temporaryFolder()
        let outcome = try workbook(["check", path, "--build-dir", build, "--json", "\(build)/r.json", "--junit", "\(build)/r.xml"])
        XCTAssertEqual(outcome.ending, .exited(0), outcome.stdout + outcome.stderr)
        let lines = outcome.stdout.split(separator: "\n")
        XCTAssertEqual(lines.last, "1 passed, 0 failed, 1 skipped")
        XCTAssertTrue(lines.first?.hasPrefix("ok   \(path): 1 passed, 1 ignored") ?? false, outcome.stdout)
        for file in ["report/index.html", "book/index.html", "book/01-cli.html", "r.json", "r.xml"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: "\(build)/\(file)"), file)
        }
    }

    func testFailingChapterExitsOneWithTheReason() throws {
        let path = try chapterFile("# CLI\n\n```swift\nexpect(KeGetCurrentIrql() == HIGH_LEVEL, \"too low\")\n```\n")
        let outcome = try workbook(["check", path, "--build-dir", try temporaryFolder()])
        XCTAssertEqual(outcome.ending, .exited(1))
        XCTAssertTrue(outcome.stdout.contains("\(path):3: block: failed"), outcome.stdout)
        XCTAssertTrue(outcome.stdout.contains("\(path):4: too low"), outcome.stdout)
        XCTAssertTrue(outcome.stdout.hasSuffix("0 passed, 1 failed\n"), outcome.stdout)
    }

    func testUsageErrors() throws {
        let empty = try temporaryFolder()
        let none = try workbook(["check", empty, "--build-dir", try temporaryFolder()])
        XCTAssertEqual(none.ending, .exited(2))
        XCTAssertTrue(none.stderr.contains("no chapters"), none.stderr)
        let missing = try workbook(["check", "\(empty)/nowhere.md"])
        XCTAssertEqual(missing.ending, .exited(2))
        XCTAssertTrue(missing.stderr.contains("\(empty)/nowhere.md: error: no such file or folder"), missing.stderr)
        let flags = try workbook(["check", empty, "--show-solutions"])
        XCTAssertEqual(flags.ending, .exited(64))
        XCTAssertTrue(flags.stderr.contains("--show-solutions needs --solutions"), flags.stderr)
    }
}
