import Foundation

/// What the course pages reveal beyond the learner's view.
public struct PageOptions: Hashable, Sendable {
    /// Show the code of `check=` and `hidden` blocks instead of a one-line note (for authors).
    public var showChecks: Bool
    /// Show each exercise's reference solution, folded, after its starter (for authors or after the
    /// course is done).
    public var showSolutions: Bool
    /// The course name in every page title and on the contents page.
    public var courseTitle: String = "IRQL Workbook"

    public init(showChecks: Bool = false, showSolutions: Bool = false) {
        self.showChecks = showChecks
        self.showSolutions = showSolutions
    }
}

/// Writes the course as static pages into `directory`: `index.html` (contents), one
/// `<slug>.html` per chapter, and the shared `style.css`. Pages work offline from file:// and need
/// no scripts.
///
/// Prose goes through libcmark's safe renderer (raw HTML is dropped); every code block is ours and
/// escaped. Checks and `hidden` blocks become a one-line note unless `options.showChecks`, and
/// solutions appear only with `options.showSolutions`, so the default pages can go to learners.
public func writeCoursePages(_ chapters: [ChapterResult], options: PageOptions, to directory: String) throws {
    let fm = FileManager.default
    try fm.createDirectory(atPath: directory, withIntermediateDirectories: true)
    let site = CoursePages(chapters: chapters, options: options)
    func write(_ text: String, _ name: String) throws {
        try text.write(toFile: (directory as NSString).appendingPathComponent(name), atomically: true, encoding: .utf8)
    }
    try write(CoursePages.stylesheet, "style.css")
    try write(site.indexPage(), "index.html")
    for index in chapters.indices {
        try write(site.chapterPage(index), site.fileNames[index])
    }
}

/// The pages of one course; parses every chapter once, since the contents page needs the headings
/// of all of them and each chapter page needs the titles of its neighbours.
struct CoursePages {
    let chapters: [ChapterResult]
    let options: PageOptions
    /// `<slug>.html`, made unique, and never `index.html`, which is the contents page.
    let fileNames: [String]
    /// Levels 2–3 headings per chapter with the ids the chapter page gives them.
    let headings: [[Heading]]

    struct Heading {
        var level: Int
        var text: String
        var id: String
    }

    init(chapters: [ChapterResult], options: PageOptions) {
        self.chapters = chapters
        self.options = options
        var used: Set<String> = ["index", "style"]
        var names: [String] = []
        for chapter in chapters {
            let base = chapter.chapter.slug.isEmpty ? "chapter" : chapter.chapter.slug
            var name = base, n = 2
            while used.contains(name.lowercased()) { name = "\(base)-\(n)"; n += 1 }
            used.insert(name.lowercased())
            names.append(name + ".html")
        }
        fileNames = names
        headings = chapters.map { Self.anchoredHeadings(MarkdownDocument($0.chapter.markdown).headings) }
    }

    /// Gives every level 1–3 heading a unique id; the order matches the `<hN>` tags libcmark
    /// writes, which is how the ids get into the page.
    static func anchoredHeadings(_ list: [(level: Int, text: String)]) -> [Heading] {
        var seen: [String: Int] = [:]
        return list.map { heading in
            var id = HTMLEscaping.identifier(heading.text)
            // Never clash with the block anchors `L<line>`.
            if id.first == "l", id.dropFirst().allSatisfy(\.isNumber) { id = "h-" + id }
            let count = seen[id, default: 0]
            seen[id] = count + 1
            if count > 0 { id += "-\(count + 1)" }
            return Heading(level: heading.level, text: heading.text, id: id)
        }
    }

    // MARK: Contents page

