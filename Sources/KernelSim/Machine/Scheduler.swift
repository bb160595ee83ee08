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

/// Simulated time that passes per scheduling point: 1 µs.
let stepTime: LONGLONG = 10
/// How long a processor may stay at DISPATCH_LEVEL or above before the DPC watchdog fires
/// (20 ms of simulated time; Windows' real limit is far longer, but simulated steps are coarse).
let dpcWatchdogLimit: LONGLONG = 200_000

extension Machine {
    /// A scheduling point: time advances, expired timeouts wake their threads, and the strategy
    /// picks which thread executes the next step. The caller may keep running or be switched out.
    /// `time` is how long the step takes (a memory access is shorter than a kernel call).
    /// `yielding` marks a step that only polls (a spin-lock test), which PCT must not favour forever.
    func schedulingPoint(yielding: Bool = false, advancing time: LONGLONG = stepTime) {
        clock += time
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
        if yielding { deprioritize(current) }
        switchTo(pick()!)
        deliverPendingWork()
    }

    /// Takes the current thread off its processor (its state is already `.waiting`) and runs
    /// something else until the thread is woken. Ends the machine if nothing can ever run again.
    func block() {
        let me = current!
        unplace(me)
        guard let next = nextRunnable() else { me.context.abandon(for: end()) }
        switchTo(next)
    }

    /// Makes `t` schedulable: gives it a context, which starts running the body when first switched
    /// to, and under PCT its random priority.
    func launch(_ t: SimThread) {
        t.context = Context.make(threadMain, Unmanaged.passUnretained(t).toOpaque())
        contexts.append(t.context)
        assignPriority(t)
        recordEvent(.threadStart(by: current?.id ?? 0), thread: t)
    }

    /// Ends the current thread: signals its thread object and frees its processor. Returns the
    /// stack pointer to leave the thread's context for: the next thread's, or the caller's when the
    /// machine has ended; the thread's context is never resumed.
    func terminateCurrentThread() -> UnsafeMutableRawPointer {
        let me = current!
        me.state = .terminated
        me.kthread.pointee.Header.SignalState = 1
        waitTest(UnsafeMutableRawPointer(me.kthread))
        recordEvent(.threadEnd)
        unplace(me)
        guard let next = nextRunnable() else { return me.context.handOff(to: end()) }
        current = next
        return me.context.handOff(to: next.context)
    }

    /// Ends the machine when nothing can ever run again: it completed if every thread has ended
    /// (an idle context may finish the last DPC after that), else it deadlocked. Returns the
    /// context to resume, that of `KsRunMachine`'s caller.
    private func end() -> Context {
        if threads.allSatisfy({ $0.state == .terminated }) {
            outcome = .completed
        } else {
            recordEvent(.deadlock)
            outcome = .deadlock(report: deadlockReport())
        }
        return .caller
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
        var count = 0
        var switchable = false
        var someIdle = false
        for p in processors {
            if let t = p.thread {
                offer(t, as: &count)
                if p.irql < DISPATCH_LEVEL { switchable = true }
            } else {
                switchable = true
                someIdle = true
            }
        }
        if switchable {
            for t in readyQueue { offer(t, as: &count) }
        }
        if someIdle {
            for p in processors where p.thread == nil && (!p.dpc.queue.isEmpty || hasPendingInterrupt(for: p)) {
                offer(idleContext(of: p), as: &count)
            }
        }
        guard count > 0 else { return nil }
        let chosen = count == 1 ? choices[0] : choose(among: count)
        if chosen.processor == nil { place(chosen) }
        steps += 1
        if chosen !== current { recordEvent(.run, thread: chosen) }
        return chosen
    }

    /// Makes `t` choice number `count`, overwriting the previous step's choices in place (emptying
    /// the array at every step cost more than the rest of the decision), and only where they
    /// differ: most steps offer the same threads as the one before.
    private func offer(_ t: SimThread, as count: inout Int) {
        if count < choices.count {
            if choices[count] !== t { choices[count] = t }
        } else {
            choices.append(t)
        }
        count += 1
    }

    /// Puts a ready thread on the lowest-numbered idle processor, or else preempts the thread of a
    /// processor below DISPATCH_LEVEL chosen by the strategy. An idle context goes on its own processor.
    func place(_ t: SimThread) {
        readyQueue.removeAll { $0 === t }
        let p: Processor
        var preempted: SimThread?
        if let home = t.pinnedProcessor {
            p = home
        } else if let idle = processors.first(where: { $0.thread == nil }) {
            p = idle
        } else {
            p = victim(among: processors.filter { $0.irql < DISPATCH_LEVEL })
            let victim = p.thread!
            unplace(victim)
            victim.state = .ready
            readyQueue.append(victim)
            preempted = victim
        }
        p.thread = t
        p.irql = t.savedIrql
        t.processor = p
        t.state = .running
        recordEvent(.contextSwitch(from: preempted?.id), thread: t)
    }

    /// Takes a thread off its processor, keeping its IRQL (below DISPATCH_LEVEL) for when it resumes.
    private func unplace(_ t: SimThread) {
        let p = t.processor!
        t.savedIrql = p.irql
        p.thread = nil
        p.irql = PASSIVE_LEVEL
        t.processor = nil
    }

    /// Switches to `next`'s context until something switches back; nothing to do if `next` is the
    /// current thread.
    private func switchTo(_ next: SimThread) {
        let me = current!
        guard next !== me else { return }
        current = next
        me.context.switchTo(next.context)
    }

    /// Puts the current thread to sleep until it is woken or, with a `deadline`, until then.
    func sleep(until deadline: LONGLONG?) {
        current.state = .waiting
        current.deadline = deadline
        if let deadline { earliestDeadline = min(earliestDeadline, deadline) }
        block()
    }

    /// Wakes the waiting threads whose deadline has passed, in creation order. Most steps have
    /// none, so the scan waits for `earliestDeadline` (it was 7% of the instructions per step), and
    /// the test is inlined.
    @inline(__always) private func expireTimeouts() {
        guard clock >= earliestDeadline else { return }
        earliestDeadline = .max
        for t in threads where t.state == .waiting {
            guard let d = t.deadline else { continue }
            if d <= clock {
                wake(t, STATUS_TIMEOUT)
            } else {
                earliestDeadline = min(earliestDeadline, d)
            }
        }
    }

    /// Makes a waiting thread ready, unlinking it from the objects it waited on.
    func wake(_ t: SimThread, _ status: NTSTATUS) {
        t.unlinkWaitBlocks()
        t.deadline = nil
        t.waitStatus = status
        t.state = .ready
        readyQueue.append(t)
        recordEvent(.wake(thread: t.id, status: status))
    }
}
