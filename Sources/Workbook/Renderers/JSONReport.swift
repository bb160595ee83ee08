import Foundation

// JSON results, schema version 1 (also in docs/results-schema.md; keep the two in step).
//
// {
//   "version": 1,
//   "summary": {
//     "passed": 12, "failed": 1, "ignored": 2, "total": 15,
//     "exercises": { "passed": 3, "total": 4 }
//   },
//   "blocks": [                                  // every block, chapters in the order given, blocks by line
//     {
//       "chapter": "chapters/01-irql.md",        // the chapter's path as the user named it
//       "file": "chapters/01-irql.md",           // the file `line` is in: the chapter, or the solutions
//                                                // file when a reference solution replaced the starter
//       "line": 12,                              // line of the opening ```swift fence, 1-based
//       "index": 0,                              // position among the chapter's swift blocks, from 0
//       "kind": "example|exercise|check|bugcheck|compile_fail|no_run|ignore",
//       "role": "example|exercise|check",
//       "expect": "run|bugcheck|compile_fail|no_run|ignore",
//       "exercise": "spin-1" | null,             // the exercise a starter or check belongs to
//       "status": "passed|failed|compile_error|bug_check|deadlock|timeout|trap|ignored",
//       "duration": 0.012,                       // seconds, rounded to milliseconds; 0 when not run
//       "message": "…",                          // why it did not pass; "" when it passed
//       "cached": false,                         // taken from the cache instead of run now
//       "bugcheck": {                            // the bug check raised, or null
//         "code": "0xD1", "name": "DRIVER_IRQL_NOT_LESS_OR_EQUAL",
//         "parameters": ["0x0000000000000000", …]  // as raised (four in practice), 64-bit, upper-case hex
//       } | null,
//       "diagnostics": [
//         { "file": "chapters/01-irql.md", "line": 14, "column": 5,
//           "severity": "error|warning|note", "message": "…" }
//       ]
//     }
//   ]
// }
//
// `kind` is the one-word summary: "check" or "exercise" for those roles, otherwise the expectation
// ("bugcheck", "compile_fail", "no_run", "ignore"), and "example" for a plain example that runs.
// `role` and `expect` give the two halves separately. `passed` counts status "passed", `ignored`
// status "ignored", `failed` everything else. An exercise has passed when all its blocks passed.
//
// Blocks are ordered by their position in the chapter (`index`).
//
// Stability: keys are sorted and the output is pretty-printed, so the same results give the same
// bytes. Fields are only ever added within version 1; renaming or removing one bumps `version`.
// Program output is deliberately absent (it can be large, and a check's output must not leak).

/// The results as JSON, schema version 1 (documented at the top of this file and in
/// `docs/results-schema.md`). Deterministic: the same results always give the same text.
public func jsonReport(_ results: [ChapterResult]) -> String {
    let tally = Rendering.Tally(results)
    let report = JSONResults.Report(
        version: 1,
        summary: .init(passed: tally.passed, failed: tally.failed, ignored: tally.ignored, total: tally.total,
                       exercises: .init(passed: tally.exercisesPassed, total: tally.exercises)),
        blocks: results.flatMap { chapter in
            Rendering.orderedResults(chapter).map { JSONResults.Block($0, chapter: chapter.chapter.path) }
        })
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
    // Encoding plain strings, integers and finite doubles cannot fail.
    let data = try! encoder.encode(report)
    return String(decoding: data, as: UTF8.self) + "\n"
}

/// The Codable mirror of the schema; separate from the model so the model can change without
/// silently changing the published format.
enum JSONResults {
    struct Report: Encodable {
        var version: Int
        var summary: Summary
        var blocks: [Block]
    }

    struct Summary: Encodable {
        var passed, failed, ignored, total: Int
        var exercises: Exercises
    }

    struct Exercises: Encodable {
        var passed, total: Int
    }

    struct Block: Encodable {
        var chapter: String
        var file: String
        var line: Int
        var index: Int
        var kind: String
        var role: String
        var expect: String
        var exercise: String?
        var status: String
        var duration: Double
        var message: String
        var cached: Bool
        var bugcheck: BugCheck?
        var race: Race?
        var diagnostics: [Diagnostic]

