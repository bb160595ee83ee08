import Foundation

/// What `workbook check` prints: a line per chapter as it finishes, the failures with `file:line`
/// and their reason, and the closing `N passed, N failed` line.
public enum TerminalSummary {
    /// The line and failure details for one finished chapter.
    public static func chapterReport(_ result: ChapterResult, learnerMode: Bool) -> String {
        let counts = Counts(result.results)
        let cached = result.results.filter(\.cached).count
        let seconds = result.results.filter { !$0.cached }.reduce(0) { $0 + $1.duration }
        var line = "\(counts.failed == 0 ? "ok  " : "FAIL") \(result.chapter.path): \(counts.passed) passed"
        if counts.failed > 0 { line += ", \(counts.failed) failed" }
        if counts.ignored > 0 { line += ", \(counts.ignored) ignored" }
        let exercises = result.exercises
        if !exercises.isEmpty {
            line += "; exercises \(exercises.filter(\.passed).count)/\(exercises.count) solved"
        }
        line += cached > 0 ? " (\(cached) cached, \(String(format: "%.2f", seconds)) s running)" : ""
        var lines = [line]
        // A learner gets one failure per unsolved exercise, the first, as Rustlings shows one
        // problem at a time: the other checks usually fail for the same reason.
        var reported: Set<String> = []
        for failure in result.results where !failure.status.isSuccess {
            let what: String
            switch failure.block.role {
            case .example: what = "block"
            case .exercise(let id): what = "exercise '\(id)' (starter)"
            case .check(let id):
                guard !learnerMode || reported.insert(id).inserted else { continue }
                what = learnerMode ? "exercise '\(id)' not solved yet" : "check of exercise '\(id)'"
            }
            lines.append("  \(failure.block.fence): \(what): \(failure.status.rawValue.replacingOccurrences(of: "_", with: " "))")
            for messageLine in failure.message.split(separator: "\n", omittingEmptySubsequences: false).prefix(30) {
                lines.append("      \(messageLine)")
            }
            if learnerMode, case .check(let id) = failure.block.role {
                let checks = result.results.filter { $0.block.role == .check(id: id) }
                let failing = checks.filter { !$0.status.isSuccess }.count
                if failing > 1 { lines.append("      (\(failing) of its \(checks.count) checks fail)") }
            }
        }
        return lines.joined(separator: "\n")
    }

    /// For a learner: how many exercises are solved, and where the first unsolved one starts.
    public static func progressLine(_ results: [ChapterResult]) -> String? {
        let exercises = results.flatMap { chapter in chapter.exercises.map { (chapter, $0.id, $0.passed) } }
        guard !exercises.isEmpty else { return nil }
        let solved = exercises.filter(\.2).count
        guard let (chapter, id, _) = exercises.first(where: { !$0.2 }) else {
            return "exercises: all \(exercises.count) solved"
        }
        let starter = chapter.results.first { $0.block.role == .exercise(id: id) }?.block.fence
        return "exercises: \(solved) of \(exercises.count) solved; next: '\(id)'"
            + (starter.map { " at \($0)" } ?? "")
    }

    /// `N passed, N failed` (with `, N skipped` when blocks were ignored), alone on its line.
    public static func closingLine(_ results: [ChapterResult]) -> String {
        let counts = Counts(results.flatMap(\.results))
        var line = "\(counts.passed) passed, \(counts.failed) failed"
        if counts.ignored > 0 { line += ", \(counts.ignored) skipped" }
        return line
    }

    struct Counts {
        var passed = 0, failed = 0, ignored = 0
        init(_ results: [BlockResult]) {
            for result in results {
                switch result.status {
                case .passed: passed += 1
                case .ignored: ignored += 1
                default: failed += 1
                }
            }
        }
    }
}
