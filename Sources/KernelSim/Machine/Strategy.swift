// How the scheduler chooses among the threads that may run: a seeded uniform choice, or PCT.

/// The scheduling strategy of a machine. Both are driven by the machine's seed alone, so the
/// pair (strategy, seed) names one interleaving.
public enum KsStrategy: Hashable, Sendable, CustomStringConvertible {
    /// A uniformly random choice at every scheduling point.
    case random
    /// Probabilistic Concurrency Testing (Burckhardt, Kothari, Musuvathi, Nagarakatte, ASPLOS
    /// 2010): distinct random thread priorities, `depth − 1` priority-change points chosen
    /// uniformly among the first `steps` scheduling decisions, and always the highest-priority
    /// choice. It finds a bug of depth d with probability at least 1/(n·k^(d−1)) per run.
    /// `steps` estimates k; 0 measures it with one calibration run of the body (random
    /// strategy, seed 0), which depends on the program only, so a seed still replays alone.
    case pct(depth: Int = 3, steps: Int = 0)

    public var description: String {
        switch self {
        case .random: return "random"
        case .pct(let depth, let steps): return "pct(depth: \(depth), steps: \(steps))"
        }
    }
}

/// PCT's per-run state. A class, so that the decision made at every step updates it in place
/// rather than copying it out of the machine's optional and back.
final class PctState {
    let depth: Int
    /// Decision numbers (1-based, counting only decisions with a choice) at which the running
    /// thread's priority drops, ascending.
    let changePoints: [Int]
    var nextChange = 0
    /// Priorities below every initial one, handed out by yields; decreasing.
    var floor = 0
    /// Consecutive decisions won by `lastChosen`.
    var runLength = 0
    /// Strong: the machine keeps its threads alive anyway, and a weak reference gives a thread a
    /// side table, which sends every retain and release of it down the slow path.
    var lastChosen: SimThread?

    init(depth: Int, changePoints: [Int]) {
        self.depth = depth
        self.changePoints = changePoints
    }
}

/// PCT assumes threads do not spin; a thread that keeps winning while others wait (a busy-wait
/// loop of kernel calls) would starve them forever, so after this many decisions in a row it is
/// treated as yielding, as Shuttle and Coyote deprioritise a yielding task.
let pctStarvationLimit = 1_000

extension Machine {
    /// Draws PCT's change points before any thread exists (a no-op for the random strategy).
    func startStrategy() {
        guard case .pct(let depth, let steps) = options.strategy else { return }
        precondition(depth >= 1 && steps >= 1, "KsStrategy.pct needs depth ≥ 1 and steps ≥ 1 once resolved")
        var points: Set<Int> = []
        let count = min(depth - 1, steps)
        while points.count < count { points.insert(1 + rng.below(steps)) }
        pct = PctState(depth: depth, changePoints: points.sorted())
    }

    /// PCT gives a new thread a random priority above every changed one (ties: older first).
    func assignPriority(_ t: SimThread) {
        guard let pct else { return }
        t.priority = pct.depth + Int(rng.next() >> 2)
    }

    /// Lowers `t` below every other thread (a yield, or a starving spinner under PCT).
    func deprioritize(_ t: SimThread) {
        guard pct != nil else { return }
        pct!.floor -= 1
        t.priority = pct!.floor
    }

    /// One decision among the first `count` (two or more) of `choices`.
    func choose(among count: Int) -> SimThread {
        decisions += 1
        guard pct != nil else { return choices[rng.below(count)] }
        if pct!.nextChange < pct!.changePoints.count && pct!.changePoints[pct!.nextChange] == decisions {
            // The paper's change point i gives the running thread priority i (< depth).
            pct!.nextChange += 1
            current.priority = pct!.nextChange
        }
        var best = highestPriority(among: count)
        if best === pct!.lastChosen {
            pct!.runLength += 1
            if pct!.runLength > pctStarvationLimit {
                deprioritize(best)
                best = highestPriority(among: count)
            }
        }
        if best !== pct!.lastChosen { pct!.runLength = 0 }
        pct!.lastChosen = best
        return best
    }

    /// The processor to preempt: random, or under PCT the one running the lowest-priority thread.
    func victim(among preemptible: [Processor]) -> Processor {
        if preemptible.count == 1 { return preemptible[0] }
        guard pct != nil else { return preemptible[rng.below(preemptible.count)] }
        return preemptible.min { outranks($1.thread!, $0.thread!) }!
    }

    private func highestPriority(among count: Int) -> SimThread {
        var best = choices[0]
        for i in 1..<count where outranks(choices[i], best) { best = choices[i] }
        return best
    }

    private func outranks(_ a: SimThread, _ b: SimThread) -> Bool {
        a.priority != b.priority ? a.priority > b.priority : a.id < b.id
    }
}
