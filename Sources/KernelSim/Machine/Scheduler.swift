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
/// the permit to run. A glibc semaphore is a futex with an atomic fast path: one futex wake and
/// one futex wait per switch, without a condvar's mutex round trips (toolchain-notes §4 measured
/// condvars at about 8 µs per switch). Spinning before sleeping measured no faster on two shared
/// cores, so the waiter sleeps at once. Every signal is matched by exactly one wait.
final class Baton: @unchecked Sendable {
    private let semaphore = UnsafeMutablePointer<sem_t>.allocate(capacity: 1)

    init() { sem_init(semaphore, 0, 0) }

    deinit {
        sem_destroy(semaphore)
        semaphore.deallocate()
    }

    func signal() { sem_post(semaphore) }

    func wait() { while sem_wait(semaphore) != 0 {} }  // retried after EINTR
}

/// An OS thread that runs simulated threads one after another, so exploring many schedules does
/// not create an OS thread per simulated thread per schedule. A worker whose simulated thread is
/// parked forever (bug check, deadlock, PsTerminateSystemThread) is never reused.
final class Worker: @unchecked Sendable {
    let baton = Baton()
    var pthread = pthread_t()
    /// The simulated thread to run when the baton next arrives; written before that signal.
    var thread: SimThread?
    /// The CPU this OS thread is pinned to, or -1.
    var cpu: Int32 = -1

    /// An idle worker, or a new one, assigned to `t`.
    static func take(for t: SimThread) -> Worker {
        pthread_mutex_lock(poolLock)
        let idle = idleWorkers.popLast()
        pthread_mutex_unlock(poolLock)
        let worker = idle ?? start()
        worker.thread = t
        return worker
    }

    /// Returns the worker to the pool. Its OS thread then waits for its next simulated thread.
    func retire() {
        thread = nil
        pthread_mutex_lock(poolLock)
        idleWorkers.append(self)
        pthread_mutex_unlock(poolLock)
    }

    private static func start() -> Worker {
        let w = Worker()
        var attr = pthread_attr_t()
        pthread_attr_init(&attr)

        pthread_attr_setdetachstate(&attr, Int32(PTHREAD_CREATE_DETACHED))
        pthread_attr_setstacksize(&attr, 4 << 20)
        let rc = pthread_create(&w.pthread, &attr, workerMain, Unmanaged.passRetained(w).toOpaque())
        pthread_attr_destroy(&attr)
        if rc != 0 { fatalError("KernelSim: pthread_create failed (\(rc))") }
        return w
    }
}

nonisolated(unsafe) private var idleWorkers: [Worker] = []
nonisolated(unsafe) private let poolLock: UnsafeMutablePointer<pthread_mutex_t> = {
    let lock = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    pthread_mutex_init(lock, nil)
    return lock
}()

private func workerMain(_ arg: UnsafeMutableRawPointer?) -> UnsafeMutableRawPointer? {
    let w = Unmanaged<Worker>.fromOpaque(arg!).takeRetainedValue()
    while true {
        w.baton.wait()
        let cpu = simulationCPU
        if cpu != w.cpu {
            pinCallingThread(to: cpu)
            w.cpu = cpu
        }
        w.thread!.run()
    }
}

/// The CPU every worker of the running machine, and its caller while it runs, is pinned to. Only
/// one simulated thread runs at a time, and a hand-off to a thread sleeping on another CPU waits
/// for that CPU to wake (measured 25 µs per switch on an idle core, 3.5 µs with every worker on
/// one CPU, 2,000 schedules of the benchmark: 4.4 s unpinned, 0.6 s pinned). Chosen per machine
/// by `machineCPU`.
nonisolated(unsafe) var simulationCPU: Int32 = -1

/// `KERNELSIM_CPU`, read once: the workbook runs block processes in parallel, one per core, and
/// two that started on the same CPU would otherwise share it while another core idles.
private let requestedCPU: String? = getenv("KERNELSIM_CPU").map { String(cString: $0) }

/// A machine's CPU: the one `requested` names (the `KERNELSIM_CPU` environment variable), else the
/// CPU its caller runs on.
func machineCPU(requested: String? = requestedCPU, caller: Int32 = currentCPU()) -> Int32 {
    guard let requested, let cpu = Int32(requested), cpu >= 0, cpu < cpuSetBits else { return caller }
    return cpu
}

