import Foundation
import XCTest
#if canImport(FoundationXML)
import FoundationXML
#endif
@testable import Workbook

/// The renderers against hand-built results: no compiler or simulator involved.
final class RenderersTests: XCTestCase {
    // MARK: Fixture

    static let xss = "<script>alert(1)</script>"

    /// Markdown and the fence line of each marked block, found by a unique text on the fence line.
    struct Source {
        var text: String
        func line(_ fence: String) -> Int {
            let lines = text.components(separatedBy: "\n")
            guard let index = lines.firstIndex(of: fence) else { fatalError("no line \(fence)") }
            return index + 1
        }
    }

    static let chapter1 = Source(text: """
    # IRQL basics

    Prose with raw HTML: <script>alert("prose")</script> and <b>RAW_BOLD</b> & an ampersand.

    ## Raising IRQL

    ```swift
    print("<script>alert(1)</script> & done")
    ```

    ```output
    <script>alert(1)</script> & expected
    ```

    ### The exercise

    ```swift exercise=raise
    let starter = 1 // STARTER_MARKER
    ```

    ```swift check=raise
    let secret = "CHECK_CODE_MARKER"
    ```

    ```output
    CHECK_OUTPUT_BLOCK_MARKER
    ```

    ```text
    plain <text> & block
    ```

    ## Bug checks

    ```swift bugcheck=0xD1
    crash()
    ```
    """)

    static let chapter2 = Source(text: """
    # Fast mutexes

    ## Acquiring

    ```swift
    let x: Int = "nope"
    ```

    ```swift ignore
    ignored()
    ```

    ## The mutex exercise

    ```swift exercise=mutex
    acquire() // MUTEX_STARTER
    ```
    """)

    static let chapter3 = Source(text: """
    # Deadlocks

    ## Waiting

    ```swift
    print("ok")
    ```
    """)

