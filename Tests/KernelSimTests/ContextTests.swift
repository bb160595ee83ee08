import XCTest
@testable import KernelSim

/// Simulated threads as contexts on the caller's OS thread (Context.swift, Faults.swift).
final class ContextTests: XCTestCase {
    func testEveryThreadRunsOnTheCallersOSThread() {
        var others = 0
        let caller = pthread_self()
        assertCompleted(simulate {
            if pthread_equal(pthread_self(), caller) == 0 { others += 1 }
            join(startThread { if pthread_equal(pthread_self(), caller) == 0 { others += 1 } })
        })
        XCTAssertEqual(others, 0)
    }

    func testStacksAreReusedByTheNextMachines() {
        let body = { join(startThread {}, startThread {}) }
        assertCompleted(simulate(body))
        let stacks = Context.spare.count
        for seed in 1..<20 as Range<UInt64> { assertCompleted(simulate(seed: seed, body)) }
        XCTAssertEqual(Context.spare.count, stacks)
    }

    final class Shared { var value = 0 }

    /// This target is compiled with dynamic exclusivity checks: two threads each in the middle of
    /// a modify access to the same class property when switched out must not see each other's.
    func testAnAccessInterruptedByASwitchIsNotSeenByTheNextThread() {
        var interleaved = false
        for seed in 0..<10 as Range<UInt64> {
            let shared = Shared()
            var log: [Int] = []
            assertCompleted(simulate(seed: seed) {
                let hs = (1...2).map { name in
                    startThread {
                        withUnsafeMutablePointer(to: &shared.value) { value in
                            for _ in 0..<3 {
                                value.pointee += 1
                                log.append(name)
                                _ = KeGetCurrentIrql()
                            }
                        }
                    }
                }
                for h in hs { join(h) }
            })
            XCTAssertEqual(shared.value, 6)
            interleaved = interleaved || log != log.sorted()
        }
        XCTAssertTrue(interleaved, "some schedule switches threads in the middle of their accesses")
    }

    func testTheCallersAccessesAreNotSeenBySimulatedThreads() {
        let shared = Shared()
        withUnsafeMutablePointer(to: &shared.value) { _ in
            assertCompleted(simulate { join(startThread { shared.value += 1 }) })
        }
        XCTAssertEqual(shared.value, 1)
    }

    func testAnAccessAThreadNeverFinishedIsNotSeenByTheNextMachine() {
        let shared = Shared()
        let m = simulate {
            withUnsafeMutablePointer(to: &shared.value) { (_) -> Void in KeBugCheck(0xE2) }
        }
        XCTAssertEqual(bugCheck(of: m)?.code, 0xE2)
        assertCompleted(simulate { shared.value += 1 })
        shared.value += 1
        XCTAssertEqual(shared.value, 2)
    }

    /// A pool fault's bug check leaves the signal handler by a context switch; SIGSEGV must not stay
    /// blocked, or the next machine's pool fault would kill the process.
    func testPoolFaultsBugCheckMachineAfterMachine() {
        for _ in 0..<3 {
            let m = simulate {
                let p = ExAllocatePool2(POOL_FLAG_NON_PAGED, 64, 0x6B_6F_6F_42)!
                ExFreePoolWithTag(p, 0x6B_6F_6F_42)
                _ = p.load(as: UInt32.self)
            }
            XCTAssertEqual(bugCheck(of: m)?.code, DRIVER_PAGE_FAULT_IN_FREED_SPECIAL_POOL)
        }
    }

    func testTheCallersAlternateSignalStackIsRestored() {
        var before = stack_t(), after = stack_t()
        sigaltstack(nil, &before)
        assertCompleted(simulate { _ = KeGetCurrentIrql() })
        sigaltstack(nil, &after)
        XCTAssertEqual(before.ss_sp, after.ss_sp)
        XCTAssertEqual(before.ss_flags, after.ss_flags)
        XCTAssertEqual(before.ss_size, after.ss_size)
    }

    /// Unbounded recursion on a simulated thread ends the process with one line on stderr; run in
    /// a forked child, which the test waits for at most a minute.
    func testAStackOverflowIsReportedAndEndsTheProcess() throws {
        var pipe: [Int32] = [0, 0]
        XCTAssertEqual(Glibc.pipe(&pipe), 0)
        fflush(nil)
        let child = fork()
        if child == 0 {
            dup2(pipe[1], STDERR_FILENO)
            func depth(_ n: Int) -> Int { n < 0 ? 0 : depth(n + 1) + 1 }
            _ = KsRunMachine { join(startThread { _ = depth(0) }) }
            _exit(0)
        }
        close(pipe[1])
        defer { close(pipe[0]) }
        var output: [UInt8] = []
        var poller = pollfd(fd: pipe[0], events: Int16(POLLIN), revents: 0)
        var buffer = [UInt8](repeating: 0, count: 4_096)
        while poll(&poller, 1, 60_000) > 0 {
            let n = read(pipe[0], &buffer, buffer.count)
            if n <= 0 { break }
            output += buffer[..<n]
        }
        kill(child, SIGKILL)  // no-op once it has exited
        var status: Int32 = 0
        waitpid(child, &status, 0)
        let text = String(decoding: output, as: UTF8.self)
        XCTAssertEqual(status & 0x7F, 0, "exited rather than killed by a signal; stderr: \(text)")
        XCTAssertEqual((status >> 8) & 0xFF, 134)
        XCTAssertTrue(text.hasPrefix("KernelSim: Fatal error: stack overflow in thread 2 (PsCreateSystemThread at "), text)
        XCTAssertTrue(text.hasSuffix("TestSupport.swift:68)\n"), text)
    }
}
