import XCTest
@testable import Workbook

/// Every way a block can end, judged by compiling and running one fixture chapter for real.
final class RunnerStatusTests: XCTestCase {
    static let fixture = """
        # Statuses

        ```swift
        print("hello")
        ```

        ```output
        hello
        ```

        ```swift
        let values = [1]
        print(values[Int(KeGetCurrentIrql()) + 3])
        ```

        ```swift timeout=1
        var spins = 0
        while true { spins &+= 1 }
        ```

        ```swift
        import Glibc
        exit(0)
        ```

        ```swift
        while true { print("flooding the output with the same line, again and again") }
        ```

        ```swift bugcheck=0xD1
        print("no bug check here")
        ```

        ```swift bugcheck=DRIVER_VERIFIER_DETECTED_VIOLATION
        var old: KIRQL = 0
        KeRaiseIrql(DISPATCH_LEVEL, &old)
        KeRaiseIrql(PASSIVE_LEVEL, &old)
        ```

        ```swift bugcheck=IRQL_NOT_GREATER_OR_EQUAL verifier=off
        var old: KIRQL = 0
        KeRaiseIrql(DISPATCH_LEVEL, &old)
        KeRaiseIrql(PASSIVE_LEVEL, &old)
        ```

        ```swift bugcheck=0xD1
        var old: KIRQL = 0
        KeRaiseIrql(DISPATCH_LEVEL, &old)
        KeRaiseIrql(PASSIVE_LEVEL, &old)
        ```

        ```swift
        KeBugCheckEx(0xD1, 0x10, 2, 0, 0x20)
        ```

        ```swift
        let broken: Int = "text"
        ```

        ```swift compile_fail="cannot convert"
        let notAnInt: Int = "text"
        ```

        ```swift compile_fail
        let fine = 1
        ```

        ```swift compile_fail="no such words"
        let wrong: Int = "text"
        ```

        ```swift
        var mutex = FAST_MUTEX()
        KeInitializeEvent(&mutex.Event, SynchronizationEvent, FALSE)
        ExAcquireFastMutex(&mutex)
        ```

        ```swift
        expectEqual(KeGetCurrentIrql(), DISPATCH_LEVEL, "the IRQL")
        expect(1 + 1 == 3, "arithmetic")
        ```

        ```swift
        print("a")
        ```

        ```output
        b
        ```

        ```swift no_run
        while true {}
        ```

        ```swift ignore
        this is not Swift at all
        ```

        ```swift
        struct Shared { static let value = 42 }
        ```

        ```swift
        expectEqual(Shared.value, 42)
        ```

        ```swift
        final class Reentered { var lock: KSPIN_LOCK = 0; var dpc = KDPC(); var runs = 0 }
        let device = Reentered()
        KeInitializeDpc(&device.dpc, { _, _, _, _ in
            KeAcquireSpinLockAtDpcLevel(&device.lock)
            device.runs += 1
            KeReleaseSpinLockFromDpcLevel(&device.lock)
        }, nil)
        var oldIrql: KIRQL = 0
        KeAcquireSpinLock(&device.lock, &oldIrql)
        KeInsertQueueDpc(&device.dpc, nil, nil)
        KeReleaseSpinLock(&device.lock, oldIrql)
        expectEqual(device.runs, 1)
        ```

        ```swift
        struct Ticket: ~Copyable {}
        ```

        ```swift compile_fail="consumed more than once"
        let ticket = Ticket()
        _ = consume ticket
        _ = consume ticket
        ```

        ```swift
        func Recurse(_ n: Int) -> Int { n == 0 ? 0 : 1 + Recurse(n - 1) }
        let deep = SystemThread { print(Recurse(10_000_000)) }
        deep.wait()
        ```
        """

    /// Status and message of each block, by the line of its fence.
    nonisolated(unsafe) static var results: [Int: BlockResult] = [:]
    nonisolated(unsafe) static var secondRun: [Int: BlockResult] = [:]

    override class func setUp() {
        super.setUp()
        do {
            let chapter = try fixtureChapter(fixture)
            let checker = try makeChecker(cache: true, name: "statuses")
            results = Dictionary(uniqueKeysWithValues: checker.check(chapter).results.map { ($0.block.fence.line, $0) })
            secondRun = Dictionary(uniqueKeysWithValues: checker.check(chapter).results.map { ($0.block.fence.line, $0) })
        } catch {
            XCTFail("cannot check the fixture: \(error)")
        }
    }