    static func fixture() -> [ChapterResult] {
        let p1 = "chapters/01-irql.md", p2 = "chapters/02-fast-mutex.md", p3 = "chapters/03-deadlock.md"
        let s1 = chapter1, s2 = chapter2, s3 = chapter3

        let example = Block(index: 0, fence: SourceLocation(file: p1, line: s1.line("```swift")),
                            code: "print(\"\(xss) & done\")\n",
                            expectedOutput: ExpectedOutput(text: "\(xss) & expected\n",
                                                           fence: SourceLocation(file: p1, line: s1.line("```output"))))
        let starter = Block(index: 1, fence: SourceLocation(file: p1, line: s1.line("```swift exercise=raise")),
                            code: "let starter = 1 // STARTER_MARKER\n", role: .exercise(id: "raise"))
        let outputLines = s1.text.components(separatedBy: "\n").enumerated().filter { $0.element == "```output" }.map { $0.offset + 1 }
        let check = Block(index: 2, fence: SourceLocation(file: p1, line: s1.line("```swift check=raise")),
                          code: "let secret = \"CHECK_CODE_MARKER\"\n", role: .check(id: "raise"),
                          expectedOutput: ExpectedOutput(text: "CHECK_OUTPUT_BLOCK_MARKER\n",
                                                         fence: SourceLocation(file: p1, line: outputLines[1])),
                          hidden: true)
        let bug = Block(index: 3, fence: SourceLocation(file: p1, line: s1.line("```swift bugcheck=0xD1")),
                        code: "crash()\n", expectation: .bugCheck(code: 0xD1))
        let d1 = BugCheckInfo(code: 0xD1, name: "DRIVER_IRQL_NOT_LESS_OR_EQUAL", parameters: [0x10, 2, 0, 0xFFFF_F800_1234_5678],
                              report: "BUGCHECK_STR: 0xD1 <crash & report>")
        let c1 = Chapter(path: p1, title: "IRQL basics", markdown: s1.text, blocks: [example, starter, check, bug],
                         solutions: ["raise": Solution(id: "raise", fence: SourceLocation(file: "solutions/01-irql.md", line: 3),
                                                       code: "let solved = 1 // SOLUTION_MARKER <&>\n")])
        let r1 = ChapterResult(chapter: c1, results: [
            // Deliberately out of order: reports must sort by line.
            BlockResult(chapter: p1, block: bug, status: .passed, duration: 0.25, bugCheck: d1),
            BlockResult(chapter: p1, block: example, status: .failed, duration: 0.012,
                        message: "output differs from the ```output block", stdout: "\(xss) & done\n",
                        stderr: "warning \u{1B}[31m<red>\u{1B}[0m\n"),
            BlockResult(chapter: p1, block: starter, status: .passed, duration: 0.1, cached: true),
            BlockResult(chapter: p1, block: check, status: .failed, duration: 0.2,
                        message: "check for raise failed: expected 2 waiters",
                        stdout: "CHECK_STDOUT_MARKER\n", stderr: "CHECK_STDERR_MARKER\n"),
        ])

        let broken = Block(index: 0, fence: SourceLocation(file: p2, line: s2.line("```swift")), code: "let x: Int = \"nope\"\n")
        let ignored = Block(index: 1, fence: SourceLocation(file: p2, line: s2.line("```swift ignore")),
                            code: "ignored()\n", expectation: .ignore)
        let mutex = Block(index: 2, fence: SourceLocation(file: p2, line: s2.line("```swift exercise=mutex")),
                          code: "acquire() // MUTEX_STARTER\n", role: .exercise(id: "mutex"))
        let diagnostic = Diagnostic(location: SourceLocation(file: p2, line: broken.firstCodeLine), column: 14, severity: .error,
                                    message: "cannot convert value of type 'String' to specified type 'Int' <&>")
        let mutexCrash = BugCheckInfo(code: 0xC4, name: "DRIVER_VERIFIER_DETECTED_VIOLATION", parameters: [0x3A, 1, 2, 3],
                                      report: "FAULTING_SOURCE_LINE: acquire()")
        let c2 = Chapter(path: p2, title: "Fast mutexes", markdown: s2.text, blocks: [broken, ignored, mutex])
        let r2 = ChapterResult(chapter: c2, results: [
            BlockResult(chapter: p2, block: broken, status: .compileError, duration: 1.5,
                        message: "does not compile\u{0}\u{7}", diagnostics: [diagnostic]),
            BlockResult(chapter: p2, block: ignored, status: .ignored),
            BlockResult(chapter: p2, block: mutex, status: .bugCheck, duration: 0.3,
                        message: "bug check 0xC4 raised", bugCheck: mutexCrash),
        ])

        let ok = Block(index: 0, fence: SourceLocation(file: p3, line: s3.line("```swift")), code: "print(\"ok\")\n")
        let c3 = Chapter(path: p3, title: "Deadlocks", markdown: s3.text, blocks: [ok])
        let r3 = ChapterResult(chapter: c3, results: [BlockResult(chapter: p3, block: ok, status: .passed, duration: 0.05)])
        return [r1, r2, r3]
    }

    func temporaryDirectory() throws -> String {
        let path = NSTemporaryDirectory() + "renderers-\(UUID().uuidString)"
        addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
        return path
    }

    func read(_ directory: String, _ name: String) throws -> String {
        try String(contentsOfFile: directory + "/" + name, encoding: .utf8)
    }

    func pages(_ options: PageOptions = PageOptions()) throws -> (dir: String, page1: String, page2: String, index: String) {
        let dir = try temporaryDirectory()
        try writeCoursePages(Self.fixture(), options: options, to: dir)
        return (dir, try read(dir, "01-irql.html"), try read(dir, "02-fast-mutex.html"), try read(dir, "index.html"))
    }

    // MARK: Escaping

    func testEscapingCoversTheFiveCharactersAndDropsControls() {
        XCTAssertEqual(HTMLEscaping.escape("a&b<c>d\"e'f"), "a&amp;b&lt;c&gt;d&quot;e&#39;f")
        XCTAssertEqual(HTMLEscaping.escape("x\u{1B}[0m\u{0}\ty\n"), "x[0m\ty\n")
        XCTAssertEqual(HTMLEscaping.identifier("Raising IRQL: the <rules>!"), "raising-irql-the-rules")
        XCTAssertEqual(XMLEscaping.escape("a\u{0}\u{1}b\u{FFFE}&\n"), "ab&amp;&#10;")
        XCTAssertEqual(XMLEscaping.escape("a\nb\tc", attribute: false), "a\nb\tc")
    }