    func indexPage() -> String {
        let tally = Rendering.Tally(chapters)
        var list = ""
        for (index, chapter) in chapters.enumerated() {
            let file = fileNames[index]
            let exercises = exerciseStatuses(chapter)
            let done = exercises.filter { $0.status == .passed }.count
            list += "<li class=\"toc-chapter\">\n<p class=\"toc-title\"><a href=\"\(HTMLEscaping.href(file: file))\">"
                + "\(HTMLEscaping.escape(chapter.chapter.title))</a>"
            if !exercises.isEmpty { list += " <span class=\"muted\">\(done)/\(exercises.count) exercises</span>" }
            list += "</p>\n"
            let sub = headings[index].filter { $0.level == 2 || $0.level == 3 }
            if !sub.isEmpty {
                list += "<ul class=\"toc-headings\">\n"
                for heading in sub {
                    list += "<li class=\"toc-h\(heading.level)\"><a href=\"\(HTMLEscaping.href(file: file, fragment: heading.id))\">"
                        + "\(HTMLEscaping.escape(heading.text))</a></li>\n"
                }
                list += "</ul>\n"
            }
            if !exercises.isEmpty {
                list += "<ul class=\"toc-exercises\">\n"
                for exercise in exercises {
                    list += "<li><a href=\"\(HTMLEscaping.href(file: file, fragment: "L\(exercise.line)"))\"><code>"
                        + "\(HTMLEscaping.escape(exercise.id))</code></a> \(Rendering.statusBadge(exercise.status))</li>\n"
                }
                list += "</ul>\n"
            }
            list += "</li>\n"
        }
        let body = """
        <h1>\(HTMLEscaping.escape(options.courseTitle))</h1>
        <p class="lead">\(chapters.count) chapter\(chapters.count == 1 ? "" : "s") \u{00B7} \
        \(tally.exercisesPassed)/\(tally.exercises) exercises passed</p>
        <h2>Contents</h2>
        <ol class="toc">
        \(list)</ol>
        \(pager(previous: nil, next: chapters.isEmpty ? nil : (fileNames[0], chapters[0].chapter.title)))
        """
        return document(title: options.courseTitle, current: nil, body: body)
    }

    /// Each exercise of a chapter with the line of its starter and its overall status: failed if
    /// any of its blocks failed, passed if all passed, nil if none ran.
    func exerciseStatuses(_ chapter: ChapterResult) -> [(id: String, line: Int, status: BlockStatus?)] {
        var order: [(String, Int)] = []
        var seen: Set<String> = []
        for block in allBlocks(chapter) {
            guard case .exercise(let id) = block.role, !seen.contains(id) else { continue }
            seen.insert(id)
            order.append((id, block.fence.line))
        }
        return order.map { id, line in
            let results = chapter.results.filter { $0.block.exerciseID == id }
            guard !results.isEmpty else { return (id, line, nil) }
            let failing = results.first { !$0.status.isSuccess }
            if let failing { return (id, line, failing.status) }
            return (id, line, results.allSatisfy { $0.status == .passed } ? .passed : .ignored)
        }
    }

    /// The chapter's swift blocks, plus any the runner reported that the chapter no longer lists.
    func allBlocks(_ chapter: ChapterResult) -> [Block] {
        var blocks = chapter.chapter.blocks
        let lines = Set(blocks.map(\.fence.line))
        blocks += chapter.results.map(\.block).filter { !lines.contains($0.fence.line) }
        return blocks.sorted { $0.fence.line < $1.fence.line }
    }

    // MARK: Chapter pages

    func chapterPage(_ index: Int) -> String {
        let chapter = chapters[index]
        let blocks = allBlocks(chapter)
        var blockAt: [Int: Block] = [:]
        var outputOwner: [Int: Block] = [:]
        for block in blocks {
            blockAt[block.fence.line] = block
            if let output = block.expectedOutput { outputOwner[output.fence.line] = block }
        }
        // A solution follows the last piece of its exercise's starter: the output block if it has one.
        var solutionAfter: [Int: Solution] = [:]
        if options.showSolutions {
            for block in blocks {
                guard case .exercise(let id) = block.role, let solution = chapter.chapter.solutions[id] else { continue }
                solutionAfter = solutionAfter.filter { $0.value.id != id }
                solutionAfter[block.expectedOutput?.fence.line ?? block.fence.line] = solution
            }
        }

        let document = MarkdownDocument(chapter.chapter.markdown)
        document.collapseHints()
        var html = document.renderHTML { code in
            var piece: String
            if let block = blockAt[code.startLine] {
                piece = swiftBlock(block, result: Rendering.result(for: block, in: chapter))
            } else if let owner = outputOwner[code.startLine] {
                piece = hides(owner) ? "" : outputBlock(code.literal)
            } else {
                piece = plainBlock(code)
            }
            if let solution = solutionAfter[code.startLine] { piece += solutionBlock(solution) }
            return piece
        }
        html = PipeTables.upgrade(Self.insertHeadingIDs(html, headings[index]))

        let previous = index > 0 ? (fileNames[index - 1], chapters[index - 1].chapter.title) : nil
        let next = index + 1 < chapters.count ? (fileNames[index + 1], chapters[index + 1].chapter.title) : nil
        let body = "<article class=\"chapter\">\n\(html)</article>\n" + pager(previous: previous, next: next)
        return self.document(title: "\(chapter.chapter.title) \u{2014} \(options.courseTitle)", current: index, body: body)
    }