/// `sched_getcpu`, `sched_getaffinity` and `sched_setaffinity` are GNU extensions that Swift's
/// Glibc module does not import, so they are looked up by name; without them nothing is pinned.
private typealias SchedGetCPU = @convention(c) () -> Int32
private typealias SchedAffinity = @convention(c) (pid_t, Int, UnsafeMutableRawPointer) -> Int32
nonisolated(unsafe) private let schedGetCPU = dlsym(nil, "sched_getcpu").map { unsafeBitCast($0, to: SchedGetCPU.self) }
nonisolated(unsafe) private let schedGetAffinity = dlsym(nil, "sched_getaffinity").map {
    unsafeBitCast($0, to: SchedAffinity.self)
}
nonisolated(unsafe) private let schedSetAffinity = dlsym(nil, "sched_setaffinity").map {
    unsafeBitCast($0, to: SchedAffinity.self)
}

/// The CPU the caller runs on, or -1 if unknown.
func currentCPU() -> Int32 { schedGetCPU?() ?? -1 }

/// The size of a cpu_set_t.
private let cpuSetBits: Int32 = 1_024
typealias CPUSet = [UInt64]

func callingThreadAffinity() -> CPUSet? {
    guard let schedGetAffinity else { return nil }
    var set = CPUSet(repeating: 0, count: Int(cpuSetBits) / 64)
    return set.withUnsafeMutableBytes { schedGetAffinity(0, $0.count, $0.baseAddress!) } == 0 ? set : nil
}

private func setCallingThreadAffinity(_ set: CPUSet) {
    guard let schedSetAffinity else { return }
    var set = set
    _ = set.withUnsafeMutableBytes { schedSetAffinity(0, $0.count, $0.baseAddress!) }
}

private func pinCallingThread(to cpu: Int32) {
    guard cpu >= 0, cpu < cpuSetBits else { return }
    var set = CPUSet(repeating: 0, count: Int(cpuSetBits) / 64)
    set[Int(cpu) / 64] = 1 << UInt64(cpu % 64)
    setCallingThreadAffinity(set)
}

/// Runs `body` pinned to `simulationCPU`, then restores the caller's affinity. The caller hands
/// the baton to the machine's first thread and gets it back at the end; left unpinned, it was
/// often woken on the other core, and the next machine then moved every worker there (1,000
/// schedules of the locked counter test: 3,945 CPU migrations, 0.48–0.60 s; pinned: 1
/// migration, 0.27–0.35 s).
func onSimulationCPU<T>(_ body: () -> T) -> T {
    guard let saved = callingThreadAffinity() else { return body() }
    pinCallingThread(to: simulationCPU)
    defer { setCallingThreadAffinity(saved) }
    return body()
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
    /// something else until the thread is woken. Ends the machine if nothing can ever run again:
    /// with a deadlock, unless every thread has ended (an idle context finishing the last DPC).
    func block() {
        let me = current!
        unplace(me)
        guard let next = nextRunnable() else {
            if threads.allSatisfy({ $0.state == .terminated }) {
                finish(.completed)
            } else {
                recordEvent(.deadlock)
                finish(.deadlock(report: deadlockReport()))
            }
            parkForever()
        }
        switchTo(next)
    }

    /// Makes `t` schedulable: gives it a pooled OS thread, which waits for the baton before
    /// running the body, and under PCT its random priority.
    func launch(_ t: SimThread) {
        t.worker = Worker.take(for: t)
        assignPriority(t)
        recordEvent(.threadStart(by: current?.id ?? 0), thread: t)
    }

    /// Ends the current thread: signals its thread object, frees its processor and hands the baton
    /// on. When the body returned (`reusingWorker`), its OS thread goes back to the pool; the
    /// caller must not touch the machine afterwards.
    func terminateCurrentThread(reusingWorker: Bool) {
        let me = current!
        me.state = .terminated
        me.kthread.pointee.Header.SignalState = 1
        waitTest(UnsafeMutableRawPointer(me.kthread))
        recordEvent(.threadEnd)
        unplace(me)
        // Before any hand-off: the next thread to run may spawn one and take this worker at once.
        if reusingWorker { me.worker.retire() }
        if let next = nextRunnable() {
            current = next
            next.baton.signal()
        } else if threads.allSatisfy({ $0.state == .terminated }) {
            finish(.completed)
        } else {
            recordEvent(.deadlock)
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
        let chosen = count == 1 ? choices[0] : choose(from: choices[..<count])
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

    /// Hands the baton to `next` and waits for it to come back; no OS switch if `next` is the caller.
    private func switchTo(_ next: SimThread) {
        let me = current!
        guard next !== me else { return }
        current = next
        next.baton.signal()
        me.baton.wait()
    }

    /// Puts the current thread to sleep until it is woken or, with a `deadline`, until then.
    func sleep(until deadline: LONGLONG?) {
        current.state = .waiting
        current.deadline = deadline
        if let deadline { earliestDeadline = min(earliestDeadline, deadline) }
        block()
    }

    /// Wakes the waiting threads whose deadline has passed, in creation order. Most steps have
    /// none, so the scan waits for `earliestDeadline` (it was 7% of the instructions per step).
    private func expireTimeouts() {
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
