import Foundation

/// Vocabulary shared by every renderer, so the HTML report, the pages, JSON and JUnit never
/// disagree about what a block is or how it ended. A namespace rather than extensions on the model,
/// so these helper names cannot collide with the rest of the module.
enum Rendering {
    /// The block's kind as one word, the `kind` field of the JSON report.
    ///
    /// The role wins over the expectation for exercises and checks, because "which exercise" is what
    /// a dashboard groups by; the expectation is still available as `expect`.
    static func reportKind(_ block: Block) -> String {
        switch block.role {
        case .check: return "check"
        case .exercise: return "exercise"
        case .example: return expectationName(block) == "run" ? "example" : expectationName(block)
        }
    }

    static func roleName(_ block: Block) -> String {
        switch block.role {
        case .example: return "example"
        case .exercise: return "exercise"
        case .check: return "check"
        }
    }

    static func expectationName(_ block: Block) -> String {
        switch block.expectation {
        case .run: return "run"
        case .bugCheck: return "bugcheck"
        case .race: return "race"
        case .compileFail: return "compile_fail"
        case .noRun: return "no_run"
        case .ignore: return "ignore"
        }
    }

    /// "exercise spin-1", "check for spin-1", "example".
    static func roleLabel(_ block: Block) -> String {
        switch block.role {
        case .example: return "example"
        case .exercise(let id): return "exercise \(id)"
        case .check(let id): return "check for \(id)"
        }
    }

    /// What the block must do, for humans; nil for a plain run.
    static func expectationLabel(_ block: Block) -> String? {
        switch block.expectation {
        case .run: return nil
        case .bugCheck(let code?): return "bug check \(hexCode(code)) expected"
        case .bugCheck(nil): return "bug check expected"
        case .race: return "data race expected"
        case .compileFail(let text?): return "compile_fail (\u{201C}\(text)\u{201D})"
        case .compileFail(nil): return "compile_fail"
        case .noRun: return "no_run"
        case .ignore: return "ignored"
        }
    }

    /// Role and expectation together: "exercise spin-1 · bug check 0xD1 expected".
    static func kindLabel(_ block: Block) -> String {
        [roleLabel(block), expectationLabel(block)].compactMap { $0 }.joined(separator: " · ")
    }

    static func isCheck(_ block: Block) -> Bool {
        if case .check = block.role { return true }
        return false
    }

    /// Whether the block's code and output are kept from readers: checks always, others when marked
    /// `hidden`. Pages replace it by a note (unless asked to show checks); reports give only its
    /// status, message, diagnostics and bug-check title, never its code, output or crash report.
    static func isHidden(_ block: Block) -> Bool { isCheck(block) || block.hidden }

    /// Short human label for badges.
    static func label(_ status: BlockStatus) -> String {
        switch status {
        case .passed: return "passed"
        case .failed: return "failed"
        case .compileError: return "compile error"
        case .bugCheck: return "bug check"
        case .deadlock: return "deadlock"
        case .timeout: return "timeout"
        case .trap: return "trap"
        case .ignored: return "ignored"
        }
    }

    /// Symbol shown next to the label; the label is always there too, so colour and symbol are
    /// never the only cue.
    static func symbol(_ status: BlockStatus) -> String {
        switch status {
        case .passed: return "\u{2713}"
        case .ignored: return "\u{2013}"
        default: return "\u{2717}"
        }
    }

    /// CSS class suffix: three looks are enough to scan a page.
    static func tone(_ status: BlockStatus) -> String {
        switch status {
        case .passed: return "pass"
        case .ignored: return "skip"
        default: return "fail"
        }
    }

    /// The result of `block`: same index and line; else same line in the same file (the runner
    /// renumbered); else same index and role, for an exercise whose starter the runner replaced by
    /// its reference solution (the result then carries the solution's location).
    static func result(for block: Block, in chapter: ChapterResult) -> BlockResult? {
        chapter.results.first { $0.block.index == block.index && $0.block.fence.line == block.fence.line }
            ?? chapter.results.first { $0.block.fence == block.fence }
            ?? chapter.results.first { $0.block.index == block.index && $0.block.role == block.role }
    }

    /// Results in document order, whatever order the runner finished them in. By block index
    /// first, because a substituted solution's line belongs to another file.
    static func orderedResults(_ chapter: ChapterResult) -> [BlockResult] {
        chapter.results.enumerated()
            .sorted { ($0.element.block.index, $0.element.block.fence.line, $0.offset)
                    < ($1.element.block.index, $1.element.block.fence.line, $1.offset) }
            .map(\.element)
    }

    /// `0xD1`, as `BugCheckInfo.title` writes it.
    static func hexCode(_ code: UInt32) -> String { "0x" + String(code, radix: 16, uppercase: true) }

    /// Bug-check parameters padded to 64 bits, as a crash dump lists them.
    static func hexParameter(_ value: UInt64) -> String {
        let digits = String(value, radix: 16, uppercase: true)
        return "0x" + String(repeating: "0", count: max(0, 16 - digits.count)) + digits
    }

    /// Seconds as the reports print them; fixed precision keeps the JUnit and HTML output stable.
    static func formatSeconds(_ seconds: Double) -> String {
        guard seconds.isFinite, seconds > 0 else { return "0.000" }
        return String(format: "%.3f", seconds)
    }

