import Foundation

/// Writes `directory/index.html`: one self-contained results page (inline CSS, no scripts, no
/// network), readable straight from file://.
///
/// The page opens with the totals and a grid of every exercise, then lists each chapter's blocks
/// with status, location, kind and duration; failures carry their message, diagnostics, bug check,
/// output diff and captured output. A check's (or `hidden` block's) code, output and crash report
/// never appear, only its status, message, diagnostics and bug-check title: checks must not leak.
public func writeHTMLReport(_ results: [ChapterResult], to directory: String) throws {
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    let path = (directory as NSString).appendingPathComponent("index.html")
    try HTMLReport.page(results).write(toFile: path, atomically: true, encoding: .utf8)
}

enum HTMLReport {
    static func page(_ chapters: [ChapterResult]) -> String {
        let tally = Rendering.Tally(chapters)
        var html = """
        <!DOCTYPE html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>\(tally.failed == 0 ? "\u{2713}" : "\u{2717}") IRQL Workbook \u{2014} results</title>
        <style>
        \(Rendering.sharedCSS)
        \(css)
        </style>
        </head>
        <body>
        <main class="report">

        """
        html += summary(chapters, tally)
        html += glance(chapters)
        html += failureIndex(chapters)
        for (index, chapter) in chapters.enumerated() {
            html += chapterSection(chapter, index: index)
        }
        html += "</main>\n</body>\n</html>\n"
        return html
    }

    /// Anchors use the chapter's position, not its path, so they never need escaping.
    static func blockAnchor(chapter: Int, _ block: Block) -> String { "c\(chapter)-l\(block.fence.line)" }

    static func summary(_ chapters: [ChapterResult], _ tally: Rendering.Tally) -> String {
        let seconds = chapters.flatMap(\.results).reduce(0) { $0 + $1.duration }
        let cached = chapters.flatMap(\.results).filter(\.cached).count
        let verdict = tally.failed == 0
            ? "<p class=\"verdict verdict-pass\">\u{2713} All \(tally.total) blocks succeeded</p>"
            : "<p class=\"verdict verdict-fail\">\u{2717} \(tally.failed) of \(tally.total) blocks failed</p>"
        return """
        <header class="summary">
        <h1>IRQL Workbook results</h1>
        \(verdict)
        <div class="stats">
        <div class="stat stat-pass"><span class="n">\(tally.passed)</span> passed</div>
        <div class="stat stat-fail"><span class="n">\(tally.failed)</span> failed</div>
        <div class="stat stat-skip"><span class="n">\(tally.ignored)</span> ignored</div>
        <div class="stat"><span class="n">\(tally.exercisesPassed)/\(tally.exercises)</span> exercises passed</div>
        </div>
        <p class="muted">\(chapters.count) chapter\(chapters.count == 1 ? "" : "s") \u{00B7} \
        \(Rendering.formatSeconds(seconds)) s of running\(cached > 0 ? " \u{00B7} \(cached) from cache" : "")</p>
        </header>

        """
    }

    /// "The passing exercises at a glance": one row per chapter, one badge per exercise.
    static func glance(_ chapters: [ChapterResult]) -> String {
        var rows = ""
        for (index, chapter) in chapters.enumerated() {
            let exercises = chapter.exercises
            var cells = ""
            for exercise in exercises {
                // Link to the exercise's first failing block if any, else to its starter.
                let blocks = chapter.results.filter { $0.block.exerciseID == exercise.id }
                let target = blocks.first { !$0.status.isSuccess } ?? blocks.first
                let tone = exercise.passed ? "pass" : "fail"
                let symbol = exercise.passed ? "\u{2713}" : "\u{2717}"
                let link = target.map { "#" + blockAnchor(chapter: index, $0.block) } ?? "#c\(index)"
                cells += "<a class=\"chip chip-\(tone)\" href=\"\(link)\" title=\"\(exercise.passed ? "passed" : "not passed yet")\">"
                    + "\(symbol) \(HTMLEscaping.escape(exercise.id))</a>\n"
            }
            if exercises.isEmpty { cells = "<span class=\"muted\">no exercises</span>" }
            let done = exercises.filter(\.passed).count
            rows += """
            <tr><th scope="row"><a href="#c\(index)">\(HTMLEscaping.escape(chapter.chapter.title))</a></th>\
            <td class="count">\(done)/\(exercises.count)</td><td><div class="chips">\(cells)</div></td></tr>

            """
        }
        return """
        <section class="glance">
        <h2>Exercises at a glance</h2>
        <table>
        <thead><tr><th scope="col">Chapter</th><th scope="col">Done</th><th scope="col">Exercises</th></tr></thead>
        <tbody>
        \(rows)</tbody>
        </table>
        </section>

        """
    }