    /// A hidden check's crash report is withheld (its kernel calls name the check's lines), but its
    /// NOTE, the simulator's explanation, is what a chapter teaches the learner to read.
    func testAHiddenChecksBugCheckShowsItsNoteButNotTheReport() {
        let report = "DRIVER_IRQL_NOT_LESS_OR_EQUAL (d1)\nArg1: 0000000000000010, Memory referenced\n\n"
            + "NOTE: Paged pool <tag 'Sens'> was read at IRQL 2.\n      Second line.\n\nRECENT_KERNEL_CALLS (thread 1):\n  secret\n"
        let info = BugCheckInfo(code: 0xD1, name: "DRIVER_IRQL_NOT_LESS_OR_EQUAL", parameters: [0x10, 2, 0, 0], report: report)
        XCTAssertEqual(info.note, "NOTE: Paged pool <tag 'Sens'> was read at IRQL 2.\n      Second line.")
        XCTAssertEqual(info.argumentLines, ["Arg1: 0000000000000010, Memory referenced"])
        let hidden = HTMLReport.bugCheckBox(info, withReport: false)
        XCTAssertTrue(hidden.contains("NOTE: Paged pool &lt;tag &#39;Sens&#39;&gt; was read at IRQL 2."), hidden)
        XCTAssertFalse(hidden.contains("secret"), hidden)
        XCTAssertNil(BugCheckInfo(code: 0xD1, name: "X", parameters: [], report: "Arg1: 0\n").note)
    }

    func testHintsAreCollapsedAndStillEscaped() {
        let document = MarkdownDocument("""
        > **Hint:** Lower to `oldIrql`, not <b>PASSIVE_LEVEL</b>.
        > Second paragraph.

        > A plain quote.
        """)
        document.collapseHints()
        let html = document.renderHTML { _ in "" }
        XCTAssertTrue(html.hasPrefix("<details class=\"hint\"><summary>Hint</summary>\n<p>Lower to <code>oldIrql</code>, not "
                                     + "<!-- raw HTML omitted -->PASSIVE_LEVEL<!-- raw HTML omitted -->.\nSecond paragraph.</p>\n</details>"), html)
        XCTAssertFalse(html.contains("Hint:"), html)
        XCTAssertTrue(html.contains("<blockquote>\n<p>A plain quote.</p>\n</blockquote>"), html)
    }

    func testPipeTablesBecomeTables() {
        let html = MarkdownDocument("""
        | Level | `a|b` | Value |
        |---|:---:|--:|
        | `PASSIVE_LEVEL` | <b>x</b> | 0 |

        | not a table |
        """).renderHTML { _ in "" }
        let upgraded = PipeTables.upgrade(html)
        XCTAssertTrue(upgraded.contains("<th>Level</th><th style=\"text-align: center\"><code>a|b</code></th>"))
        XCTAssertTrue(upgraded.contains("<td><code>PASSIVE_LEVEL</code></td><td style=\"text-align: center\"><!-- raw HTML omitted -->x<!-- raw HTML omitted --></td>"))
        XCTAssertTrue(upgraded.contains("<p>| not a table |</p>"))
        XCTAssertFalse(upgraded.contains("<b>"))
    }

    // MARK: HTML report