    /// Counts for the summaries of every report.
    struct Tally {
        var passed = 0
        var failed = 0
        var ignored = 0
        var exercisesPassed = 0
        var exercises = 0

        init(_ chapters: [ChapterResult]) {
            for chapter in chapters {
                for result in chapter.results {
                    switch result.status {
                    case .passed: passed += 1
                    case .ignored: ignored += 1
                    default: failed += 1
                    }
                }
                let exercises = chapter.exercises
                self.exercises += exercises.count
                exercisesPassed += exercises.filter(\.passed).count
            }
        }

        var total: Int { passed + failed + ignored }
    }

    /// Whether to show an expected-vs-actual diff: only when output is what went wrong, not when the
    /// program crashed half-way and its output is short for that reason alone.
    static func showsOutputDiff(_ result: BlockResult) -> Bool {
        guard !result.status.isSuccess, let expected = result.block.expectedOutput?.text,
              expected != result.stdout else { return false }
        return result.status == .failed || result.message.lowercased().contains("output")
    }

    /// The diff as escaped HTML lines inside a `<pre class="diff">`.
    static func diffHTML(_ diff: [OutputComparison.DiffLine]) -> String {
        let body = diff.map { line -> String in
            switch line {
            case .same(let text): return "<span class=\"diff-same\">  \(HTMLEscaping.escape(text))</span>"
            case .removed(let text): return "<span class=\"diff-del\">- \(HTMLEscaping.escape(text))</span>"
            case .added(let text): return "<span class=\"diff-add\">+ \(HTMLEscaping.escape(text))</span>"
            }
        }.joined()
        // Block-level spans stand for the newlines, so each line can carry a full-width colour.
        return "<pre class=\"diff\">\(body)</pre>"
    }

    /// A status badge: symbol and word, coloured by tone.
    static func statusBadge(_ status: BlockStatus?) -> String {
        guard let status else { return "<span class=\"badge badge-none\">not run</span>" }
        return "<span class=\"badge badge-\(tone(status))\">\(symbol(status)) \(HTMLEscaping.escape(label(status)))</span>"
    }

    /// Colours and base typography shared by the report (inlined) and the pages (`style.css`), with a
    /// dark variant chosen by the reader's system setting, since neither may rely on JavaScript.
    static let sharedCSS = """
    :root {
      color-scheme: light dark;
      --bg: #fdfdfc; --fg: #1f2328; --muted: #59636e; --border: #d1d9e0; --panel: #f6f8fa;
      --code-bg: #f3f4f6; --link: #0a58ca;
      --pass: #1a7f37; --pass-bg: #dafbe1; --fail: #c0262d; --fail-bg: #ffebe9;
      --skip: #6e7781; --skip-bg: #eaeef2; --warn-bg: #fff8c5;
      --mono: ui-monospace, "SF Mono", "Cascadia Mono", "DejaVu Sans Mono", Menlo, Consolas, monospace;
      --sans: system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", "Helvetica Neue", Arial, sans-serif;
    }
    @media (prefers-color-scheme: dark) {
      :root {
        --bg: #0f1419; --fg: #e6edf3; --muted: #9198a1; --border: #30363d; --panel: #161b22;
        --code-bg: #161b22; --link: #6cb6ff;
        --pass: #3fb950; --pass-bg: #12261e; --fail: #ff7b72; --fail-bg: #2d1214;
        --skip: #9198a1; --skip-bg: #21262d; --warn-bg: #2e2a12;
      }
    }
    * { box-sizing: border-box; }
    html { -webkit-text-size-adjust: 100%; }
    body { margin: 0; background: var(--bg); color: var(--fg); font: 16px/1.6 var(--sans); }
    a { color: var(--link); }
    a:hover { text-decoration-thickness: 2px; }
    code, pre, kbd { font-family: var(--mono); font-size: 0.9em; }
    pre { background: var(--code-bg); border: 1px solid var(--border); border-radius: 6px; padding: 0.75em 1em;
          overflow-x: auto; line-height: 1.45; tab-size: 4; }
    pre code { font-size: inherit; background: none; padding: 0; }
    :not(pre) > code { background: var(--code-bg); border-radius: 4px; padding: 0.1em 0.35em; }
    .badge { display: inline-block; font: 600 0.78rem/1.4 var(--sans); padding: 0.1em 0.55em; border-radius: 999px;
             white-space: nowrap; border: 1px solid transparent; vertical-align: middle; }
    .badge-pass { color: var(--pass); background: var(--pass-bg); border-color: var(--pass); }
    .badge-fail { color: var(--fail); background: var(--fail-bg); border-color: var(--fail); }
    .badge-skip, .badge-none { color: var(--skip); background: var(--skip-bg); border-color: var(--skip); }
    .muted { color: var(--muted); }
    pre.diff .diff-del { color: var(--fail); background: var(--fail-bg); display: block; }
    pre.diff .diff-add { color: var(--pass); background: var(--pass-bg); display: block; }
    pre.diff .diff-same { display: block; }
    details > summary { cursor: pointer; }
    """
}
