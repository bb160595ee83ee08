import XCTest
@testable import Workbook

final class DependenciesTests: XCTestCase {
    private func blocks(_ codes: [String]) -> ([Block], [Int: ProgramGenerator.SplitCode]) {
        let blocks = codes.enumerated().map {
            Block(index: $0.offset, fence: SourceLocation(file: "c.md", line: 10 * $0.offset + 1), code: $0.element)
        }
        return (blocks, Dictionary(uniqueKeysWithValues: blocks.map { ($0.index, ProgramGenerator.split($0.code)) }))
    }

    func testDeclaredNamesIncludeMembersAndExtendedTypes() {
        let split = ProgramGenerator.split("""
            struct Box { var value = 0; func get() -> Int { let local = 1; return value + local } }
            enum Mode { case fast, slow }
            extension FAST_MUTEX: CustomStringConvertible { var description: String { "m" } }
            let notShared = 1
            """)
        XCTAssertEqual(split.declaredNames, ["Box", "FAST_MUTEX", "Mode", "description",
                                             "fast", "get", "slow", "value"])
    }

    func testABlockDependsOnTheDeclarationsItNamesTransitively() {
        let (all, splits) = blocks([
            "struct Inner { var x = 1 }\n",                 // 0
            "struct Box { var inner = Inner() }\n",          // 1 uses 0
            "extension Box { func twice() -> Int { 2 } }\n", // 2 extends 1
            "let b = Box()\nprint(b)\n",                     // 3 uses 1 → 0, 2
            "func unrelated() {}\n",                         // 4
            "print(\"no names of ours\")\n",                 // 5
        ])
        let dependencies = Dependencies.of(all, declaredBy: all, splits: splits)
        XCTAssertEqual(dependencies[3], [0, 1, 2])
        XCTAssertEqual(dependencies[1], [0, 2], "an extension of a block's own type is a dependency")
        XCTAssertEqual(dependencies[0], [])
        XCTAssertEqual(dependencies[4], [])
        XCTAssertEqual(dependencies[5], [])
    }

    func testNamesInStringsAndCommentsOverApproximate() {
        let (all, splits) = blocks(["func helper() {}\n", "// calls helper later\nprint(\"x\")\n"])
        XCTAssertEqual(Dependencies.of(all, declaredBy: all, splits: splits)[1], [0])
    }

    func testWords() {
        XCTAssertEqual(Dependencies.words("a.b == c_1 +d"), ["a", ".", "b", "==", "c_1", "+", "d"])
    }

    /// Editing one block's declaration re-runs the blocks that use it and nothing else.
    func testEditingADeclarationRerunsOnlyItsDependents() throws {
        let text = """
            # Deps

            ```swift
            func helper() -> Int { 1 }
            ```

            ```swift
            expectEqual(helper(), 1)
            ```

            ```swift
            expectEqual(2 + 2, 4)
            ```
            """
        let first = try fixtureChapter(text)
        let checker = try makeChecker(cache: true, name: "dependencies")
        XCTAssertEqual(checker.check(first).results.map(\.status), [.passed, .passed, .passed])
        var edited = first
        edited.blocks[0].code = "func helper() -> Int { 2 }\n"
        let second = checker.check(edited).results
        XCTAssertEqual(second.map(\.cached), [false, false, true])
        XCTAssertEqual(second.map(\.status), [.passed, .failed, .passed])
    }
}
