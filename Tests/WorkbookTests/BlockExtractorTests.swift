import XCTest
@testable import Workbook

final class BlockExtractorTests: XCTestCase {
    private func extract(_ markdown: String) throws -> Chapter {
        try BlockExtractor.chapter(path: "chapters/t.md", markdown: markdown)
    }

    /// The errors `markdown` produces, as `line: message`.
    private func errors(_ markdown: String) -> [String] {
        do throws(ChapterErrors) {
            _ = try BlockExtractor.chapter(path: "chapters/t.md", markdown: markdown)
            return []
        } catch {
            return error.errors.map { "\($0.location.line): \($0.message)" }
        }
    }

    func testFindsSwiftBlocksWithFenceLinesAndCode() throws {
        let chapter = try extract("""
            # Title here

            Prose.

            ```swift
            let a = 1
            ```

            ```c
            not checked
            ```

            - a list item

              ```swift no_run
              let b = 2
              ```

            ~~~swift
            let c = 3
            ~~~

                indented code is prose
            """)
        XCTAssertEqual(chapter.title, "Title here")
        XCTAssertEqual(chapter.blocks.map(\.fence.line), [5, 15, 19])
        XCTAssertEqual(chapter.blocks.map(\.code), ["let a = 1\n", "let b = 2\n", "let c = 3\n"])
        XCTAssertEqual(chapter.blocks.map(\.firstCodeLine), [6, 16, 20])
        XCTAssertEqual(chapter.blocks[1].expectation, .noRun)
        XCTAssertEqual(chapter.blocks.map(\.index), [0, 1, 2])
    }

    func testAttributes() throws {
        let chapter = try extract("""
            ```swift bugcheck=DRIVER_IRQL_NOT_LESS_OR_EQUAL verifier=off timeout=2.5 processors=4 seed=7
            ```

            ```swift bugcheck=0xd1
            ```

            ```swift bugcheck
            ```

            ```swift compile_fail="expected type"
            ```

            ```swift ignore hidden
            ```

            ```swift exercise=ex-1
            ```

            ```swift check=ex-1
            ```
            """)
        let blocks = chapter.blocks
        XCTAssertEqual(blocks[0].expectation, .bugCheck(code: 0xD1))
        XCTAssertEqual(blocks[0].options.verifier, false)
        XCTAssertEqual(blocks[0].options.timeoutSeconds, 2.5)
        XCTAssertEqual(blocks[0].options.processors, 4)
        XCTAssertEqual(blocks[0].options.seed, 7)
        XCTAssertEqual(blocks[1].expectation, .bugCheck(code: 0xD1))
        XCTAssertEqual(blocks[2].expectation, .bugCheck(code: nil))
        XCTAssertEqual(blocks[3].expectation, .compileFail(containing: "expected type"))
        XCTAssertEqual(blocks[4].expectation, .ignore)
        XCTAssertTrue(blocks[4].hidden)
        XCTAssertEqual(blocks[5].role, .exercise(id: "ex-1"))
        XCTAssertFalse(blocks[5].hidden)
        XCTAssertEqual(blocks[6].role, .check(id: "ex-1"))
        XCTAssertTrue(blocks[6].hidden, "checks are hidden from the pages by default")
    }

    func testScheduleExplorationAttributes() throws {
        let blocks = try extract("""
            ```swift schedules=200 strategy=pct seed=5
            ```

            ```swift strategy=random
            ```

            ```swift
            ```
            """).blocks
        XCTAssertEqual(blocks[0].options.schedules, 200)
        XCTAssertEqual(blocks[0].options.strategy, .pct)
        XCTAssertEqual(blocks[0].options.seed, 5)
        XCTAssertEqual(blocks[1].options.strategy, .random)
        XCTAssertEqual(blocks[2].options.schedules, 1, "one schedule unless asked")
        XCTAssertEqual(blocks[2].options.strategy, .random)
    }