    /// A jump list of failures, so a long report with one red block is still one click from it.
    static func failureIndex(_ chapters: [ChapterResult]) -> String {
        var items = ""
        for (index, chapter) in chapters.enumerated() {
            for result in Rendering.orderedResults(chapter) where !result.status.isSuccess {
                let firstLine = result.message.split(separator: "\n", omittingEmptySubsequences: true).first.map(String.init) ?? ""
                items += "<li>\(Rendering.statusBadge(result.status)) "
                    + "<a href=\"#\(blockAnchor(chapter: index, result.block))\"><code>\(HTMLEscaping.escape(result.block.fence.description))</code></a> "
                    + "<span class=\"kind\">\(HTMLEscaping.escape(Rendering.kindLabel(result.block)))</span>"
                    + (firstLine.isEmpty ? "" : " \u{2014} \(HTMLEscaping.escape(firstLine))") + "</li>\n"
            }
        }
        guard !items.isEmpty else { return "" }
        return "<section class=\"failures\">\n<h2>Failures</h2>\n<ul>\n\(items)</ul>\n</section>\n\n"
    }

    static func chapterSection(_ chapter: ChapterResult, index: Int) -> String {
        let tally = Rendering.Tally([chapter])
        var html = """
        <section class="chapter" id="c\(index)">
        <h2>\(HTMLEscaping.escape(chapter.chapter.title))</h2>
        <p class="muted"><code>\(HTMLEscaping.escape(chapter.chapter.path))</code> \u{00B7} \(tally.passed) passed \
        \u{00B7} \(tally.failed) failed \u{00B7} \(tally.ignored) ignored</p>
        <ol class="blocks">

        """
        let ordered = Rendering.orderedResults(chapter)
        if ordered.isEmpty { html += "<li class=\"muted\">No swift blocks.</li>\n" }
        for result in ordered {
            html += blockItem(result, anchor: blockAnchor(chapter: index, result.block))
        }
        html += "</ol>\n</section>\n\n"
        return html
    }

    static func blockItem(_ result: BlockResult, anchor: String) -> String {
        let block = result.block
        let isHidden = Rendering.isHidden(block)
        var head = Rendering.statusBadge(result.status)
        head += " <a class=\"loc\" href=\"#\(anchor)\"><code>\(HTMLEscaping.escape(block.fence.description))</code></a>"
        head += " <span class=\"kind\">\(HTMLEscaping.escape(Rendering.kindLabel(block)))</span>"
        if let bugCheck = result.bugCheck, result.status.isSuccess {
            head += " <span class=\"muted\">raised \(HTMLEscaping.escape(bugCheck.title))</span>"
        }
        head += " <span class=\"duration\">\(Rendering.formatSeconds(result.duration)) s</span>"
        if result.cached { head += " <span class=\"tag\">cached</span>" }

        var body = ""
        if !result.status.isSuccess {
            body += failureDetails(result, isHidden: isHidden)
        }
        return "<li class=\"block tone-\(Rendering.tone(result.status))\" id=\"\(anchor)\">\n"
            + "<div class=\"block-head\">\(head)</div>\n\(body)</li>\n"
    }