    func testHTMLReportEscapesEverythingAndShowsFailures() throws {
        let dir = try temporaryDirectory()
        try writeHTMLReport(Self.fixture(), to: dir)
        let html = try read(dir, "index.html")

        XCTAssertFalse(html.contains("<script"), "no script tag, escaped or ours, may reach the report")
        XCTAssertTrue(html.contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp; done"))
        XCTAssertFalse(html.contains("\u{1B}"))
        XCTAssertFalse(html.contains("http://") || html.contains("https://"), "self-contained, no network")
        XCTAssertTrue(html.contains("<style>"))

        // Summary and the exercise grid.
        XCTAssertTrue(html.contains("<span class=\"n\">3</span> passed"))
        XCTAssertTrue(html.contains("<span class=\"n\">4</span> failed"))
        XCTAssertTrue(html.contains("<span class=\"n\">1</span> ignored"))
        XCTAssertTrue(html.contains("<span class=\"n\">0/2</span> exercises passed"))
        XCTAssertTrue(html.contains("chip-fail") && html.contains("raise</a>") && html.contains("mutex</a>"))

        // Failure details: location, kind, diff, diagnostics, bug check, captured output.
        XCTAssertTrue(html.contains("chapters/01-irql.md:\(Self.chapter1.line("```swift"))"))
        XCTAssertTrue(html.contains("check for raise"))
        XCTAssertTrue(html.contains("bug check 0xD1 expected"))
        XCTAssertTrue(html.contains("class=\"diff-del\">- &lt;script&gt;alert(1)&lt;/script&gt; &amp; expected"))
        XCTAssertTrue(html.contains("chapters/02-fast-mutex.md:6:14: error: cannot convert value of type &#39;String&#39; to specified type &#39;Int&#39; &lt;&amp;&gt;"))
        XCTAssertTrue(html.contains("DRIVER_VERIFIER_DETECTED_VIOLATION (0xC4)"))
        XCTAssertTrue(html.contains("0x000000000000003A"))
        XCTAssertTrue(html.contains("FAULTING_SOURCE_LINE: acquire()"))
        XCTAssertTrue(html.contains("warning [31m&lt;red&gt;[0m"))
        XCTAssertTrue(html.contains(">0.012 s<"))

        // Checks: status and message only.
        XCTAssertTrue(html.contains("check for raise failed: expected 2 waiters"))
        for secret in ["CHECK_CODE_MARKER", "CHECK_STDOUT_MARKER", "CHECK_STDERR_MARKER", "CHECK_OUTPUT_BLOCK_MARKER"] {
            XCTAssertFalse(html.contains(secret), "\(secret) leaked into the report")
        }
        // Document order within a chapter even though the results were not.
        let exampleAt = try XCTUnwrap(html.range(of: "id=\"c0-l\(Self.chapter1.line("```swift"))\""))
        let bugAt = try XCTUnwrap(html.range(of: "id=\"c0-l\(Self.chapter1.line("```swift bugcheck=0xD1"))\""))
        XCTAssertLessThan(exampleAt.lowerBound, bugAt.lowerBound)
    }

    func testHiddenBlocksStayOutOfReports() throws {
        let path = "chapters/04-hidden.md"
        let markdown = "# Hidden\n\n```swift hidden\nsetup() // HIDDEN_CODE\n```\n"
        let block = Block(index: 0, fence: SourceLocation(file: path, line: 3), code: "setup() // HIDDEN_CODE\n", hidden: true)
        let crash = BugCheckInfo(code: 0xA, name: "IRQL_NOT_LESS_OR_EQUAL", parameters: [1, 2, 3, 4], report: "HIDDEN_REPORT")
        let results = [ChapterResult(chapter: Chapter(path: path, title: "Hidden", markdown: markdown, blocks: [block]), results: [
            BlockResult(chapter: path, block: block, status: .bugCheck, message: "setup bug-checked",
                        stdout: "HIDDEN_STDOUT\n", stderr: "HIDDEN_STDERR\n", bugCheck: crash),
        ])]
        let dir = try temporaryDirectory()
        try writeHTMLReport(results, to: dir)
        try writeCoursePages(results, options: PageOptions(), to: dir + "/pages")
        for text in [try read(dir, "index.html"), junitReport(results), jsonReport(results), try read(dir, "pages/04-hidden.html")] {
            for secret in ["HIDDEN_CODE", "HIDDEN_STDOUT", "HIDDEN_STDERR", "HIDDEN_REPORT"] {
                XCTAssertFalse(text.contains(secret), "\(secret) leaked")
            }
            XCTAssertTrue(text.contains("setup bug-checked"))
        }
        XCTAssertTrue(try read(dir, "index.html").contains("IRQL_NOT_LESS_OR_EQUAL (0xA)"))
    }

    // MARK: Course pages

    func testPagesEscapeCodeAndDropRawHTML() throws {
        let (dir, page1, page2, index) = try pages()
        for page in [page1, page2, index] {
            XCTAssertFalse(page.contains("<script"), "no script may reach a page")
            XCTAssertFalse(page.contains("http://") || page.contains("https://"), "pages must work offline")
            XCTAssertTrue(page.contains("<link rel=\"stylesheet\" href=\"style.css\">"))
        }
        XCTAssertTrue(page1.contains("print(&quot;&lt;script&gt;alert(1)&lt;/script&gt; &amp; done&quot;)"))
        XCTAssertFalse(page1.contains("<b>RAW_BOLD</b>"), "raw HTML in prose is omitted")
        XCTAssertTrue(page1.contains("&amp; an ampersand"))
        XCTAssertTrue(page1.contains("<pre><code class=\"language-text\">plain &lt;text&gt; &amp; block"))
        XCTAssertTrue(page1.contains("<code class=\"language-swift\">let starter = 1 // STARTER_MARKER"))
        XCTAssertTrue(page1.contains("<samp>&lt;script&gt;alert(1)&lt;/script&gt; &amp; expected"), "output blocks shown as output")
        XCTAssertTrue(page1.contains("exercise raise"))
        XCTAssertTrue(page1.contains("badge-fail") && page1.contains("badge-pass"))
        XCTAssertTrue(page2.contains("compile error"))

        let css = try read(dir, "style.css")
        XCTAssertTrue(css.contains("prefers-color-scheme: dark"))
        XCTAssertFalse(css.contains("@import") || css.contains("url("), "no external fonts or resources")
    }

    func testChecksHiddenUnlessAsked() throws {
        let hidden = try pages().page1
        XCTAssertFalse(hidden.contains("CHECK_CODE_MARKER"))
        XCTAssertFalse(hidden.contains("CHECK_OUTPUT_BLOCK_MARKER"), "a hidden block's output block is hidden too")
        XCTAssertTrue(hidden.contains("Hidden check for exercise <code>raise</code>"))
        XCTAssertTrue(hidden.contains("check for raise failed: expected 2 waiters"), "the learner sees why")

        let shown = try pages(PageOptions(showChecks: true)).page1
        XCTAssertTrue(shown.contains("let secret = &quot;CHECK_CODE_MARKER&quot;"))
        XCTAssertTrue(shown.contains("CHECK_OUTPUT_BLOCK_MARKER"))
        XCTAssertFalse(shown.contains("Hidden check for exercise"))
    }

    func testSolutionsOnlyWhenAsked() throws {
        XCTAssertFalse(try pages().page1.contains("SOLUTION_MARKER"))
        let page = try pages(PageOptions(showSolutions: true)).page1
        XCTAssertTrue(page.contains("<details class=\"solution\">"))
        XCTAssertTrue(page.contains("let solved = 1 // SOLUTION_MARKER &lt;&amp;&gt;"))
        // After its exercise's starter, before the next section.
        let starter = try XCTUnwrap(page.range(of: "STARTER_MARKER"))
        let solution = try XCTUnwrap(page.range(of: "SOLUTION_MARKER"))
        let nextSection = try XCTUnwrap(page.range(of: "Bug checks</h2>"))
        XCTAssertLessThan(starter.lowerBound, solution.lowerBound)
        XCTAssertLessThan(solution.lowerBound, nextSection.lowerBound)
    }

    func testIndexListsChaptersAndPagesLinkUp() throws {
        let (dir, page1, page2, index) = try pages()
        for (file, title) in [("01-irql.html", "IRQL basics"), ("02-fast-mutex.html", "Fast mutexes"), ("03-deadlock.html", "Deadlocks")] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: dir + "/" + file))
            XCTAssertTrue(index.contains("<a href=\"\(file)\">\(title)</a>"), "index lists \(title)")
            XCTAssertTrue(page2.contains("<a href=\"\(file)\""), "sidebar lists \(title)")
        }
        XCTAssertTrue(index.contains("href=\"01-irql.html#raising-irql\">Raising IRQL</a>"))
        XCTAssertTrue(index.contains("href=\"01-irql.html#the-exercise\">The exercise</a>"))
        XCTAssertTrue(index.contains("href=\"02-fast-mutex.html#L\(Self.chapter2.line("```swift exercise=mutex"))\"><code>mutex</code>"))
        XCTAssertTrue(page1.contains("<h2 id=\"raising-irql\">Raising IRQL</h2>"))
        XCTAssertTrue(page1.contains("<h3 id=\"the-exercise\">The exercise</h3>"))

        XCTAssertTrue(page2.contains("rel=\"prev\" href=\"01-irql.html\""))
        XCTAssertTrue(page2.contains("rel=\"next\" href=\"03-deadlock.html\""))
        XCTAssertTrue(page1.contains("rel=\"next\" href=\"02-fast-mutex.html\""))
        XCTAssertFalse(page1.contains("rel=\"prev\""))
        XCTAssertTrue(page2.contains("<a href=\"02-fast-mutex.html\" aria-current=\"page\">"))
    }

    func testSubstitutedSolutionResultsStillMatchTheirStarter() throws {
        // With `--solutions`, the runner reports the starter's block at the solution's location.
        let path = "chapters/05-sub.md"
        let markdown = "# Sub\n\n```swift exercise=e1\nstarter() // STARTER_TEXT\n```\n\n```swift\nlater()\n```\n"
        let starter = Block(index: 0, fence: SourceLocation(file: path, line: 3), code: "starter() // STARTER_TEXT\n",
                            role: .exercise(id: "e1"))
        let later = Block(index: 1, fence: SourceLocation(file: path, line: 7), code: "later()\n")
        var substituted = starter
        substituted.fence = SourceLocation(file: "solutions/05-sub.md", line: 40)
        substituted.code = "solved()\n"
        let results = [ChapterResult(chapter: Chapter(path: path, title: "Sub", markdown: markdown, blocks: [starter, later]), results: [
            BlockResult(chapter: path, block: later, status: .passed),
            BlockResult(chapter: path, block: substituted, status: .failed, message: "SUBSTITUTED_FAILED"),
        ])]
        let dir = try temporaryDirectory()
        try writeCoursePages(results, options: PageOptions(), to: dir)
        let page = try read(dir, "05-sub.html")
        XCTAssertTrue(page.contains("STARTER_TEXT"), "pages show the learner's starter")
        XCTAssertTrue(page.contains("SUBSTITUTED_FAILED"), "with the status of the block that ran in its place")

        let blocks = try XCTUnwrap((try JSONSerialization.jsonObject(with: Data(jsonReport(results).utf8)) as? [String: Any])?["blocks"] as? [[String: Any]])
        XCTAssertEqual(blocks.map { $0["index"] as? Int }, [0, 1], "document order by index")
        XCTAssertEqual(blocks[0]["file"] as? String, "solutions/05-sub.md")
        XCTAssertEqual(blocks[0]["chapter"] as? String, path)
        XCTAssertEqual(blocks[0]["line"] as? Int, 40)
    }

    // MARK: JSON

    func testJSONFollowsTheSchema() throws {
        let fixture = Self.fixture()
        let text = jsonReport(fixture)
        XCTAssertEqual(text, jsonReport(fixture), "deterministic")
        let root = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        XCTAssertEqual(root["version"] as? Int, 1)
        let summary = try XCTUnwrap(root["summary"] as? [String: Any])
        XCTAssertEqual(summary["passed"] as? Int, 3)
        XCTAssertEqual(summary["failed"] as? Int, 4)
        XCTAssertEqual(summary["ignored"] as? Int, 1)
        let blocks = try XCTUnwrap(root["blocks"] as? [[String: Any]])
        XCTAssertEqual(blocks.count, 8)

        let keys: Set<String> = ["chapter", "file", "line", "index", "kind", "role", "expect", "exercise", "status", "duration",
                                 "message", "cached", "bugcheck", "race", "diagnostics"]
        for block in blocks { XCTAssertEqual(Set(block.keys), keys) }

        let first = blocks[0]
        XCTAssertEqual(first["chapter"] as? String, "chapters/01-irql.md")
        XCTAssertEqual(first["line"] as? Int, Self.chapter1.line("```swift"))
        XCTAssertEqual(first["kind"] as? String, "example")
        XCTAssertTrue(first["exercise"] is NSNull)
        XCTAssertEqual(first["status"] as? String, "failed")
        XCTAssertEqual(first["duration"] as? Double, 0.012)
        XCTAssertEqual(first["message"] as? String, "output differs from the ```output block")
        XCTAssertEqual(first["cached"] as? Bool, false)
        XCTAssertTrue(first["bugcheck"] is NSNull)

        XCTAssertEqual(blocks.map { $0["kind"] as? String },
                       ["example", "exercise", "check", "bugcheck", "example", "ignore", "exercise", "example"])
        XCTAssertEqual(blocks.map { $0["status"] as? String },
                       ["failed", "passed", "failed", "passed", "compile_error", "ignored", "bug_check", "passed"])
        XCTAssertEqual(blocks[1]["exercise"] as? String, "raise")
        XCTAssertEqual(blocks[1]["cached"] as? Bool, true)
        XCTAssertEqual(blocks[2]["role"] as? String, "check")

        let bugcheck = try XCTUnwrap(blocks[3]["bugcheck"] as? [String: Any])
        XCTAssertEqual(bugcheck["code"] as? String, "0xD1")
        XCTAssertEqual(bugcheck["name"] as? String, "DRIVER_IRQL_NOT_LESS_OR_EQUAL")
        XCTAssertEqual(bugcheck["parameters"] as? [String],
                       ["0x0000000000000010", "0x0000000000000002", "0x0000000000000000", "0xFFFFF80012345678"])

        let diagnostics = try XCTUnwrap(blocks[4]["diagnostics"] as? [[String: Any]])
        XCTAssertEqual(diagnostics.count, 1)
        XCTAssertEqual(diagnostics[0]["line"] as? Int, 6)
        XCTAssertEqual(diagnostics[0]["column"] as? Int, 14)
        XCTAssertEqual(diagnostics[0]["severity"] as? String, "error")
        XCTAssertEqual(diagnostics[0]["file"] as? String, "chapters/02-fast-mutex.md")

        XCTAssertFalse(text.contains("CHECK_STDOUT_MARKER") || text.contains("CHECK_CODE_MARKER"))
    }

    // MARK: JUnit

    func testJUnitIsWellFormedWithTheRightCounts() throws {
        let xml = junitReport(Self.fixture())
        XCTAssertFalse(xml.contains("\u{0}") || xml.contains("\u{7}") || xml.contains("\u{1B}"), "illegal XML characters stripped")
        XCTAssertFalse(xml.contains("CHECK_STDOUT_MARKER") || xml.contains("CHECK_STDERR_MARKER") || xml.contains("CHECK_CODE_MARKER"))
        XCTAssertTrue(xml.contains("<testsuites name=\"IRQL Workbook\" tests=\"8\" failures=\"4\" errors=\"0\" skipped=\"1\""))
        #if canImport(FoundationXML) || os(macOS)
        let document = try XMLDocument(xmlString: xml, options: [])
        let root = try XCTUnwrap(document.rootElement())
        XCTAssertEqual(root.name, "testsuites")
        let suites = root.elements(forName: "testsuite")
        XCTAssertEqual(suites.map { $0.attribute(forName: "name")?.stringValue },
                       ["chapters/01-irql.md", "chapters/02-fast-mutex.md", "chapters/03-deadlock.md"])
        let cases = suites.flatMap { $0.elements(forName: "testcase") }
        XCTAssertEqual(cases.count, 8)
        XCTAssertEqual(cases.filter { !$0.elements(forName: "failure").isEmpty }.count, 4)
        XCTAssertEqual(cases.filter { !$0.elements(forName: "skipped").isEmpty }.count, 1)
        XCTAssertEqual(suites.map { $0.attribute(forName: "failures")?.stringValue }, ["2", "2", "0"])
        XCTAssertEqual(suites.map { $0.attribute(forName: "skipped")?.stringValue }, ["0", "1", "0"])

        let first = cases[0]
        XCTAssertEqual(first.attribute(forName: "name")?.stringValue, "01-irql:\(Self.chapter1.line("```swift"))")
        XCTAssertEqual(first.attribute(forName: "classname")?.stringValue, "chapters/01-irql")
        XCTAssertEqual(first.attribute(forName: "time")?.stringValue, "0.012")
        let failure = try XCTUnwrap(first.elements(forName: "failure").first)
        XCTAssertEqual(failure.attribute(forName: "message")?.stringValue, "output differs from the ```output block")
        XCTAssertTrue(failure.stringValue?.contains("- \(Self.xss) & expected") ?? false, "diff in the details")
        XCTAssertEqual(first.elements(forName: "system-out").first?.stringValue, "\(Self.xss) & done\n")

        let compile = cases[4]
        let compileFailure = try XCTUnwrap(compile.elements(forName: "failure").first)
        XCTAssertEqual(compileFailure.attribute(forName: "type")?.stringValue, "compile_error")
        XCTAssertEqual(compileFailure.attribute(forName: "message")?.stringValue, "does not compile")
        XCTAssertTrue(compileFailure.stringValue?.contains("chapters/02-fast-mutex.md:6:14: error: cannot convert") ?? false)
        #endif
    }
}
