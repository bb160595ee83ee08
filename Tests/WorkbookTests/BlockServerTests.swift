import XCTest
@testable import Workbook

/// The fork server protocol (`program --serve`), on one compiled fixture chapter.
final class BlockServerTests: XCTestCase {
    static let fixture = """
        # Served

        ```swift
        let values = [1]
        print(values[Int(KeGetCurrentIrql()) + 3])
        ```

        ```swift
        print("served")
        ```

        ```swift timeout=1
        var spins = 0
        while true { spins &+= 1 }
        ```
        """

    nonisolated(unsafe) static var blocks: [Block] = []
    nonisolated(unsafe) static var program = ""

    override class func setUp() {
        super.setUp()
        do {
            let chapter = try fixtureChapter(fixture, name: "served.md")
            let checker = try makeChecker(name: "server")
            XCTAssertEqual(checker.check(chapter).results.map(\.status), [.trap, .passed, .timeout])
            blocks = checker.effectiveBlocks(chapter)
            program = "\(testScratch)/server/programs/served/program"
        } catch {
            XCTFail("cannot build the fixture: \(error)")
        }
    }

    private var trap: Block { Self.blocks[0] }
    private var pass: Block { Self.blocks[1] }
    private var hang: Block { Self.blocks[2] }

    private func run(_ block: Block, _ runner: BlockRunner) -> BlockResult {
        runner.run(block, of: Self.program, chapter: "served.md")
    }

    /// The pid of the one idle server of the program.
    private func idleServer(_ runner: BlockRunner) -> pid_t? {
        guard runner.servers.idleCount(Self.program) == 1,
              let server = runner.servers.take(Self.program, environment: [:]) else { return nil }
        runner.servers.give(server)
        return server.pid
    }

    func testACrashThenAPassOnOneServer() {
        let runner = BlockRunner()
        defer { runner.stopServers(of: Self.program) }
        let crashed = run(trap, runner)
        XCTAssertEqual(crashed.status, .trap)
        XCTAssertTrue(crashed.message.contains("Fatal error: Index out of range"), crashed.message)
        let server = idleServer(runner)
        XCTAssertNotNil(server)
        let passed = run(pass, runner)
        XCTAssertEqual(passed.status, .passed, passed.message)
        XCTAssertEqual(passed.stdout, "served\n")
        XCTAssertEqual(idleServer(runner), server, "the same server ran both blocks")
    }

    func testAKilledChildLeavesTheServerServing() {
        let runner = BlockRunner()
        defer { runner.stopServers(of: Self.program) }
        XCTAssertEqual(run(hang, runner).status, .timeout)
        let server = idleServer(runner)
        XCTAssertNotNil(server)
        XCTAssertEqual(run(pass, runner).status, .passed)
        XCTAssertEqual(idleServer(runner), server)
    }

    func testADeadServerFallsBackToSpawning() throws {
        let runner = BlockRunner()
        defer { runner.stopServers(of: Self.program) }
        let server = try XCTUnwrap(runner.servers.take(Self.program, environment: [:]))
        kill(server.pid, SIGKILL)
        runner.servers.give(server)
        let passed = run(pass, runner)
        XCTAssertEqual(passed.status, .passed, passed.message)
        XCTAssertEqual(passed.stdout, "served\n")
        XCTAssertEqual(runner.servers.idleCount(Self.program), 0, "the lost server is stopped, not kept")
    }

    func testAServerDyingMidBlockIsLostNotWaitedFor() throws {
        let server = try BlockServer(program: Self.program, environment: [:])
        defer { server.stop() }
        let folder = try temporaryFolder()
        let child = try server.start(block: hang.index, nonce: "n", resultFile: "\(folder)/result",
                                     stdout: "\(folder)/out", stderr: "\(folder)/err", timeLimit: 60)
        kill(server.pid, SIGKILL)
        XCTAssertThrowsError(try child.wait()) { XCTAssertTrue($0 is ServerLost) }
        XCTAssertTrue(server.lost)
        kill(-child.pid, SIGKILL)
    }

    func testPathsWithSpacesAndNewlines() throws {
        XCTAssertEqual(BlockServer.encoded("a b%\nc"), "a%20b%25%0Ac")
        XCTAssertEqual(BlockServer.encoded("é"), "%C3%A9", "non-ASCII paths travel as their UTF-8 bytes")
        let server = try BlockServer(program: Self.program, environment: [:])
        defer { server.stop() }
        let folder = try temporaryFolder() + "/with space %41\né"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let child = try server.start(block: pass.index, nonce: "nonce 1", resultFile: "\(folder)/result file",
                                     stdout: "\(folder)/out put", stderr: "\(folder)/err", timeLimit: 60)
        XCTAssertEqual(try child.wait(), 0)
        XCTAssertEqual(try String(contentsOfFile: "\(folder)/out put", encoding: .utf8), "served\n")
        XCTAssertNotNil(HandshakeRecord.read("\(folder)/result file", nonce: "nonce 1"))
    }
}
