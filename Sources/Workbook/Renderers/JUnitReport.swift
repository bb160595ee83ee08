import Foundation

/// The results as JUnit XML, for CI systems that display test reports.
///
/// `<testsuites>` holds one `<testsuite>` per chapter (named by its path) and one `<testcase>` per
/// block, named `<slug>:<fence line>` with the chapter path (without `.md`, since CI tools read dots
/// in a classname as package separators) as classname, plus `file` and `line` attributes (the
/// solutions file when a reference solution replaced the starter).
/// Unsuccessful blocks get `<failure message="…" type="<status>">` whose text holds the message,
/// diagnostics, bug check and output diff; ignored blocks get `<skipped/>`. Program output goes
/// in `<system-out>`/`<system-err>`, except for checks and `hidden` blocks, whose output must not leak.
public func junitReport(_ results: [ChapterResult]) -> String {
    let tally = Rendering.Tally(results)
    let total = results.flatMap(\.results).reduce(0) { $0 + $1.duration }
    var xml = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
    xml += "<testsuites name=\"IRQL Workbook\" tests=\"\(tally.total)\" failures=\"\(tally.failed)\" errors=\"0\" "
        + "skipped=\"\(tally.ignored)\" time=\"\(Rendering.formatSeconds(total))\">\n"
    for chapter in results {
        let suite = Rendering.Tally([chapter])
        let path = chapter.chapter.path
        let className = path.hasSuffix(".md") ? String(path.dropLast(3)) : path
        let time = chapter.results.reduce(0) { $0 + $1.duration }
        xml += "  <testsuite name=\"\(XMLEscaping.escape(path))\" tests=\"\(suite.total)\" failures=\"\(suite.failed)\" "
            + "errors=\"0\" skipped=\"\(suite.ignored)\" time=\"\(Rendering.formatSeconds(time))\">\n"
        for result in Rendering.orderedResults(chapter) {
            xml += JUnit.testcase(result, slug: chapter.chapter.slug, className: className,
                                  file: result.block.fence.file.isEmpty ? path : result.block.fence.file)
        }
        xml += "  </testsuite>\n"
    }
    xml += "</testsuites>\n"
    return xml
}

enum JUnit {
    static func testcase(_ result: BlockResult, slug: String, className: String, file: String) -> String {
        let block = result.block
        let open = "    <testcase name=\"\(XMLEscaping.escape("\(slug):\(block.fence.line)"))\" "
            + "classname=\"\(XMLEscaping.escape(className))\" file=\"\(XMLEscaping.escape(file))\" "
            + "line=\"\(block.fence.line)\" time=\"\(Rendering.formatSeconds(result.duration))\""
        let isHidden = Rendering.isHidden(block)
        var inner = ""
        if result.status == .ignored {
            inner += "      <skipped/>\n"
        } else if !result.status.isSuccess {
            let headline = result.message.split(separator: "\n").first.map(String.init)
                ?? "\(Rendering.kindLabel(block)): \(Rendering.label(result.status))"
            inner += "      <failure message=\"\(XMLEscaping.escape(headline))\" type=\"\(result.status.rawValue)\">"
                + XMLEscaping.escape(details(result, isHidden: isHidden), attribute: false) + "</failure>\n"
        }
        if !isHidden {
            if !result.stdout.isEmpty { inner += "      <system-out>\(XMLEscaping.escape(result.stdout, attribute: false))</system-out>\n" }
            if !result.stderr.isEmpty { inner += "      <system-err>\(XMLEscaping.escape(result.stderr, attribute: false))</system-err>\n" }
        }
        return inner.isEmpty ? open + "/>\n" : open + ">\n" + inner + "    </testcase>\n"
    }

    /// The failure's text, as a terminal would show it.
    static func details(_ result: BlockResult, isHidden: Bool) -> String {
        var parts: [String] = ["\(result.block.fence): \(Rendering.kindLabel(result.block)): \(Rendering.label(result.status))"]
        if !result.message.isEmpty { parts.append(result.message) }
        if !result.diagnostics.isEmpty { parts.append(result.diagnostics.map(\.description).joined(separator: "\n")) }
        if let bugCheck = result.bugCheck {
            var text = "Bug check: \(bugCheck.title)"
            for (i, parameter) in bugCheck.parameters.enumerated() {
                text += "\n  Arg\(i + 1): \(Rendering.hexParameter(parameter))"
            }
            if !isHidden, !bugCheck.report.isEmpty { text += "\n\n" + bugCheck.report }
            parts.append(text)
        }
        if !isHidden, Rendering.showsOutputDiff(result), let expected = result.block.expectedOutput?.text {
            parts.append("Expected output (-) vs actual (+):\n"
                + OutputComparison.unifiedText(OutputComparison.lineDiff(expected: expected, actual: result.stdout)))
        }
        return parts.joined(separator: "\n\n")
    }
}

/// Escaping for XML 1.0 text and attribute values.
enum XMLEscaping {
    /// Escapes markup characters and drops the characters XML 1.0 cannot carry at all (most C0
    /// controls, U+FFFE, U+FFFF), which would make the whole report unparseable. Tab, newline and
    /// carriage return become character references in attributes, so attribute-value
    /// normalisation cannot turn them into spaces; in text only `\r` needs that.
    static func escape(_ text: String, attribute: Bool = true) -> String {
        var out = ""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&apos;"
            case "\n": out += attribute ? "&#10;" : "\n"
            case "\r": out += "&#13;"
            case "\t": out += attribute ? "&#9;" : "\t"
            default:
                let v = scalar.value
                guard v >= 0x20, v != 0xFFFE, v != 0xFFFF else { continue }
                out.unicodeScalars.append(scalar)
            }
        }
        return out
    }
}
