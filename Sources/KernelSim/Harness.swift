// The entry point the workbook runner uses: run a body on a fresh machine and report the outcome.

/// How to build the simulated machine.
public struct KsMachineOptions: Sendable {
    /// Number of logical processors.
    public var processorCount: Int
    /// Seed of the scheduler's PRNG: the same seed gives the same interleaving.
    public var seed: UInt64
    /// Driver Verifier on (its documented 0xC4 checks) or off (retail behaviour).
    public var verifier: Bool

    public init(processorCount: Int = 2, seed: UInt64 = 0, verifier: Bool = true) {
        self.processorCount = processorCount
        self.seed = seed
        self.verifier = verifier
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

/// KsRunMachine, returning the finished machine so tests can read its trace.
func runMachine(_ options: KsMachineOptions, _ body: @escaping () -> Void) -> Machine {
    precondition(activeMachine == nil, "KsRunMachine: another machine is already running")
    let m = Machine(options: options)
    activeMachine = m
    let first = m.spawn(origin: "KsRunMachine body", body)
    m.place(first)
    m.current = first
    first.baton.signal()
    m.finished.wait()
    activeMachine = nil
    m.pool.releaseFreed()
    return m
}