    private func result(_ line: Int, file: StaticString = #filePath, testLine: UInt = #line) -> BlockResult? {
        let result = Self.results[line]
        XCTAssertNotNil(result, "no block at line \(line)", file: file, line: testLine)
        return result
    }

    func testStackOverflowInASimulatedThreadIsReportedAsSuch() {
        let overflow = result(132)
        XCTAssertEqual(overflow?.status, .failed)
        XCTAssertTrue(overflow?.message.contains("stack overflow in thread 2") ?? false, overflow?.message ?? "")
    }

    func testPassWithMatchingOutput() {
        XCTAssertEqual(result(3)?.status, .passed, result(3)?.message ?? "")
        XCTAssertEqual(result(3)?.stdout, "hello\n")
    }

    func testTrapIsReportedWithItsChapterLine() {
        XCTAssertEqual(result(11)?.status, .trap)
        XCTAssertTrue(result(11)?.message.contains("Fatal error") ?? false, result(11)?.message ?? "")
        XCTAssertTrue(result(11)?.stderr.contains("fixture.md:13") ?? false, "the backtrace names the chapter line")
    }

    func testHangTimesOut() {
        XCTAssertEqual(result(16)?.status, .timeout)
        XCTAssertTrue(result(16)?.message.contains("within 1 s") ?? false, result(16)?.message ?? "")
    }

    func testEarlyExitNeverPasses() {
        XCTAssertEqual(result(21)?.status, .failed)
        XCTAssertTrue(result(21)?.message.contains("exited before the block finished") ?? false, result(21)?.message ?? "")
    }

    func testOutputFloodIsStopped() {
        XCTAssertEqual(result(26)?.status, .failed)
        XCTAssertTrue(result(26)?.message.contains("KiB of output") ?? false, result(26)?.message ?? "")
        XCTAssertLessThanOrEqual(result(26)?.stdout.utf8.count ?? .max, BlockRunner().outputLimit)
    }

    func testMissedBugCheckFails() {
        XCTAssertEqual(result(30)?.status, .failed)
        XCTAssertTrue(result(30)?.message.contains("expected the kernel to bug-check with DRIVER_IRQL_NOT_LESS_OR_EQUAL (0xD1)") ?? false,
                      result(30)?.message ?? "")
    }

    func testExpectedBugCheckPassesWithItsParameters() {
        let verified = result(34)
        XCTAssertEqual(verified?.status, .passed, verified?.message ?? "")
        XCTAssertEqual(verified?.bugCheck?.code, 0xC4)
        XCTAssertEqual(verified?.bugCheck?.parameters, [0x30, 2, 0, 0].map(UInt64.init), "P1 0x30, P2 current, P3 requested")
        XCTAssertEqual(verified?.bugCheck?.location?.line, 37)
        XCTAssertFalse(verified?.bugCheck?.report.isEmpty ?? true)
        let retail = result(40)
        XCTAssertEqual(retail?.status, .passed, retail?.message ?? "")
        XCTAssertEqual(retail?.bugCheck?.code, 0x9)
    }

    func testWrongBugCheckFails() {
        XCTAssertEqual(result(46)?.status, .bugCheck)
        XCTAssertTrue(result(46)?.message.contains("expected bug check DRIVER_IRQL_NOT_LESS_OR_EQUAL (0xD1), but the kernel raised DRIVER_VERIFIER_DETECTED_VIOLATION (0xC4)") ?? false,
                      result(46)?.message ?? "")
    }

    func testUnexpectedBugCheck() {
        XCTAssertEqual(result(52)?.status, .bugCheck)
        XCTAssertEqual(result(52)?.bugCheck?.parameters, [0x10, 2, 0, 0x20])
        XCTAssertTrue(result(52)?.message.contains("fixture.md:53") ?? false, result(52)?.message ?? "")
        // The parameters are in the message itself, so the terminal shows what the chapter asks the
        // learner to read.
        XCTAssertTrue(result(52)?.message.contains("Arg2: 0000000000000002") ?? false, result(52)?.message ?? "")
    }

