import XCTest
@testable import Workbook

final class TerminalSummaryTests: XCTestCase {
    /// Exercise `lock` (starter at line 3) fails two of its three checks; exercise `wait` is solved.
    static func course() -> [ChapterResult] {
        let path = "chapters/01-x.md"
        func block(_ index: Int, _ line: Int, _ role: BlockRole) -> Block {
            Block(index: index, fence: SourceLocation(file: path, line: line), code: "x()\n", role: role)
        }
        let blocks = [block(0, 3, .exercise(id: "lock")), block(1, 10, .check(id: "lock")),
                      block(2, 20, .check(id: "lock")), block(3, 30, .check(id: "lock")),
                      block(4, 40, .exercise(id: "wait")), block(5, 50, .check(id: "wait"))]
        let statuses: [BlockStatus] = [.passed, .failed, .passed, .bugCheck, .passed, .passed]
        let chapter = Chapter(path: path, title: "X", markdown: "# X\n", blocks: blocks)
        return [ChapterResult(chapter: chapter, results: zip(blocks, statuses).map {
            BlockResult(chapter: path, block: $0, status: $1, message: "why \($0.fence.line)")
        })]
    }

    func testALearnerSeesOneFailurePerUnsolvedExercise() {
        let report = TerminalSummary.chapterReport(Self.course()[0], learnerMode: true)
        XCTAssertTrue(report.contains("chapters/01-x.md:10: exercise 'lock' not solved yet: failed"), report)
        XCTAssertTrue(report.contains("(2 of its 3 checks fail)"), report)
        XCTAssertFalse(report.contains("chapters/01-x.md:30"), report)
        XCTAssertTrue(report.contains("exercises 1/2 solved"), report)
    }

    func testAnAuthorSeesEveryFailingCheck() {
        let report = TerminalSummary.chapterReport(Self.course()[0], learnerMode: false)
        XCTAssertTrue(report.contains("chapters/01-x.md:10: check of exercise 'lock': failed"), report)
        XCTAssertTrue(report.contains("chapters/01-x.md:30: check of exercise 'lock': bug check"), report)
        XCTAssertFalse(report.contains("checks fail)"), report)
    }

    func testProgressNamesTheFirstUnsolvedExercise() {
        XCTAssertEqual(TerminalSummary.progressLine(Self.course()),
                       "exercises: 1 of 2 solved; next: 'lock' at chapters/01-x.md:3")
        var solved = Self.course()
        solved[0].results = solved[0].results.map { var r = $0; r.status = .passed; return r }
        XCTAssertEqual(TerminalSummary.progressLine(solved), "exercises: all 2 solved")
    }
}
