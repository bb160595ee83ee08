import Glibc

/// SplitMix64 (Steele, Lea, Flood 2014): tiny, seedable, and the same on every platform, so a
/// seed names one interleaving.
struct SplitMix64 {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A value in `0..<n`.
    mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }
}

/// A one-permit handshake between OS threads: the scheduler gives exactly one simulated thread
/// the permit to run (per-thread condvars measured at about 8 µs per switch, toolchain-notes §4).
final class Baton: @unchecked Sendable {
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let cond = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private var permit = false

    init() {
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(cond, nil)
    }

    deinit {
        pthread_cond_destroy(cond)
        pthread_mutex_destroy(mutex)
        cond.deallocate()
        mutex.deallocate()
    }

    func signal() {
        pthread_mutex_lock(mutex)
        permit = true
        pthread_cond_signal(cond)
        pthread_mutex_unlock(mutex)
    }

    func wait() {
        pthread_mutex_lock(mutex)
        while !permit { pthread_cond_wait(cond, mutex) }
        permit = false
        pthread_mutex_unlock(mutex)
    }
}

/// One scheduling decision: at `step`, while `routine` was being entered, `thread` was chosen to run
/// on `processor`.
struct TraceEntry: Equatable {
    let step: Int
    let thread: Int
    let processor: Int
    let routine: String
}

/// How many scheduling decisions the trace keeps: a program that polls forever must not also
/// grow without bound.
let traceLimit = 100_000

/// Simulated time that passes per scheduling point: 1 µs.
let stepTime: LONGLONG = 10
/// How long a processor may stay at DISPATCH_LEVEL or above before the DPC watchdog fires
/// (20 ms of simulated time; Windows' real limit is far longer, but simulated steps are coarse).
let dpcWatchdogLimit: LONGLONG = 200_000

extension Machine {
    /// A scheduling point: time advances, expired timeouts wake their threads, and the seeded PRNG
    /// picks which thread executes the next step. The caller may keep running or be switched out.
    func schedulingPoint() {
        clock += stepTime
        expireTimeouts()
        let p = currentProcessor
        checkDpcTimeLimit(p)
        if p.irql >= DISPATCH_LEVEL && clock - p.raisedSince > dpcWatchdogLimit {
            // "too much cumulative time at ≥ DISPATCH_LEVEL", e.g. spinning on a lock.
            // https://learn.microsoft.com/windows-hardware/drivers/debugger/bug-check-0x133-dpc-watchdog-violation
            bugCheck(DPC_WATCHDOG_VIOLATION, 1, ULONG_PTR(dpcWatchdogLimit), 0, 0,
                     note: "Processor \(p.number) stayed at IRQL \(p.irql) for more than "
                        + "\(dpcWatchdogLimit / 10_000) ms of simulated time.")
        }
        switchTo(pick()!)
        deliverPendingWork()
    }

    /// Takes the current thread off its processor (its state is already `.waiting`) and runs
    /// something else until the thread is woken. Ends the machine if nothing can ever run again:
    /// with a deadlock, unless every thread has ended (an idle context finishing the last DPC).
    func block() {
        let me = current!
        unplace(me)
        guard let next = nextRunnable() else {
            finish(threads.allSatisfy { $0.state == .terminated } ? .completed : .deadlock(report: deadlockReport()))
            parkForever()
        }
        switchTo(next)
    }

    /// Ends the current thread: signals its thread object, frees its processor and hands the baton
    /// on. The caller's OS thread must not touch the machine afterwards.
    func terminateCurrentThread() {
        let me = current!
        me.state = .terminated
        me.kthread.pointee.Header.SignalState = 1
        waitTest(UnsafeMutableRawPointer(me.kthread))
        unplace(me)
        if let next = nextRunnable() {
            current = next
            next.baton.signal()
        } else if threads.allSatisfy({ $0.state == .terminated }) {
            finish(.completed)
        } else {
            finish(.deadlock(report: deadlockReport()))
        }
    }

    /// Picks the next thread, letting simulated time jump to the earliest timeout when every live
    /// thread is waiting. Nil when no thread can ever run again.
    private func nextRunnable() -> SimThread? {
        while true {
            if let t = pick() { return t }
            guard let deadline = threads.compactMap({ $0.state == .waiting ? $0.deadline : nil }).min() else {
                return nil
            }
            clock = max(clock, deadline)
            expireTimeouts()
        }
    }

    /// The choices are every thread on a processor plus, if some processor is idle or below
    /// DISPATCH_LEVEL (so it may switch threads), every ready thread, plus the idle context of
    /// each processor that runs nothing but has DPCs or interrupts pending. A thread at
    /// DISPATCH_LEVEL or above therefore keeps its processor.
    private func pick() -> SimThread? {
        var choices = processors.compactMap(\.thread)
        if processors.contains(where: { $0.thread == nil || $0.irql < DISPATCH_LEVEL }) {
            choices += readyQueue
        }
        choices += idleContextsWithWork()
        guard !choices.isEmpty else { return nil }
        let chosen = choices.count == 1 ? choices[0] : choices[rng.below(choices.count)]
        if chosen.processor == nil { place(chosen) }
        if trace.count < traceLimit {
            trace.append(TraceEntry(step: steps, thread: chosen.id, processor: chosen.processor!.number,
                                    routine: current?.recentCalls.last?.routine ?? "start"))
        }
        steps += 1
        return chosen
    }

    /// Puts a ready thread on the lowest-numbered idle processor, or else preempts the thread of a
    /// PRNG-chosen processor below DISPATCH_LEVEL. An idle context goes on its own processor.
    func place(_ t: SimThread) {
        readyQueue.removeAll { $0 === t }
        let p: Processor
        if let home = t.pinnedProcessor {
            p = home
        } else if let idle = processors.first(where: { $0.thread == nil }) {
            p = idle
        } else {
            let preemptible = processors.filter { $0.irql < DISPATCH_LEVEL }
            p = preemptible.count == 1 ? preemptible[0] : preemptible[rng.below(preemptible.count)]
            let victim = p.thread!
            unplace(victim)
            victim.state = .ready
            readyQueue.append(victim)
        }
        p.thread = t
        p.irql = t.savedIrql
        t.processor = p
        t.state = .running
    }

    /// Takes a thread off its processor, keeping its IRQL (below DISPATCH_LEVEL) for when it resumes.
    private func unplace(_ t: SimThread) {
        let p = t.processor!
        t.savedIrql = p.irql
        p.thread = nil
        p.irql = PASSIVE_LEVEL
        t.processor = nil
    }

    private func switchTo(_ next: SimThread) {
        let me = current!
        guard next !== me else { return }
        current = next
        next.baton.signal()
        me.baton.wait()
    }

    private func expireTimeouts() {
        for t in threads where t.state == .waiting {
            if let d = t.deadline, d <= clock { wake(t, STATUS_TIMEOUT) }
        }
    }

    /// Makes a waiting thread ready, unlinking it from the objects it waited on.
    func wake(_ t: SimThread, _ status: NTSTATUS) {
        t.unlinkWaitBlocks()
        t.deadline = nil
        t.waitStatus = status
        t.state = .ready
        readyQueue.append(t)
    }

    /// Records the outcome and releases `KsRunMachine`'s caller.
    func finish(_ result: KsOutcome) {
        outcome = result
        finished.signal()
    }
}

/// Blocks the calling OS thread forever: a simulated thread that cannot be unwound (after a bug
/// check, a deadlock or PsTerminateSystemThread) simply never runs again.
func parkForever() -> Never {
    let never = Baton()
    while true { never.wait() }
}