    func testScheduleExplorationAttributeErrorsNameTheirLine() {
        XCTAssertEqual(errors("```swift schedules=0\n```"), ["1: schedules must be a whole number from 1 to 100000"])
        XCTAssertEqual(errors("text\n\n```swift schedules=many\n```"), ["3: schedules must be a whole number from 1 to 100000"])
        XCTAssertEqual(errors("```swift schedules\n```"), ["1: 'schedules' needs a value, e.g. schedules=200"])
        XCTAssertEqual(errors("```swift strategy=dfs\n```"), ["1: strategy must be 'random' or 'pct'"])
        XCTAssertEqual(errors("```swift strategy\n```"), ["1: 'strategy' needs a value, e.g. strategy=pct"])
        XCTAssertEqual(errors("```swift schedules=2 schedules=3\n```"), ["1: attribute 'schedules' given twice"])
    }

    func testOutputBlockAttachesToThePrecedingSwiftBlock() throws {
        let chapter = try extract("""
            ```swift
            print("hi")
            ```

            It prints:

            ```output
            hi
            ```
            """)
        XCTAssertEqual(chapter.blocks.first?.expectedOutput?.text, "hi\n")
        XCTAssertEqual(chapter.blocks.first?.expectedOutput?.fence.line, 7)
    }

    func testEveryErrorNamesItsLine() {
        XCTAssertEqual(errors("""
            ```swift no-run
            ```
            """), ["1: unknown attribute 'no-run' (did you mean 'no_run'?)"])
        XCTAssertTrue(errors("```swift frobnicate\n```")[0].hasPrefix("1: unknown attribute 'frobnicate'; known attributes: bugcheck, "))
        XCTAssertEqual(errors("text\n\n```output\nx\n```"), ["3: output block with no swift block right before it"])
        XCTAssertEqual(errors("```c\n```\n\n```output\nx\n```"), ["4: output block with no swift block right before it"])
        XCTAssertEqual(errors("```swift no_run\n```\n```output\nx\n```"),
                       ["3: output block follows the block at line 1, which is not run"])
        XCTAssertEqual(errors("```swift\n```\n```output\n```\n```output\n```"),
                       ["5: output block with no swift block right before it"])
        XCTAssertTrue(errors("```swift bugcheck=NOT_A_BUGCHECK\n```")[0].hasPrefix("1: unknown bug check 'NOT_A_BUGCHECK': use its documented name"))
        XCTAssertEqual(errors("```swift no_run ignore\n```"),
                       ["1: 'ignore' conflicts with 'no_run': a block has one expected outcome"])
        XCTAssertEqual(errors("```swift timeout=0\n```"), ["1: timeout must be a number of seconds between 0 and 600"])
        XCTAssertEqual(errors("```swift seed=-1\n```"), ["1: seed must be a non-negative whole number"])
        XCTAssertEqual(errors("```swift verifier=maybe\n```"), ["1: verifier must be 'on' or 'off'"])
        XCTAssertEqual(errors("```swift no_run no_run\n```"), ["1: attribute 'no_run' given twice"])
        XCTAssertEqual(errors("```swift exercise\n```"), ["1: 'exercise' needs a value, e.g. exercise=fast-mutex-init"])
        XCTAssertEqual(errors("```swift compile_fail=\"x\n```"), ["1: malformed info string 'swift compile_fail=\"x': unterminated quoted value of 'compile_fail'"])
        XCTAssertEqual(errors("```swift exercise=a check=a\n```"),
                       ["1: a block is either an exercise starter or a check, not both"])
        XCTAssertEqual(errors("```swift exercise=a bugcheck\n```"),
                       ["1: an exercise starter cannot also be 'bugcheck': its checks grade it"])
        XCTAssertEqual(errors("```swift exercise=a/b\n```"),
                       ["1: exercise ID 'a/b' may use only letters, digits, '-' and '_'"])
        XCTAssertEqual(errors("```swift solution=a\n```"),
                       ["1: unknown attribute 'solution' (solutions live in the solutions folder, not in the chapter)"])
    }