    func hides(_ block: Block) -> Bool { Rendering.isHidden(block) && !options.showChecks }

    func swiftBlock(_ block: Block, result: BlockResult?) -> String {
        let anchor = "L\(block.fence.line)"
        let tone = result.map { Rendering.tone($0.status) } ?? "none"
        if hides(block) {
            let what: String
            if case .check(let id) = block.role {
                what = "Hidden check for exercise <code>\(HTMLEscaping.escape(id))</code>"
            } else {
                what = "Hidden block"
            }
            var note = "<div class=\"hidden-block tone-\(tone)\" id=\"\(anchor)\">\(Rendering.statusBadge(result?.status)) \(what)</div>\n"
            // The message is the learner's feedback; the code and output that produced it stay hidden.
            if let result, !result.status.isSuccess, !result.message.isEmpty {
                note += "<pre class=\"block-message\">\(HTMLEscaping.escape(result.message))</pre>\n"
            }
            return note
        }
        var caption = Rendering.statusBadge(result?.status)
        caption += " <span class=\"kind\">\(HTMLEscaping.escape(Rendering.kindLabel(block)))</span>"
        if block.hidden || Rendering.isCheck(block) { caption += " <span class=\"tag\">hidden from learners</span>" }
        caption += " <a class=\"line\" href=\"#\(anchor)\">line \(block.fence.line)</a>"
        var html = "<figure class=\"codeblock tone-\(tone)\" id=\"\(anchor)\">\n<figcaption>\(caption)</figcaption>\n"
            + "<pre><code class=\"language-swift\">\(HTMLEscaping.escape(block.code))</code></pre>\n"
        if let result, !result.status.isSuccess {
            if !result.message.isEmpty {
                html += "<pre class=\"block-message\">\(HTMLEscaping.escape(result.message))</pre>\n"
            }
            if Rendering.showsOutputDiff(result), let expected = block.expectedOutput?.text {
                html += "<details open><summary>Expected output (\u{2212}) vs your output (+)</summary>\n"
                    + Rendering.diffHTML(OutputComparison.lineDiff(expected: expected, actual: result.stdout)) + "\n</details>\n"
            }
        }
        return html + "</figure>\n"
    }

    func outputBlock(_ text: String) -> String {
        "<figure class=\"output\">\n<figcaption>Output</figcaption>\n<pre class=\"output\"><samp>\(HTMLEscaping.escape(text))</samp></pre>\n</figure>\n"
    }

