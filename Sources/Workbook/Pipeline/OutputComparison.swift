/// Compares a block's standard output with its ` ```output ` block.
enum OutputComparison {
    /// Lines with trailing whitespace removed and trailing blank lines dropped.
    static func normalized(_ text: String) -> [String] {
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map {
            String($0.reversed().drop(while: { $0 == " " || $0 == "\t" || $0 == "\r" }).reversed())
        }
        while lines.last == "" { lines.removeLast() }
        return lines
    }

    /// Nil when equal; otherwise a unified-style line diff (`-` expected, `+` actual).
    static func difference(expected: String, actual: String) -> String? {
        let a = normalized(expected), b = normalized(actual)
        guard a != b else { return nil }
        // Longest common subsequence table; outputs are short.
        var table = [[Int]](repeating: [Int](repeating: 0, count: b.count + 1), count: a.count + 1)
        for i in stride(from: a.count - 1, through: 0, by: -1) {
            for j in stride(from: b.count - 1, through: 0, by: -1) {
                table[i][j] = a[i] == b[j] ? table[i + 1][j + 1] + 1 : max(table[i + 1][j], table[i][j + 1])
            }
        }
        var lines: [String] = []
        var i = 0, j = 0
        while i < a.count || j < b.count {
            if i < a.count, j < b.count, a[i] == b[j] {
                lines.append("  \(a[i])"); i += 1; j += 1
            } else if i < a.count, j == b.count || table[i + 1][j] >= table[i][j + 1] {
                lines.append("- \(a[i])"); i += 1  // removals first, as diff(1) shows them
            } else {
                lines.append("+ \(b[j])"); j += 1
            }
        }
        return lines.joined(separator: "\n")
    }
}
