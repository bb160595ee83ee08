import XCTest
@testable import Workbook

/// Data races as the runner reports them: a fixture chapter compiled with the instrumentation and
/// run for real, and the naming of variables and locks from chapter lines.
final class RaceReportTests: XCTestCase {
    static let fixture = """
        # Races

        ```swift
        final class Counter { var count = 0 }
        let counter = Counter()
        let a = SystemThread { counter.count += 1 }
        let b = SystemThread { counter.count += 1 }
        a.wait(); b.wait()
        ```

        ```swift
        final class Guarded { var lock = FAST_MUTEX(); var count = 0 }
        let guarded = Guarded()
        ExInitializeFastMutex(&guarded.lock)
        let a = SystemThread { ExAcquireFastMutex(&guarded.lock); guarded.count += 1; ExReleaseFastMutex(&guarded.lock) }
        let b = SystemThread { guarded.count += 1 }
        a.wait(); b.wait()
        ```

        ```swift race
        final class Flag { var done = 0 }
        let flag = Flag()
        let a = SystemThread { flag.done = 1 }
        a.wait()
        let b = SystemThread { flag.done = 2 }
        let c = SystemThread { expect(flag.done >= 0) }
        b.wait(); c.wait()
        ```

        ```swift race
        final class Ordered { var value = 0; var ready = KEVENT() }
        let ordered = Ordered()
        KeInitializeEvent(&ordered.ready, NotificationEvent, FALSE)
        let writer = SystemThread { ordered.value = 7; KeSetEvent(&ordered.ready, IO_NO_INCREMENT, FALSE) }
        _ = KeWaitForSingleObject(&ordered.ready, Executive, KernelMode, FALSE, nil)
        expectEqual(ordered.value, 7)
        writer.wait()
        ```

        ```swift races=off
        final class Unchecked { var count = 0 }
        let unchecked = Unchecked()
        let a = SystemThread { unchecked.count += 1 }
        let b = SystemThread { unchecked.count += 1 }
        a.wait(); b.wait()
        ```

        ```swift
        final class Atomic { var count: LONG = 0 }
        let atomic = Atomic()
        let a = SystemThread { InterlockedIncrement(&atomic.count) }
        let b = SystemThread { InterlockedIncrement(&atomic.count) }
        a.wait(); b.wait()
        expectEqual(atomic.count, 2)
        ```
        """

    nonisolated(unsafe) static var results: [Int: BlockResult] = [:]

    override class func setUp() {
        super.setUp()
        do {
            let chapter = try fixtureChapter(fixture, name: "races.md")
            let checker = try makeChecker(name: "races")
            results = Dictionary(uniqueKeysWithValues: checker.check(chapter).results.map { ($0.block.fence.line, $0) })
        } catch {
            XCTFail("cannot check the fixture: \(error)")
        }
    }

    func testUnlockedCounterIsReportedWithBothLines() throws {
        let result = try XCTUnwrap(Self.results[3])
        XCTAssertEqual(result.status, .failed)
        let race = try XCTUnwrap(result.race, result.message)
        XCTAssertEqual(race.variable, "counter.count")
        XCTAssertEqual(race.size, 8)
        XCTAssertEqual(Set([race.current.location?.line, race.previous.location?.line]), [6, 7])
        XCTAssertTrue(race.current.locks.isEmpty && race.previous.locks.isEmpty)
        XCTAssertEqual(Set([race.current.context, race.previous.context]), ["thread 2", "thread 3"])
        XCTAssertTrue(race.advice.hasPrefix("Neither access holds a lock"), race.advice)
        XCTAssertTrue(result.message.hasPrefix("data race on counter.count (8 bytes)\n"), result.message)
    }

    func testAdviceNamesTheLockTheOtherSideHolds() throws {
        let race = try XCTUnwrap(Self.results[11]?.race, Self.results[11]?.message ?? "")
        let locked = [race.current, race.previous].first { !$0.locks.isEmpty }
        XCTAssertEqual(locked?.locks, ["guarded.lock (acquired at \(race.current.location?.file ?? "?"):15)"])
        XCTAssertTrue(race.advice.contains("guarded.lock"), race.advice)
        XCTAssertTrue(race.advice.contains("around it too"), race.advice)
    }

    func testRaceAttributePassesOnlyWithARace() throws {
        XCTAssertEqual(Self.results[20]?.status, .passed, Self.results[20]?.message ?? "")
        XCTAssertNotNil(Self.results[20]?.race)
        let ordered = try XCTUnwrap(Self.results[30])
        XCTAssertEqual(ordered.status, .failed)
        XCTAssertEqual(ordered.message, "expected a data race, but the race detector found none")
    }

    func testRacesOffReportsNothing() {
        XCTAssertEqual(Self.results[40]?.status, .passed, Self.results[40]?.message ?? "")
        XCTAssertNil(Self.results[40]?.race)
    }

    func testInterlockedNeverRaces() {
        XCTAssertEqual(Self.results[48]?.status, .passed, Self.results[48]?.message ?? "")
    }

    func testVariableNaming() {
        func name(_ line: String, _ column: Int, write: Bool) -> String? {
            RaceNaming.accessedExpression(in: line, column: column, write: write)?.joined(separator: ".")
        }
        XCTAssertEqual(name("stats.bytes += ULONG64(count)", 13, write: true), "stats.bytes")
        XCTAssertEqual(name("stats.bytes += ULONG64(count)", 16, write: false), "stats.bytes",
                       "a conversion names no variable; the compound assignment reads its target")
        XCTAssertNil(name("let total = ULONG64(count)", 13, write: false), "a conversion names no variable")
        XCTAssertEqual(name("if log.entries.count < 3 { log.entries.append(\"a\") }", 8, write: false), "log.entries.count")
        XCTAssertEqual(name("log.entries.append(\"a\")", 5, write: true), "log.entries")
        XCTAssertEqual(name("let number = lastNumber + 1", 14, write: false), "lastNumber")
        XCTAssertEqual(RaceNaming.commonName(["log", "entries", "count"], ["log", "entries"]), "log.entries")
        XCTAssertEqual(RaceNaming.commonName(["a"], ["b"]), "a")
        XCTAssertEqual(RaceNaming.commonName(nil, ["queue", "count"]), "queue.count")
        XCTAssertEqual(RaceNaming.lockArgument(in: "    ExAcquireFastMutex(&queue.lock)"), "queue.lock")
        XCTAssertNil(RaceNaming.lockArgument(in: "KeGetCurrentIrql()"))
    }
}
