// The entry point the workbook runner uses: run a body on a fresh machine and report the outcome.

/// How to build the simulated machine.
public struct KsMachineOptions: Hashable, Sendable {
    /// Number of logical processors.
    public var processorCount: Int
    /// Seed of the scheduler's PRNG: the same seed gives the same interleaving.
    public var seed: UInt64
    /// Driver Verifier on (its documented 0xC4 checks) or off (retail behaviour).
    public var verifier: Bool
    /// How the scheduler chooses among runnable threads; with the seed it names one interleaving.
    public var strategy: KsStrategy
    /// Report data races (`races=off` turns this off; accesses to shared memory still preempt).
    public var raceDetection: Bool

    public init(processorCount: Int = 2, seed: UInt64 = 0, verifier: Bool = true, strategy: KsStrategy = .random,
                raceDetection: Bool = true) {
        self.processorCount = processorCount
        self.seed = seed
        self.verifier = verifier
        self.strategy = strategy
        self.raceDetection = raceDetection
    }
}

/// A bug check that stopped the machine.
public struct KsBugCheck: Sendable {
    public var code: ULONG
    /// The documented symbolic name, e.g. "DRIVER_IRQL_NOT_LESS_OR_EQUAL".
    public var name: String
    /// Exactly four parameters.
    public var parameters: [ULONG_PTR]
    /// Source location of the faulting call.
    public var file: String
    public var line: Int
    /// The `!analyze -v` style text.
    public var report: String
}

/// How a machine run ended.
public enum KsOutcome: Sendable {
    case completed
    case bugCheck(KsBugCheck)
    /// Who holds what, who waits for what.
    case deadlock(report: String)
}

/// Runs `body` on the first system thread of a fresh machine at PASSIVE_LEVEL; returns when all threads ended, at the first bug check, or on deadlock.
public func KsRunMachine(_ options: KsMachineOptions = KsMachineOptions(), _ body: @escaping () -> Void) -> KsOutcome {
    runMachine(options, body).outcome!
}

/// KsRunMachine, returning the finished machine so tests can read its state.
func runMachine(_ options: KsMachineOptions, _ body: @escaping () -> Void) -> Machine {
    let options = resolved(options, body)
    precondition(activeMachine == nil, "KsRunMachine: another machine is already running")
    let m = Machine(options: options)
    m.races = reusedRaceDetector(reporting: options.raceDetection)
    // The schedules of an exploration log about as many events each: the log rarely regrows.
    m.events.reserveCapacity(2 * lastTrace.events.count)
    activeMachine = m
    installAccessHooks(true)
    m.startStrategy()
    let first = m.spawn(origin: "KsRunMachine body", body)
    m.place(first)
    m.current = first
    m.recordEvent(.run)
    // Returns when the machine has ended and switched back.
    handlingFaults { Context.caller.switchTo(first.context) }
    installAccessHooks(false)
    activeMachine = nil
    Context.recycle(m.contexts)
    lastTrace = m.events.trace
    lastDataRace = m.withRaces { races in
        for context in races.contexts { races.flush(context) }
        return races.report()
    } ?? nil
    m.pool.release()
    return m
}

/// The race detector of the last run, reset for the next one (no two machines run at once).
nonisolated(unsafe) private var lastRaceDetector: RaceDetector?

private func reusedRaceDetector(reporting: Bool) -> RaceDetector {
    guard let races = lastRaceDetector else {
        lastRaceDetector = RaceDetector(reporting: reporting)
        return lastRaceDetector!
    }
    races.reset(reporting: reporting)
    return races
}

/// `options` with PCT's step estimate 0 replaced by the number of decisions a calibration run
/// made (random strategy, seed 0, output discarded): a function of the program alone, so a PCT
/// seed replays without knowing which exploration found it.
func resolved(_ options: KsMachineOptions, _ body: @escaping () -> Void) -> KsMachineOptions {
    guard case .pct(let depth, 0) = options.strategy else { return options }
    let calibration = KsMachineOptions(processorCount: options.processorCount, seed: 0, verifier: options.verifier,
                                       raceDetection: options.raceDetection)
    let steps = silencingStandardOutput { runMachine(calibration, body).decisions }
    var result = options
    result.strategy = .pct(depth: depth, steps: max(1, steps))
    return result
}
