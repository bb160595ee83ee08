/// Compares a block's standard output with its ` ```output ` block, trailing whitespace aside.
enum OutputComparison {
    /// One line of a line-based diff.
    enum DiffLine: Equatable {
        case same(String)
        case removed(String)  // expected, missing from the actual output
        case added(String)    // printed, but not expected
    }

    /// Lines with trailing whitespace removed and trailing blank lines dropped.
    static func normalized(_ text: String) -> [String] {
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map {
            String($0.reversed().drop(while: { $0 == " " || $0 == "\t" || $0 == "\r" }).reversed())
        }
        while lines.last == "" { lines.removeLast() }
        return lines
    }

    /// Nil when the outputs match; otherwise the diff as text (`-` expected, `+` actual).
    static func difference(expected: String, actual: String) -> String? {
        let diff = lineDiff(expected: expected, actual: actual)
        guard diff.contains(where: { if case .same = $0 { return false } else { return true } }) else { return nil }
        return unifiedText(diff)
    }

    /// The diff as plain text with `-`/`+`/space prefixes, for terminals and JUnit.
    static func unifiedText(_ diff: [DiffLine]) -> String {
        diff.map {
            switch $0 {
            case .same(let line): return "  " + line
            case .removed(let line): return "- " + line
            case .added(let line): return "+ " + line
            }
        }.joined(separator: "\n")
    }

    /// A minimal line diff (longest common subsequence) of the normalized outputs. Outputs of
    /// teaching programs are short; past a size limit the whole texts are shown as removed/added
    /// rather than spending seconds on a diff.
    static func lineDiff(expected: String, actual: String) -> [DiffLine] {
        let a = normalized(expected), b = normalized(actual)
        guard a.count * b.count <= 4_000_000 else { return a.map(DiffLine.removed) + b.map(DiffLine.added) }
        // lcs[i][j] is the LCS length of a[i...] and b[j...].
        var lcs = Array(repeating: Array(repeating: 0, count: b.count + 1), count: a.count + 1)
        for i in stride(from: a.count - 1, through: 0, by: -1) {
            for j in stride(from: b.count - 1, through: 0, by: -1) {
                lcs[i][j] = a[i] == b[j] ? lcs[i + 1][j + 1] + 1 : max(lcs[i + 1][j], lcs[i][j + 1])
            }
        }
        var out: [DiffLine] = []
        var i = 0, j = 0
        while i < a.count || j < b.count {
            if i < a.count, j < b.count, a[i] == b[j] {
                out.append(.same(a[i])); i += 1; j += 1
            } else if i < a.count, j == b.count || lcs[i + 1][j] >= lcs[i][j + 1] {
                // Removals first, as `diff -u` does, so a changed line reads old-then-new.
                out.append(.removed(a[i])); i += 1
            } else {
                out.append(.added(b[j])); j += 1
            }
        }
        return out
    }
}
