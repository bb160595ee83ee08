import XCTest
@testable import Workbook

/// The course itself is a test: with the reference solutions every block passes; with the starters
/// every check of every exercise fails while every other block still passes. Together these prove
/// that no exercise's checks are vacuous.
final class CourseTests: XCTestCase {
    private func loadCourse() throws -> [Chapter] {
        let files = try ChapterLoader.chapterFiles(["\(packageRoot)/chapters"])
        XCTAssertGreaterThanOrEqual(files.count, 2, "the course has chapters")
        return try ChapterLoader.load(files, solutionsFolder: "\(packageRoot)/solutions")
    }

    func testEveryBlockPassesWithTheReferenceSolutions() throws {
        let checker = try makeChecker(substituteSolutions: true, name: "course-solutions")
        for chapter in try loadCourse() {
            let result = checker.check(chapter)
            XCTAssertFalse(result.results.isEmpty, "\(chapter.path) has checked blocks")
            for block in result.results where !block.status.isSuccess {
                XCTFail("\(block.block.fence): \(block.status.rawValue): \(block.message)")
            }
            XCTAssertGreaterThanOrEqual(result.exercises.count, 3, "\(chapter.path) has at least three exercises")
        }
    }

    func testEveryExerciseFailsOnItsStarterAndNothingElseDoes() throws {
        let checker = try makeChecker(substituteSolutions: false, name: "course-starters")
        for chapter in try loadCourse() {
            let result = checker.check(chapter)
            for block in result.results {
                switch block.block.role {
                case .example:
                    XCTAssertTrue(block.status.isSuccess,
                                  "\(block.block.fence) is not part of an exercise and must pass with the starters: \(block.status.rawValue): \(block.message)")
                case .check(let id):
                    // Every check, not just one per exercise: a learner who has written nothing must
                    // not see "2 of 3 checks passed" (docs/authoring.md, "The rule").
                    XCTAssertFalse(block.status.isSuccess,
                                   "\(block.block.fence): a check of exercise '\(id)' passes on its starter")
                case .exercise:
                    break
                }
            }
            for exercise in result.exercises {
                XCTAssertFalse(exercise.passed, "\(chapter.path): exercise '\(exercise.id)' passes on its starter")
            }
        }
    }

    /// What every chapter owes a learner besides its exercises (issue 4's bar): a hint for each
    /// exercise, at least one example that crashes the simulated kernel on purpose, at least one
    /// expected-output block, and links to Microsoft's documentation.
    func testEveryChapterHasHintsCrashesOutputsAndCitations() throws {
        for chapter in try loadCourse() {
            let lines = chapter.markdown.components(separatedBy: "\n")
            for starter in chapter.blocks {
                guard case .exercise(let id) = starter.role,
                      let check = chapter.blocks.first(where: { $0.role == .check(id: id) }) else { continue }
                // The hint belongs to the exercise: between its starter and its first check.
                let between = lines[starter.fence.line..<check.fence.line]
                XCTAssertTrue(between.contains { $0.hasPrefix("> **Hint:**") }, "\(starter.fence): exercise '\(id)' has no hint")
            }
            XCTAssertTrue(chapter.blocks.contains { if case .bugCheck = $0.expectation { return true }; return false },
                          "\(chapter.path) has no bug-check example")
            XCTAssertTrue(chapter.blocks.contains { $0.expectedOutput != nil }, "\(chapter.path) has no output block")
            XCTAssertTrue(chapter.markdown.contains("https://learn.microsoft.com/"),
                          "\(chapter.path) cites no Microsoft documentation")
        }
    }
}
