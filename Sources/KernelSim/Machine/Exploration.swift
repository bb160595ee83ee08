// Schedule exploration: run a body under many seeds until one schedule fails, and say which
// interleaving failed so that it can be replayed (the pattern of Shuttle's failing-schedule
// report, with a seed instead of an encoded schedule).
import Glibc

/// How to explore.
public struct KsExploreOptions: Hashable, Sendable {
    /// Schedules to run; schedule i uses seed `seed + i`, so schedule 0 is the plain run.
    public var schedules: Int
    public var strategy: KsStrategy
    /// The base seed.
    public var seed: UInt64
    public var processorCount: Int
    public var verifier: Bool
    /// Report data races; a schedule with one fails.
    public var raceDetection: Bool
    /// Discards the body's standard output while exploring (a replay can show one schedule's).
    public var silent: Bool

    public init(schedules: Int = 100, strategy: KsStrategy = .random, seed: UInt64 = 0, processorCount: Int = 2,
                verifier: Bool = true, raceDetection: Bool = true, silent: Bool = false) {
        self.schedules = schedules
        self.strategy = strategy
        self.seed = seed
        self.processorCount = processorCount
        self.verifier = verifier
        self.raceDetection = raceDetection
        self.silent = silent
    }
}

/// The first schedule that failed.
public struct KsScheduleFailure: Sendable {
    /// Its position in the exploration, from 0.
    public var index: Int
    /// The options that replay it exactly: `KsRunMachine(failure.options, body)`.
    public var options: KsMachineOptions
    public var outcome: KsOutcome
    public var trace: KsTrace
    /// The first data race of the schedule, if it had one.
    public var race: KsDataRace?

    public var seed: UInt64 { options.seed }

    /// The last `count` thread switches of the failing schedule, as a listing.
    public func interleaving(last count: Int = 30) -> String { trace.interleavingText(last: count) }
}

/// What an exploration found.
public struct KsExploration: Sendable {
    /// Schedules run, including the failing one.
    public var schedulesRun: Int
    /// The strategy every schedule used, with PCT's step estimate resolved.
    public var strategy: KsStrategy
    /// Nil when every schedule passed.
    public var failure: KsScheduleFailure?

    public var passed: Bool { failure == nil }
}

/// Runs `body` on a fresh machine once per schedule and stops at the first schedule that ends in
/// a bug check or deadlock, has a data race, or after which `failed` (checked on the caller's
/// thread) is true.
/// Deterministic: the same options explore the same schedules in the same order.
public func KsExplore(_ options: KsExploreOptions = KsExploreOptions(), failed: () -> Bool = { false },
                      _ body: @escaping () -> Void) -> KsExploration {
    precondition(options.schedules >= 1, "KsExploreOptions.schedules must be at least 1")
    func explore() -> KsExploration {
        let base = resolved(KsMachineOptions(processorCount: options.processorCount, seed: options.seed,
                                             verifier: options.verifier, strategy: options.strategy,
                                             raceDetection: options.raceDetection), body)
        for index in 0..<options.schedules {
            var schedule = base
            schedule.seed = options.seed &+ UInt64(index)
            let outcome = runMachine(schedule, body).outcome!
            let failing: Bool
            if case .completed = outcome { failing = lastDataRace != nil || failed() } else { failing = true }
            if failing {
                return KsExploration(schedulesRun: index + 1, strategy: base.strategy, failure: KsScheduleFailure(
                    index: index, options: schedule, outcome: outcome, trace: lastTrace, race: lastDataRace))
            }
        }
        return KsExploration(schedulesRun: options.schedules, strategy: base.strategy, failure: nil)
    }
    return options.silent ? silencingStandardOutput(explore) : explore()
}

/// Runs `body` with file descriptor 1 pointed at /dev/null, so `print` and `DbgPrint` from any
/// simulated thread go nowhere; stdio buffers are flushed on both sides of the swap.
func silencingStandardOutput<T>(_ body: () -> T) -> T {
    fflush(nil)
    let null = open("/dev/null", O_WRONLY)
    guard null >= 0 else { return body() }
    let saved = dup(STDOUT_FILENO)
    dup2(null, STDOUT_FILENO)
    close(null)
    defer {
        fflush(nil)
        dup2(saved, STDOUT_FILENO)
        close(saved)
    }
    return body()
}
