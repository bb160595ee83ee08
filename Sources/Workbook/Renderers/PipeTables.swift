import Foundation

/// GitHub-style pipe tables for the course pages.
///
/// Core libcmark has no table extension, so a table in a chapter comes out as one paragraph of
/// `|`-separated lines. This pass turns such a paragraph back into a `<table>`. It works on
/// libcmark's already-safe HTML and only adds table tags around cell contents it leaves untouched,
/// so it cannot let raw HTML through.
enum PipeTables {
    /// Replaces every `<p>…</p>` whose lines are all `| … |` rows, the second one a delimiter row
    /// (`|---|:---:|`), by a table. Other paragraphs are left as they are.
    static func upgrade(_ html: String) -> String {
        var out = ""
        var rest = Substring(html)
        while let open = rest.range(of: "<p>|") {
            out += rest[..<open.lowerBound]
            guard let close = rest.range(of: "</p>", range: open.upperBound..<rest.endIndex) else { break }
            if let table = table("|" + rest[open.upperBound..<close.lowerBound]) {
                out += table
            } else {
                out += rest[open.lowerBound..<close.upperBound]
            }
            rest = rest[close.upperBound...]
        }
        return out + rest
    }

    static func table(_ paragraph: String) -> String? {
        let lines = paragraph.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
        guard lines.count >= 2, lines.allSatisfy({ $0.hasPrefix("|") && $0.hasSuffix("|") && $0.count >= 2 }) else { return nil }
        let header = cells(lines[0])
        let delimiters = cells(lines[1])
        guard delimiters.count == header.count, delimiters.allSatisfy(isDelimiter) else { return nil }
        let alignments = delimiters.map { cell -> String in
            let left = cell.hasPrefix(":"), right = cell.hasSuffix(":")
            if left && right { return " style=\"text-align: center\"" }
            if right { return " style=\"text-align: right\"" }
            return ""
        }
        func row(_ values: [String], tag: String) -> String {
            var html = "<tr>"
            for index in header.indices {
                let value = index < values.count ? values[index] : ""
                html += "<\(tag)\(alignments[index])>\(value)</\(tag)>"
            }
            return html + "</tr>\n"
        }
        var html = "<div class=\"table-wrap\"><table>\n<thead>\n" + row(header, tag: "th") + "</thead>\n"
        if lines.count > 2 {
            html += "<tbody>\n" + lines.dropFirst(2).map { row(cells($0), tag: "td") }.joined() + "</tbody>\n"
        }
        return html + "</table></div>\n"
    }

    /// Splits a row at `|` outside tags and outside `<code>` spans, dropping the outer pipes.
    static func cells(_ line: String) -> [String] {
        var cells: [String] = []
        var current = ""
        var inTag = false
        var codeDepth = 0
        var tagText = ""
        for character in line.dropFirst().dropLast() {
            if inTag {
                tagText.append(character)
                current.append(character)
                if character == ">" {
                    inTag = false
                    if tagText.hasPrefix("<code") { codeDepth += 1 }
                    if tagText.hasPrefix("</code") { codeDepth = max(0, codeDepth - 1) }
                }
                continue
            }
            switch character {
            case "<":
                inTag = true
                tagText = "<"
                current.append(character)
            case "|" where codeDepth == 0:
                cells.append(current.trimmingCharacters(in: .whitespaces))
                current = ""
            default:
                current.append(character)
            }
        }
        cells.append(current.trimmingCharacters(in: .whitespaces))
        return cells
    }

    static func isDelimiter(_ cell: String) -> Bool {
        var body = Substring(cell)
        if body.hasPrefix(":") { body = body.dropFirst() }
        if body.hasSuffix(":") { body = body.dropLast() }
        return !body.isEmpty && body.allSatisfy { $0 == "-" }
    }
}