        init(_ result: BlockResult, chapter path: String) {
            chapter = path
            file = result.block.fence.file.isEmpty ? path : result.block.fence.file
            line = result.block.fence.line
            index = result.block.index
            kind = Rendering.reportKind(result.block)
            role = Rendering.roleName(result.block)
            expect = Rendering.expectationName(result.block)
            exercise = result.block.exerciseID
            status = result.status.rawValue
            duration = result.duration.isFinite ? max(0, (result.duration * 1000).rounded() / 1000) : 0
            message = result.message
            cached = result.cached
            bugcheck = result.bugCheck.map(BugCheck.init)
            race = result.race.map(Race.init)
            diagnostics = result.diagnostics.map(Diagnostic.init)
        }

        enum CodingKeys: String, CodingKey {
            case chapter, file, line, index, kind, role, expect, exercise, status, duration, message, cached, bugcheck, race,
                 diagnostics
        }

        // Written out so that absent values appear as `null` rather than vanishing: consumers
        // can rely on every key being present.
        func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(chapter, forKey: .chapter)
            try c.encode(file, forKey: .file)
            try c.encode(line, forKey: .line)
            try c.encode(index, forKey: .index)
            try c.encode(kind, forKey: .kind)
            try c.encode(role, forKey: .role)
            try c.encode(expect, forKey: .expect)
            try c.encode(exercise, forKey: .exercise)
            try c.encode(status, forKey: .status)
            try c.encode(duration, forKey: .duration)
            try c.encode(message, forKey: .message)
            try c.encode(cached, forKey: .cached)
            try c.encode(bugcheck, forKey: .bugcheck)
            try c.encode(race, forKey: .race)
            try c.encode(diagnostics, forKey: .diagnostics)
        }
    }

    /// A data race: `DataRaceInfo` with every key present.
    struct Race: Encodable {
        struct Access: Encodable {
            var kind: String
            var file: String?
            var line: Int?
            var column: Int?
            var context: String
            var processor: Int
            var irql: Int
            var locks: [String]

            init(_ a: DataRaceInfo.Access) {
                (kind, file, line, column) = (a.kind, a.location?.file, a.location?.line, a.column)
                (context, processor, irql, locks) = (a.context, a.processor, a.irql, a.locks)
            }

            func encode(to encoder: Encoder) throws {
                var c = encoder.container(keyedBy: CodingKeys.self)
                try c.encode(kind, forKey: .kind)
                try c.encode(file, forKey: .file)
                try c.encode(line, forKey: .line)
                try c.encode(column, forKey: .column)
                try c.encode(context, forKey: .context)
                try c.encode(processor, forKey: .processor)
                try c.encode(irql, forKey: .irql)
                try c.encode(locks, forKey: .locks)
            }

            enum CodingKeys: String, CodingKey { case kind, file, line, column, context, processor, irql, locks }
        }
        var variable: String
        var size: Int
        var current: Access
        var previous: Access
        var racingPairs: Int
        var advice: String

        init(_ race: DataRaceInfo) {
            (variable, size, racingPairs, advice) = (race.variable, race.size, race.racingPairs, race.advice)
            (current, previous) = (Access(race.current), Access(race.previous))
        }
    }

    struct BugCheck: Encodable {
        var code: String
        var name: String
        var parameters: [String]

        init(_ info: BugCheckInfo) {
            code = Rendering.hexCode(info.code)
            name = info.name
            parameters = info.parameters.map(Rendering.hexParameter)
        }
    }

    struct Diagnostic: Encodable {
        var file: String
        var line: Int
        var column: Int
        var severity: String
        var message: String

        init(_ diagnostic: Workbook.Diagnostic) {
            file = diagnostic.location.file
            line = diagnostic.location.line
            column = diagnostic.column
            severity = diagnostic.severity.rawValue
            message = diagnostic.message
        }
    }
}