    static func failureDetails(_ result: BlockResult, isHidden: Bool) -> String {
        let block = result.block
        var html = ""
        if !result.message.isEmpty {
            html += "<pre class=\"message\">\(HTMLEscaping.escape(result.message))</pre>\n"
        }
        if !result.diagnostics.isEmpty {
            html += "<ul class=\"diagnostics\">\n"
            for diagnostic in result.diagnostics {
                html += "<li class=\"sev-\(diagnostic.severity.rawValue)\"><code>\(HTMLEscaping.escape(diagnostic.description))</code></li>\n"
            }
            html += "</ul>\n"
        }
        if let bugCheck = result.bugCheck {
            html += bugCheckBox(bugCheck, withReport: !isHidden)
        }
        if isHidden {
            let what = Rendering.isCheck(block) ? "a check" : "a hidden block"
            html += "<p class=\"muted note\">This is \(what): its code and output stay out of the report.</p>\n"
            return html
        }
        if Rendering.showsOutputDiff(result), let expected = block.expectedOutput?.text {
            html += "<h4>Expected output (\u{2212}) vs actual (+)</h4>\n"
            html += Rendering.diffHTML(OutputComparison.lineDiff(expected: expected, actual: result.stdout)) + "\n"
        }
        html += captured("stdout", result.stdout)
        html += captured("stderr", result.stderr)
        html += codeListing(block, diagnostics: result.diagnostics)
        let options = block.options
        html += "<p class=\"muted repro\">seed \(options.seed) \u{00B7} \(options.processors) processor\(options.processors == 1 ? "" : "s") "
            + "\u{00B7} verifier \(options.verifier ? "on" : "off") \u{00B7} races \(options.raceDetection ? "reported" : "off") "
            + "\u{00B7} timeout \(secondsText(options.timeoutSeconds))</p>\n"
        return html
    }

    static func bugCheckBox(_ bugCheck: BugCheckInfo, withReport: Bool) -> String {
        var rows = ""
        for (i, parameter) in bugCheck.parameters.enumerated() {
            rows += "<tr><th scope=\"row\">Arg\(i + 1)</th><td><code>\(Rendering.hexParameter(parameter))</code></td></tr>\n"
        }
        var html = "<div class=\"bugcheck\">\n<p class=\"bugcheck-title\">Bug check: <strong>\(HTMLEscaping.escape(bugCheck.title))</strong></p>\n"
        if !rows.isEmpty { html += "<table class=\"params\">\n\(rows)</table>\n" }
        if withReport, !bugCheck.report.isEmpty {
            html += "<details open><summary>Crash report</summary>\n<pre class=\"crash\">\(HTMLEscaping.escape(bugCheck.report))</pre>\n</details>\n"
        } else if let note = bugCheck.note {
            html += "<pre class=\"crash\">\(HTMLEscaping.escape(note))</pre>\n"
        }
        return html + "</div>\n"
    }

    static func captured(_ name: String, _ text: String) -> String {
        guard !text.isEmpty else { return "" }
        let lines = text.reduce(0) { $1 == "\n" ? $0 + 1 : $0 } + (text.hasSuffix("\n") ? 0 : 1)
        return "<details open class=\"captured\"><summary>\(name) (\(lines) line\(lines == 1 ? "" : "s"))</summary>\n"
            + "<pre>\(HTMLEscaping.escape(text))</pre>\n</details>\n"
    }

    /// The block's code with chapter line numbers, lines with diagnostics marked, collapsed since
    /// the learner has it open in an editor anyway.
    static func codeListing(_ block: Block, diagnostics: [Diagnostic]) -> String {
        guard !block.code.isEmpty else { return "" }
        let marked = Set(diagnostics.filter { $0.location.file == block.fence.file }.map(\.location.line))
        var lines = block.code.components(separatedBy: "\n")
        if lines.last == "" { lines.removeLast() }
        let width = String(block.firstCodeLine + lines.count).count
        var body = ""
        for (offset, line) in lines.enumerated() {
            let number = block.firstCodeLine + offset
            let padded = String(repeating: " ", count: width - String(number).count) + String(number)
            let cls = marked.contains(number) ? "line line-marked" : "line"
            body += "<span class=\"\(cls)\"><span class=\"ln\">\(padded)</span> \(HTMLEscaping.escape(line))</span>"
        }
        let last = block.firstCodeLine + max(lines.count - 1, 0)
        return "<details\(marked.isEmpty ? "" : " open") class=\"listing\"><summary>Code, lines \(block.firstCodeLine)\u{2013}\(last)</summary>\n"
            + "<pre class=\"code\"><code class=\"language-swift\">\(body)</code></pre>\n</details>\n"
    }

