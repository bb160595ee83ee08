import XCTest
@testable import Workbook

/// `schedules=N` end to end: a racy block fails with a seed and an interleaving, the seed
/// replays the failure on its own, and the fixed block passes every schedule.
final class ExplorationRunnerTests: XCTestCase {
    private static let racy = """
        # Exploration

        ```swift
        final class Counter { var value = 0; var lock = FAST_MUTEX() }

        func increment(_ counter: Counter, locked: Bool) {
            for _ in 0..<10 {
                if locked { ExAcquireFastMutex(&counter.lock) }
                let seen = counter.value
                _ = KeGetCurrentIrql()
                counter.value = seen + 1
                if locked { ExReleaseFastMutex(&counter.lock) }
            }
        }

        func twoThreads(locked: Bool) -> Int {
            let counter = Counter()
            ExInitializeFastMutex(&counter.lock)
            var handles: [HANDLE] = [nil, nil]
            for i in 0..<2 {
                PsCreateSystemThread(&handles[i], THREAD_ALL_ACCESS, nil, nil, nil, { _ in increment(counter, locked: locked) }, nil)
            }
            for h in handles { ZwWaitForSingleObject(h, FALSE, nil) }
            return counter.value
        }
        ```

        ```swift schedules=200
        print("counting")
        expectEqual(twoThreads(locked: false), 20, "lost update")
        ```

        ```output
        counting
        ```

        ```swift schedules=200
        print("counting")
        expectEqual(twoThreads(locked: true), 20, "lost update")
        ```

        ```output
        counting
        ```

        ```swift schedules=50 strategy=pct
        expectEqual(twoThreads(locked: true), 20, "lost update")
        ```
        """

    func testARacyBlockFailsWithAReplayableSeedAndTheFixedOnePasses() throws {
        let checker = try makeChecker(name: "exploration")
        let results = Dictionary(uniqueKeysWithValues: checker.check(try fixtureChapter(Self.racy)).results
            .map { ($0.block.fence.line, $0) })
        guard let racy = results[28], let fixed = results[37], let pct = results[46] else {
            return XCTFail("blocks not found: \(results.keys.sorted())")
        }
        XCTAssertEqual(fixed.status, .passed, fixed.message)
        XCTAssertEqual(pct.status, .passed, pct.message)
        XCTAssertEqual(racy.status, .failed)
        XCTAssertEqual(racy.stdout, "counting\n", "the output is the failing schedule's alone")
        let message = racy.message
        XCTAssertTrue(message.contains("fixture.md:30: lost update: expected 20, got"), message)
        XCTAssertTrue(message.contains("Interleaving (the last"), message)
        XCTAssertTrue(message.contains("KeGetCurrentIrql at "), message)
        guard let range = message.range(of: #"replay it alone with `seed=(\d+)`"#, options: .regularExpression),
              let seed = UInt64(message[range].dropFirst("replay it alone with `seed=".count).dropLast()) else {
            return XCTFail("no replay seed in: \(message)")
        }
        // The seed alone reproduces the failure, with the same lost update.
        let replay = Self.racy.replacingOccurrences(of: "```swift schedules=200\nprint(\"counting\")\nexpectEqual(twoThreads(locked: false)",
                                                    with: "```swift seed=\(seed)\nprint(\"counting\")\nexpectEqual(twoThreads(locked: false)")
        XCTAssertNotEqual(replay, Self.racy)
        let replayed = try checker.check(try fixtureChapter(replay, name: "replay.md")).results.first { $0.block.fence.line == 28 }
        XCTAssertEqual(replayed?.status, .failed)
        let got = message.components(separatedBy: "expected 20, got ").dropFirst().first?.prefix { $0.isNumber }
        XCTAssertNotNil(got)
        XCTAssertTrue(replayed?.message.contains("expected 20, got \(got ?? "")") ?? false, replayed?.message ?? "")
    }
}