    func testCompileErrorIsIsolatedToItsBlock() {
        let broken = result(56)
        XCTAssertEqual(broken?.status, .compileError)
        XCTAssertEqual(broken?.diagnostics.first?.location.line, 57)
        XCTAssertTrue(broken?.diagnostics.first?.location.file.hasSuffix("fixture.md") ?? false)
        XCTAssertTrue(broken?.message.contains("cannot convert") ?? false, broken?.message ?? "")
    }

    func testCompileFail() {
        XCTAssertEqual(result(60)?.status, .passed, result(60)?.message ?? "")
        XCTAssertEqual(result(64)?.status, .failed)
        XCTAssertEqual(result(64)?.message, "compiled without errors, but the block is marked compile_fail")
        XCTAssertEqual(result(68)?.status, .failed)
        XCTAssertTrue(result(68)?.message.contains("no error contains \"no such words\"") ?? false)
    }

    /// A DPC that runs inside `KeReleaseSpinLock(&device.lock, ...)` and takes `&device.lock` is
    /// ordinary driver code: Swift's dynamic exclusivity check must not abort it.
    func testKernelObjectsMayBeReenteredFromDeferredWork() {
        XCTAssertEqual(result(107)?.status, .passed, result(107)?.message ?? "")
    }

    func testCompileFailSeesTheMoveCheckersErrors() {
        XCTAssertEqual(result(126)?.status, .passed, result(126)?.message ?? "")
    }

    func testForgottenCountDeadlocksOnTheFirstAcquire() {
        XCTAssertEqual(result(72)?.status, .deadlock, result(72)?.message ?? "")
        XCTAssertTrue(result(72)?.message.contains("every simulated thread is blocked") ?? false)
    }

    func testFailedChecksNameTheirLines() {
        let failed = result(78)
        XCTAssertEqual(failed?.status, .failed)
        XCTAssertTrue(failed?.message.contains("fixture.md:79: the IRQL: expected 2, got 0") ?? false, failed?.message ?? "")
        XCTAssertTrue(failed?.message.contains("fixture.md:80: arithmetic") ?? false, failed?.message ?? "")
    }

    func testOutputMismatchShowsADiff() {
        XCTAssertEqual(result(83)?.status, .failed)
        XCTAssertTrue(result(83)?.message.contains("- b\n+ a") ?? false, result(83)?.message ?? "")
    }

    func testNoRunAndIgnore() {
        XCTAssertEqual(result(91)?.status, .passed)
        XCTAssertEqual(result(91)?.duration, 0)
        XCTAssertEqual(result(95)?.status, .ignored)
    }

    func testDeclarationsAreSharedAcrossBlocks() {
        XCTAssertEqual(result(99)?.status, .passed, result(99)?.message ?? "")
        XCTAssertEqual(result(103)?.status, .passed, result(103)?.message ?? "")
    }

    func testSecondRunComesFromTheCacheExceptTimeouts() {
        XCTAssertEqual(Self.secondRun.count, Self.results.count)
        for (line, first) in Self.results {
            let second = Self.secondRun[line]
            XCTAssertEqual(second?.status, first.status, "line \(line)")
            XCTAssertEqual(second?.message, first.message, "line \(line)")
            let expectCached = first.status != .timeout && first.status != .ignored
            XCTAssertEqual(second?.cached, expectCached, "line \(line)")
        }
    }
}

/// `--no-batch` compiles each block on its own and must judge every block as the batch does.
final class UnbatchedRunTests: XCTestCase {
    func testEachBlockAloneGivesTheSameResults() throws {
        let chapter = try fixtureChapter("""
            # Alone

            ```swift
            func twice(_ x: Int) -> Int { 2 * x }
            expectEqual(twice(2), 4)
            ```

            ```swift
            let wrong: Int = "text"
            ```

            ```swift
            expectEqual(twice(3), 7, "arithmetic")
            ```

            ```swift no_run
            while true {}
            ```
            """)
        var checker = try makeChecker(name: "unbatched")
        let batched = checker.check(chapter).results
        checker.batch = false
        let alone = checker.check(chapter).results
        XCTAssertEqual(alone.map(\.status), [.passed, .compileError, .failed, .passed])
        XCTAssertEqual(alone.map(\.status), batched.map(\.status))
        XCTAssertEqual(alone.map(\.message), batched.map(\.message))
    }
}