    static let css = """
    .report { max-width: 72rem; margin: 0 auto; padding: 1.5rem 1.25rem 4rem; }
    h1 { margin: 0 0 0.25rem; font-size: 1.8rem; }
    h2 { margin-top: 2.5rem; border-bottom: 1px solid var(--border); padding-bottom: 0.3rem; }
    h4 { margin: 0.75rem 0 0.25rem; font-size: 0.95rem; }
    .verdict { font-weight: 700; font-size: 1.15rem; margin: 0.25rem 0 0.75rem; }
    .verdict-pass { color: var(--pass); }
    .verdict-fail { color: var(--fail); }
    .stats { display: flex; flex-wrap: wrap; gap: 0.75rem; }
    .stat { border: 1px solid var(--border); border-radius: 8px; padding: 0.5rem 1rem; background: var(--panel); min-width: 8rem; }
    .stat .n { display: block; font-size: 1.6rem; font-weight: 700; line-height: 1.2; }
    .stat-pass .n { color: var(--pass); }
    .stat-fail .n { color: var(--fail); }
    .stat-skip .n { color: var(--skip); }
    .glance table { border-collapse: collapse; width: 100%; }
    .glance th, .glance td { text-align: left; vertical-align: top; padding: 0.4rem 0.6rem; border-bottom: 1px solid var(--border); }
    .glance td.count { white-space: nowrap; font-variant-numeric: tabular-nums; }
    .chips { display: flex; flex-wrap: wrap; gap: 0.35rem; }
    .chip { font: 600 0.85rem/1.5 var(--mono); padding: 0.05rem 0.5rem; border-radius: 6px; border: 1px solid; text-decoration: none; }
    .chip-pass { color: var(--pass); background: var(--pass-bg); }
    .chip-fail { color: var(--fail); background: var(--fail-bg); }
    .failures ul { padding-left: 1.2rem; }
    .failures li { margin: 0.3rem 0; }
    ol.blocks { list-style: none; padding: 0; margin: 0; }
    .block { border: 1px solid var(--border); border-left-width: 4px; border-radius: 6px; margin: 0.5rem 0; padding: 0.45rem 0.8rem; }
    .block.tone-pass { border-left-color: var(--pass); }
    .block.tone-skip { border-left-color: var(--skip); }
    .block.tone-fail { border-left-color: var(--fail); background: var(--panel); }
    .block:target { outline: 2px solid var(--link); }
    .block-head { display: flex; flex-wrap: wrap; align-items: baseline; gap: 0.5rem; }
    .block-head .loc { text-decoration: none; }
    .kind { color: var(--muted); }
    .duration { margin-left: auto; color: var(--muted); font-variant-numeric: tabular-nums; font-size: 0.9rem; }
    .tag { font-size: 0.75rem; border: 1px solid var(--border); border-radius: 4px; padding: 0 0.35rem; color: var(--muted); }
    pre.message { background: var(--fail-bg); border-color: var(--fail); white-space: pre-wrap; margin: 0.6rem 0; }
    ul.diagnostics { list-style: none; padding: 0; margin: 0.5rem 0; }
    ul.diagnostics li { margin: 0.15rem 0; }
    ul.diagnostics .sev-error code { color: var(--fail); }
    .bugcheck { border: 1px solid var(--fail); border-radius: 6px; padding: 0.5rem 0.8rem; margin: 0.6rem 0; background: var(--bg); }
    .bugcheck-title { margin: 0 0 0.3rem; }
    table.params { border-collapse: collapse; font-size: 0.9rem; }
    table.params th { text-align: left; padding: 0 1rem 0 0; color: var(--muted); font-weight: 600; }
    pre.crash, .captured pre { max-height: 28rem; overflow: auto; }
    pre.code .line { display: block; }
    pre.code .line-marked { background: var(--warn-bg); }
    pre.code .ln { color: var(--muted); user-select: none; }
    .note { font-size: 0.9rem; font-style: italic; }
    .repro { font-size: 0.85rem; margin: 0.4rem 0 0; }
    details { margin: 0.4rem 0; }
    summary { color: var(--muted); font-weight: 600; font-size: 0.9rem; }
    @media print { .block { break-inside: avoid; } details > * { display: block; } }
    """
}