    func plainBlock(_ code: MarkdownDocument.CodeBlock) -> String {
        let language = code.info.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "," }).first.map(String.init) ?? ""
        let cls = language.isEmpty ? "" : " class=\"language-\(HTMLEscaping.attribute(language))\""
        return "<pre><code\(cls)>\(HTMLEscaping.escape(code.literal))</code></pre>\n"
    }

    func solutionBlock(_ solution: Solution) -> String {
        "<details class=\"solution\">\n<summary>Reference solution for <code>\(HTMLEscaping.escape(solution.id))</code></summary>\n"
            + "<pre><code class=\"language-swift\">\(HTMLEscaping.escape(solution.code))</code></pre>\n</details>\n"
    }

    /// Adds `id`s to libcmark's bare `<h1>`–`<h3>` tags, in document order. Code blocks cannot
    /// produce such tags (they are escaped), so the n-th tag is the n-th heading.
    static func insertHeadingIDs(_ html: String, _ headings: [Heading]) -> String {
        var out = ""
        var rest = Substring(html)
        for heading in headings {
            let tag = "<h\(heading.level)>"
            guard let range = rest.range(of: tag) else { break }
            out += rest[..<range.lowerBound]
            out += "<h\(heading.level) id=\"\(heading.id)\">"
            rest = rest[range.upperBound...]
        }
        return out + rest
    }

    // MARK: Frame

    func pager(previous: (String, String)?, next: (String, String)?) -> String {
        var html = "<nav class=\"pager\" aria-label=\"Previous and next chapter\">\n"
        if let (file, title) = previous {
            html += "<a class=\"prev\" rel=\"prev\" href=\"\(HTMLEscaping.href(file: file))\"><small>Previous</small>\u{2190} \(HTMLEscaping.escape(title))</a>\n"
        } else {
            html += "<span></span>\n"
        }
        if let (file, title) = next {
            html += "<a class=\"next\" rel=\"next\" href=\"\(HTMLEscaping.href(file: file))\"><small>Next</small>\(HTMLEscaping.escape(title)) \u{2192}</a>\n"
        }
        return html + "</nav>\n"
    }

    func sidebar(current: Int?) -> String {
        var html = "<nav class=\"sidebar\" aria-label=\"Chapters\">\n<p class=\"course\"><a href=\"index.html\""
            + (current == nil ? " aria-current=\"page\"" : "") + ">\(HTMLEscaping.escape(options.courseTitle))</a></p>\n<ol>\n"
        for (index, chapter) in chapters.enumerated() {
            let exercises = exerciseStatuses(chapter)
            let done = exercises.filter { $0.status == .passed }.count
            let mark = exercises.isEmpty ? ""
                : " <span class=\"progress\(done == exercises.count ? " complete" : "")\">\(done)/\(exercises.count)</span>"
            html += "<li><a href=\"\(HTMLEscaping.href(file: fileNames[index]))\""
                + (index == current ? " aria-current=\"page\"" : "")
                + ">\(HTMLEscaping.escape(chapter.chapter.title))</a>\(mark)"
            if index == current {
                let sub = headings[index].filter { $0.level == 2 }
                if !sub.isEmpty {
                    html += "\n<ul>\n" + sub.map {
                        "<li><a href=\"#\($0.id)\">\(HTMLEscaping.escape($0.text))</a></li>\n"
                    }.joined() + "</ul>\n"
                }
            }
            html += "</li>\n"
        }
        return html + "</ol>\n</nav>\n"
    }

    func document(title: String, current: Int?, body: String) -> String {
        """
        <!DOCTYPE html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>\(HTMLEscaping.escape(title))</title>
        <link rel="stylesheet" href="style.css">
        </head>
        <body>
        <div class="layout">
        \(sidebar(current: current))<main class="content">
        \(body)</main>
        </div>
        </body>
        </html>

        """
    }

    static let stylesheet = Rendering.sharedCSS + "\n" + """
    .layout { display: grid; grid-template-columns: 17rem minmax(0, 1fr); min-height: 100vh; }
    .sidebar { position: sticky; top: 0; align-self: start; max-height: 100vh; overflow-y: auto;
               padding: 1.25rem 1rem 2rem; border-right: 1px solid var(--border); background: var(--panel); font-size: 0.92rem; }
    .sidebar .course { font-weight: 700; font-size: 1.05rem; margin: 0 0 1rem; }
    .sidebar .course a { color: var(--fg); text-decoration: none; }
    .sidebar ol { padding-left: 1.4rem; margin: 0; }
    .sidebar li { margin: 0.35rem 0; }
    .sidebar ul { list-style: none; padding-left: 0.6rem; margin: 0.3rem 0 0.5rem; border-left: 2px solid var(--border); }
    .sidebar ul li { margin: 0.15rem 0; }
    .sidebar a { text-decoration: none; }
    .sidebar a:hover { text-decoration: underline; }
    .sidebar a[aria-current="page"] { font-weight: 700; color: var(--fg); }
    .progress { font-size: 0.75rem; color: var(--muted); border: 1px solid var(--border); border-radius: 999px; padding: 0 0.4rem; }
    .progress.complete { color: var(--pass); border-color: var(--pass); }
    .content { max-width: 50rem; width: 100%; padding: 2rem 2.5rem 4rem; font-size: 1.0625rem; line-height: 1.7; }
    .content h1 { font-size: 2.1rem; line-height: 1.2; margin: 0 0 1.25rem; }
    .content h2 { font-size: 1.5rem; margin: 2.5rem 0 0.75rem; padding-bottom: 0.25rem; border-bottom: 1px solid var(--border); }
    .content h3 { font-size: 1.2rem; margin: 2rem 0 0.5rem; }
    .content h1, .content h2, .content h3 { scroll-margin-top: 1rem; }
    .content blockquote { margin: 1rem 0; padding: 0.25rem 1rem; border-left: 4px solid var(--border); color: var(--muted); }
    .content img { max-width: 100%; }
    .table-wrap { overflow-x: auto; margin: 1rem 0; }
    .content table { border-collapse: collapse; font-size: 0.95rem; line-height: 1.5; }
    .content th, .content td { border: 1px solid var(--border); padding: 0.35rem 0.7rem; text-align: left; vertical-align: top; }
    .content thead th { background: var(--panel); }
    .content hr { border: 0; border-top: 1px solid var(--border); margin: 2rem 0; }
    .lead { font-size: 1.15rem; color: var(--muted); }
    figure { margin: 1.25rem 0; }
    figure pre { margin: 0; }
    figcaption { display: flex; flex-wrap: wrap; align-items: baseline; gap: 0.5rem; font-size: 0.85rem; margin-bottom: 0.3rem; }
    figcaption .kind { color: var(--muted); }
    figcaption .line { margin-left: auto; color: var(--muted); font-size: 0.8rem; }
    .codeblock:target pre, .hidden-block:target { outline: 2px solid var(--link); }
    .codeblock.tone-pass pre { border-left: 3px solid var(--pass); }
    .codeblock.tone-fail pre { border-left: 3px solid var(--fail); }
    .codeblock.tone-skip pre, .codeblock.tone-none pre { border-left: 3px solid var(--skip); }
    .tag { font-size: 0.75rem; border: 1px solid var(--border); border-radius: 4px; padding: 0 0.35rem; color: var(--muted); }
    figure.output figcaption { color: var(--muted); font-weight: 600; }
    pre.output { background: var(--bg); border-style: dashed; }
    pre.block-message { background: var(--fail-bg); border-color: var(--fail); white-space: pre-wrap; margin: 0.4rem 0 0; font-size: 0.85rem; }
    .hidden-block { margin: 1rem 0; padding: 0.4rem 0.8rem; border: 1px dashed var(--border); border-radius: 6px;
                    color: var(--muted); font-size: 0.9rem; background: var(--panel); }
    details.hint { margin: 1rem 0; padding: 0.25rem 1rem; border-left: 4px solid var(--border); color: var(--muted); }
    details.hint summary { cursor: pointer; font-weight: 600; }
    details.solution { margin: 1rem 0; border: 1px solid var(--border); border-radius: 6px; padding: 0.4rem 0.8rem; }
    details.solution summary { font-weight: 600; color: var(--muted); }
    details.solution[open] pre { margin-bottom: 0.3rem; }
    .pager { display: flex; justify-content: space-between; gap: 1rem; margin-top: 3rem; padding-top: 1rem; border-top: 1px solid var(--border); }
    .pager a { display: block; max-width: 48%; padding: 0.5rem 0.9rem; border: 1px solid var(--border); border-radius: 8px; text-decoration: none; }
    .pager a small { display: block; color: var(--muted); font-size: 0.78rem; }
    .pager .next { margin-left: auto; text-align: right; }
    ol.toc { padding-left: 1.5rem; }
    .toc-chapter { margin: 0 0 1.5rem; }
    .toc-title { font-size: 1.15rem; font-weight: 600; margin: 0 0 0.3rem; }
    .toc-title .muted { font-size: 0.9rem; font-weight: 400; margin-left: 0.3rem; }
    .toc a { text-decoration: none; }
    .toc a:hover { text-decoration: underline; }
    .toc-headings { list-style: none; padding-left: 0.75rem; margin: 0.2rem 0; }
    .toc-headings .toc-h3 { padding-left: 1.25rem; font-size: 0.95rem; }
    .toc-exercises { list-style: none; padding-left: 0.75rem; display: flex; flex-wrap: wrap; gap: 0.4rem 1rem; margin: 0.5rem 0 0; }
    @media (max-width: 52rem) {
      .layout { grid-template-columns: 1fr; }
      .sidebar { position: static; max-height: none; border-right: 0; border-bottom: 1px solid var(--border); }
      .content { padding: 1.25rem 1rem 3rem; }
    }
    @media print {
      .sidebar, .pager { display: none; }
      .layout { display: block; }
      pre { white-space: pre-wrap; }
    }
    """
}
