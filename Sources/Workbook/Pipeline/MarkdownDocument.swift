import CCmark
import Foundation

/// A CommonMark document parsed by libcmark, owning its node tree.
///
/// A thin wrapper in the manner of apple/swift-markdown: the tree is walked through libcmark's
/// iterator, and every string is copied out before the tree is freed.
public final class MarkdownDocument {
    let root: OpaquePointer
    private let lines: [Substring]

    public init(_ text: String) {
        lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        let bytes = Array(text.utf8)
        // Safe mode (the default in 0.30): raw HTML and javascript: links never reach the pages.
        root = bytes.withUnsafeBufferPointer { buffer in
            buffer.baseAddress!.withMemoryRebound(to: CChar.self, capacity: max(buffer.count, 1)) {
                cmark_parse_document($0, buffer.count, CMARK_OPT_DEFAULT | CMARK_OPT_VALIDATE_UTF8)
            }
        } ?? cmark_node_new(CMARK_NODE_DOCUMENT)
    }

    deinit { cmark_node_free(root) }

    /// A fenced or indented code block as libcmark reports it.
    public struct CodeBlock {
        /// The whole info string, e.g. `swift bugcheck=0xD1`; empty for indented blocks.
        public var info: String
        /// The code, each line ending in `\n`, with list-item indentation removed.
        public var literal: String
        /// The line of the opening fence (fenced blocks) or of the first code line (indented ones).
        public var startLine: Int
        public var isFenced: Bool
        /// False for a fence that is never closed, which libcmark silently runs to the end of its
        /// container (usually the whole rest of the chapter).
        public var isClosed: Bool
        let node: OpaquePointer
    }

    /// Every code block, in document order.
    public var codeBlocks: [CodeBlock] {
        var blocks: [CodeBlock] = []
        walk { node in
            guard cmark_node_get_type(node) == CMARK_NODE_CODE_BLOCK else { return }
            let info = cmark_node_get_fence_info(node).map { String(cString: $0) } ?? ""
            let literal = cmark_node_get_literal(node).map { String(cString: $0) } ?? ""
            let line = Int(cmark_node_get_start_line(node))
            let fenced = Self.isFenced(node)
            blocks.append(CodeBlock(info: info, literal: literal, startLine: line, isFenced: fenced,
                                    isClosed: !fenced || isClosingFence(Int(cmark_node_get_end_line(node))),
                                    node: node))
        }
        return blocks
    }

    /// The text of the first level-1 heading.
    public var title: String? {
        var title: String?
        walk { node in
            guard title == nil, cmark_node_get_type(node) == CMARK_NODE_HEADING,
                  cmark_node_get_heading_level(node) == 1 else { return }
            title = Self.plainText(node)
        }
        return title
    }

    /// Headings of levels 1–3 as (level, text), for tables of contents.
    public var headings: [(level: Int, text: String)] {
        var result: [(Int, String)] = []
        walk { node in
            guard cmark_node_get_type(node) == CMARK_NODE_HEADING else { return }
            let level = Int(cmark_node_get_heading_level(node))
            if level <= 3 { result.append((level, Self.plainText(node))) }
        }
        return result
    }

    /// Renders the document to HTML, replacing each code block by `replacement(block)` (already
    /// escaped HTML produced by the caller). Everything else goes through libcmark's safe renderer,
    /// so raw HTML in the prose is omitted rather than passed through. The code blocks are taken
    /// out of the tree, so a document renders once.
    public func renderHTML(replacingCodeBlocks replacement: (CodeBlock) -> String) -> String {
        // Swap every code block for a paragraph holding a marker no chapter can contain (it carries
        // a random nonce), render safely, then splice the caller's HTML in place of each marker.
        let prefix = "WORKBOOKCODEBLOCK\(UInt64.random(in: 0...UInt64.max))N"
        var replacements: [String] = []
        for (i, block) in codeBlocks.enumerated() {
            let paragraph = cmark_node_new(CMARK_NODE_PARAGRAPH)!
            let text = cmark_node_new(CMARK_NODE_TEXT)!
            cmark_node_set_literal(text, "\(prefix)\(i)")
            cmark_node_append_child(paragraph, text)
            cmark_node_replace(block.node, paragraph)
            cmark_node_free(block.node)
            replacements.append(replacement(block))
        }
        guard let raw = cmark_render_html(root, CMARK_OPT_DEFAULT) else { return "" }
        let html = String(cString: raw)
        free(raw)
        // One pass: every piece after the first starts with "<index></p>".
        let pieces = html.components(separatedBy: "<p>\(prefix)")
        var out = pieces[0]
        for piece in pieces.dropFirst() {
            let digits = piece.prefix { $0.isNumber }
            guard let index = Int(digits), index < replacements.count, piece.dropFirst(digits.count).hasPrefix("</p>") else {
                out += piece
                continue
            }
            out += replacements[index] + piece.dropFirst(digits.count + 4)
        }
        return out
    }