    func testUnclosedFenceIsAnError() {
        XCTAssertEqual(errors("# T\n\n```swift\nlet a = 1\n\nMore prose.\n"),
                       ["3: this code fence is never closed, so it swallows the rest of its section"])
        XCTAssertEqual(errors("> ```swift\n> let a = 1\n> ```\n\n- ```c\n  x\n  ```\n"), [], "closed inside containers")
    }

    func testExerciseConsistency() {
        XCTAssertEqual(errors("""
            ```swift exercise=a
            ```
            ```swift check=a
            ```
            ```swift exercise=a
            ```
            """), ["5: duplicate exercise 'a' (first at line 1)"])
        XCTAssertEqual(errors("```swift check=ghost\n```"),
                       ["1: check for exercise 'ghost', but the chapter has no 'exercise=ghost' block"])
        XCTAssertEqual(errors("```swift exercise=lonely\n```"),
                       ["1: exercise 'lonely' has no 'check=lonely' block to grade it"])
    }

    func testAllErrorsOfAChapterAreReportedTogether() {
        let found = errors("""
            ```swift bogus
            ```

            ```swift timeout=x
            ```
            """)
        XCTAssertEqual(found.map { $0.prefix(2) }, ["1:", "4:"])
    }

    func testSolutionsFile() throws {
        let solutions = try BlockExtractor.solutions(path: "solutions/t.md", markdown: """
            # Solutions

            ```swift solution=a
            let x = 1
            ```
            """)
        XCTAssertEqual(solutions["a"]?.code, "let x = 1\n")
        XCTAssertEqual(solutions["a"]?.fence, SourceLocation(file: "solutions/t.md", line: 3))
        XCTAssertThrowsError(try BlockExtractor.solutions(path: "s.md", markdown: "```swift\n```")) { error in
            XCTAssertEqual((error as? ChapterErrors)?.errors.first?.message,
                           "a swift block in a solutions file must be exactly 'swift solution=ID'")
        }
        XCTAssertThrowsError(try BlockExtractor.solutions(path: "s.md", markdown: "```swift solution=a\n```\n```swift solution=a\n```")) { error in
            XCTAssertEqual((error as? ChapterErrors)?.errors.first?.description, "s.md:3: error: duplicate solution 'a' (first at line 1)")
        }
    }

    func testSolutionsMustMatchExercises() throws {
        let folder = try temporaryFolder()
        try "```swift solution=other\n```\n".write(toFile: "\(folder)/t.md", atomically: true, encoding: .utf8)
        let chapter = try extract("```swift exercise=a\n```\n```swift check=a\n```\n")
        XCTAssertThrowsError(try ChapterLoader.solutions(for: chapter, in: folder)) { error in
            let messages = (error as? ChapterErrors)?.errors.map(\.description) ?? []
            XCTAssertEqual(messages, [
                "chapters/t.md:1: error: exercise 'a' has no 'swift solution=a' block in \(folder)/t.md",
                "\(folder)/t.md:1: error: solution 'other' matches no exercise in chapters/t.md",
            ])
        }
        try FileManager.default.removeItem(atPath: "\(folder)/t.md")
        XCTAssertThrowsError(try ChapterLoader.solutions(for: chapter, in: folder)) { error in
            XCTAssertEqual((error as? ChapterErrors)?.errors.first?.message,
                           "exercise 'a' has no solution: \(folder)/t.md does not exist")
        }
    }

    func testMissingChapterFileIsAnError() {
        XCTAssertThrowsError(try ChapterLoader.chapterFiles(["no/such/chapter.md"])) { error in
            XCTAssertEqual((error as? ChapterErrors)?.description, "no/such/chapter.md: error: no such file or folder")
        }
    }
}

func temporaryFolder() throws -> String {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("workbook-test-\(UUID().uuidString)").path
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}
