import Foundation

/// Escaping for every string that reaches an HTML page or report.
///
/// Chapter code, learner code, program output, diagnostics and paths are all untrusted: a learner's
/// `print("<script>")` must show up as text, never run. The only HTML not produced here is
/// libcmark's safe-mode rendering of the prose.
enum HTMLEscaping {
    /// Escapes `& < > " '`, so the result is safe both as element text and inside a quoted
    /// attribute value (either quote style).
    ///
    /// C0 control characters other than tab, newline and carriage return are dropped: HTML forbids
    /// them, and terminal colour codes in program output would otherwise show as garbage.
    static func escape(_ text: String) -> String {
        var out = ""
        out.unicodeScalars.reserveCapacity(text.unicodeScalars.count)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            case "\t", "\n", "\r": out.unicodeScalars.append(scalar)
            default:
                if scalar.value < 0x20 || scalar.value == 0x7F { continue }
                out.unicodeScalars.append(scalar)
            }
        }
        return out
    }

    /// An attribute value; the same escaping, named for the reader of the call site.
    static func attribute(_ value: String) -> String { escape(value) }

    /// A relative link to a file we wrote, percent-encoded so that odd file names still resolve
    /// under file://, then escaped for the attribute.
    static func href(file name: String, fragment: String? = nil) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        var link = name.addingPercentEncoding(withAllowedCharacters: allowed) ?? name
        if let fragment { link += "#" + (fragment.addingPercentEncoding(withAllowedCharacters: allowed) ?? fragment) }
        return attribute(link)
    }

    /// A fragment identifier from arbitrary text: lowercase ASCII letters, digits and dashes, so it
    /// needs no escaping and survives being typed into an address bar.
    static func identifier(_ text: String) -> String {
        var id = ""
        var pendingDash = false
        for scalar in text.lowercased().unicodeScalars {
            if scalar.isASCII, CharacterSet.alphanumerics.contains(scalar) {
                if pendingDash, !id.isEmpty { id += "-" }
                pendingDash = false
                id.unicodeScalars.append(scalar)
            } else {
                pendingDash = true
            }
        }
        return id.isEmpty ? "section" : id
    }
}