    /// Turns every block quote that opens with a bold "Hint:" into a closed `<details>` element
    /// titled "Hint", so a learner reveals it when stuck instead of reading it with the exercise.
    /// The quote's content is kept as Markdown and rendered (safely) like the rest.
    public func collapseHints() {
        var quotes: [OpaquePointer] = []
        walk { node in
            guard cmark_node_get_type(node) == CMARK_NODE_BLOCK_QUOTE,
                  let paragraph = cmark_node_first_child(node), cmark_node_get_type(paragraph) == CMARK_NODE_PARAGRAPH,
                  let strong = cmark_node_first_child(paragraph), cmark_node_get_type(strong) == CMARK_NODE_STRONG,
                  Self.plainText(strong).trimmingCharacters(in: .whitespaces) == "Hint:" else { return }
            quotes.append(node)
        }
        for quote in quotes {
            let paragraph = cmark_node_first_child(quote)!
            let strong = cmark_node_first_child(paragraph)!
            // The label moves into the summary; drop the space that followed it.
            if let next = cmark_node_next(strong), cmark_node_get_type(next) == CMARK_NODE_TEXT,
               let literal = cmark_node_get_literal(next) {
                let rest = String(cString: literal)
                cmark_node_set_literal(next, String(rest.drop { $0 == " " }))
            }
            cmark_node_unlink(strong)
            cmark_node_free(strong)
            let details = cmark_node_new(CMARK_NODE_CUSTOM_BLOCK)!
            cmark_node_set_on_enter(details, "<details class=\"hint\"><summary>Hint</summary>")
            cmark_node_set_on_exit(details, "</details>")
            while let child = cmark_node_first_child(quote) {
                cmark_node_unlink(child)
                cmark_node_append_child(details, child)
            }
            cmark_node_replace(quote, details)
            cmark_node_free(quote)
        }
    }

    /// Whether line `number` (from 1) is a closing fence: three or more backticks or tildes,
    /// after any indentation and block-quote markers.
    private func isClosingFence(_ number: Int) -> Bool {
        guard number >= 1, number <= lines.count else { return false }
        let line = lines[number - 1].drop { $0 == " " || $0 == ">" || $0 == "\t" }
        let fence = line.prefix { $0 == "`" || $0 == "~" }
        return fence.count >= 3 && Set(fence).count == 1 && line.dropFirst(fence.count).allSatisfy(\.isWhitespace)
    }

    private func walk(_ visit: (OpaquePointer) -> Void) {
        guard let iterator = cmark_iter_new(root) else { return }
        defer { cmark_iter_free(iterator) }
        var nodes: [OpaquePointer] = []
        while true {
            let event = cmark_iter_next(iterator)
            if event == CMARK_EVENT_DONE { break }
            if event == CMARK_EVENT_ENTER, let node = cmark_iter_get_node(iterator) { nodes.append(node) }
        }
        nodes.forEach(visit)
    }

    private static func plainText(_ node: OpaquePointer) -> String {
        var text = ""
        var child = cmark_node_first_child(node)
        while let current = child {
            switch cmark_node_get_type(current) {
            case CMARK_NODE_TEXT, CMARK_NODE_CODE:
                text += cmark_node_get_literal(current).map { String(cString: $0) } ?? ""
            default:
                text += plainText(current)
            }
            child = cmark_node_next(current)
        }
        return text
    }

    /// libcmark 0.30 has no `cmark_node_get_fenced`: a fenced block's start column points at the
    /// fence, whose info string may be empty, so tell them apart by the opening characters.
    private static func isFenced(_ node: OpaquePointer) -> Bool {
        if let info = cmark_node_get_fence_info(node), info.pointee != 0 { return true }
        // An indented block's literal starts at its first code line; a fenced one's end line is its
        // closing fence, so a fenced block spans at least literal-lines + 1 lines.
        let lines = Int(cmark_node_get_end_line(node)) - Int(cmark_node_get_start_line(node)) + 1
        let literalLines = cmark_node_get_literal(node).map { String(cString: $0).filter { $0 == "\n" }.count } ?? 0
        return lines > literalLines
    }
}
