import XCTest
@testable import Workbook

final class ProgramGeneratorTests: XCTestCase {
    func testSplitKeepsLineStructureAndSeparatesDeclarations() {
        let code = """
            import Dispatch
            struct Box { var value = 0 }
            let box = Box()
            func helper() -> Int { 1 }
            print(box.value + helper())

            """
        let split = ProgramGenerator.split(code)
        XCTAssertEqual(split.imports, [.init(line: 1, text: "import Dispatch")])
        let declarationLines = split.declarations.split(separator: "\n", omittingEmptySubsequences: false)
        let statementLines = split.statements.split(separator: "\n", omittingEmptySubsequences: false)
        XCTAssertEqual(declarationLines.count, code.split(separator: "\n", omittingEmptySubsequences: false).count)
        XCTAssertEqual(statementLines.count, declarationLines.count)
        XCTAssertEqual(declarationLines[1], "struct Box { var value = 0 }")
        XCTAssertEqual(declarationLines[3], "func helper() -> Int { 1 }")
        XCTAssertTrue(declarationLines[2].allSatisfy(\.isWhitespace), "let stays in the block")
        XCTAssertTrue(declarationLines[0].allSatisfy(\.isWhitespace), "imports are hoisted separately")
        XCTAssertEqual(statementLines[2], "let box = Box()")
        XCTAssertEqual(statementLines[4], "print(box.value + helper())")
        XCTAssertTrue(statementLines[1].allSatisfy(\.isWhitespace))
    }

    func testCodeWithoutDeclarationKeywordsIsAllStatements() {
        XCTAssertFalse(ProgramGenerator.mayDeclare("let functional = 1\nprint(functional)\n"))
        XCTAssertTrue(ProgramGenerator.mayDeclare("let x = 1; func f() {}\n"))
        let split = ProgramGenerator.split("var a = 1\na += 1\n")
        XCTAssertEqual(split.statements, "var a = 1\na += 1\n")
        XCTAssertFalse(split.hasDeclarations)
        XCTAssertEqual(split.declarations, "         \n      \n")
    }

    func testSplitKeepsMultibyteColumns() {
        let split = ProgramGenerator.split("struct É {}; let ü = \"é\"\n")
        XCTAssertEqual(split.statements, "             let ü = \"é\"\n")
    }

    func testProgramPlacesEveryPieceAtItsChapterLine() {
        let declaring = Block(index: 0, fence: SourceLocation(file: "chapters/a \"b\".md", line: 10),
                              code: "func f() {}\nf()\n")
        let other = Block(index: 1, fence: SourceLocation(file: "solutions/a.md", line: 3), code: "import Glibc\nf()\n",
                          options: { var o = RunOptions(); o.seed = 9; o.verifier = false; return o }())
        let notRun = Block(index: 2, fence: SourceLocation(file: "chapters/a.md", line: 20), code: "f()\n", expectation: .noRun)
        let splits = [0: ProgramGenerator.split(declaring.code), 1: ProgramGenerator.split(other.code),
                      2: ProgramGenerator.split(notRun.code)]
        let program = ProgramGenerator.program(declarationBlocks: [declaring, other, notRun],
                                               statementBlocks: [declaring, other, notRun], splits: splits)
        let lines = program.split(separator: "\n").map(String.init)
        XCTAssertTrue(lines.contains(#"#sourceLocation(file: "chapters/a \"b\".md", line: 11)"#), program)
        XCTAssertTrue(lines.contains(#"#sourceLocation(file: "solutions/a.md", line: 4)"#), "the import at its line")
        XCTAssertTrue(lines.contains("import Glibc"))
        XCTAssertTrue(lines.contains(#"#sourceLocation(file: "solutions/a.md", line: 3)"#), "block function at its fence")
        XCTAssertTrue(lines.contains("func __workbook_block_1() {"))
        XCTAssertTrue(lines.contains("    1: WorkbookBlock(processors: 2, seed: 9, verifier: false, body: __workbook_block_1),"))
        XCTAssertFalse(program.contains("    2: WorkbookBlock"), "no_run blocks are compiled, not listed to run")
        XCTAssertTrue(program.contains("func __workbook_block_2() {"))
        XCTAssertEqual(lines.filter { $0 == "import Glibc" }.count, 1)
    }

    func testEmptyRunTableIsADictionary() {
        let block = Block(index: 0, fence: SourceLocation(file: "a.md", line: 1), code: "1\n", expectation: .noRun)
        let program = ProgramGenerator.program(declarationBlocks: [], statementBlocks: [block],
                                               splits: [0: ProgramGenerator.split(block.code)])
        XCTAssertTrue(program.hasSuffix("workbookMain([:])\n"))
    }

    func testOutputComparisonIgnoresTrailingWhitespaceAndShowsADiff() {
        XCTAssertNil(OutputComparison.difference(expected: "a\nb\n", actual: "a  \nb\n\n"))
        XCTAssertEqual(OutputComparison.difference(expected: "a\nb\nc\n", actual: "a\nx\nc\n"), "  a\n- b\n+ x\n  c")
        XCTAssertEqual(OutputComparison.lineDiff(expected: "a\nb\nc\n", actual: "a\nx\nc\n"),
                       [.same("a"), .removed("b"), .added("x"), .same("c")])
    }

    func testSHA256KnownAnswers() {
        var empty = SHA256()
        empty.update([])
        XCTAssertEqual(empty.hexDigest(), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        var abc = SHA256()
        abc.update(Array("abc".utf8))
        XCTAssertEqual(abc.hexDigest(), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        var long = SHA256()
        long.update(Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8))
        XCTAssertEqual(long.hexDigest(), "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
    }

    func testCompilerDiagnosticParsing() {
        let output = """
            chapters/01 irql.md:12:5: error: cannot find 'x' in scope
            let y = x
                    ^
            chapters/01 irql.md:13:1: warning: unused
            /tmp/main.swift:3:1: note: here
            error: link failed
            """
        let diagnostics = Compiler.diagnostics(in: output)
        XCTAssertEqual(diagnostics.map(\.description), [
            "chapters/01 irql.md:12:5: error: cannot find 'x' in scope",
            "chapters/01 irql.md:13:1: warning: unused",
            "/tmp/main.swift:3:1: note: here",
        ])
    }
}
