// Vector clocks over race contexts (FastTrack, Flanagan & Freund, PLDI 2009): entry i is the last
// step of context i that the owner of the clock is known to come after.

/// A vector clock, indexed by race-context id; missing entries are 0.
struct VectorClock {
    private(set) var entries: [UInt32] = []

    subscript(context: Int) -> UInt32 {
        context < entries.count ? entries[context] : 0
    }

    mutating func set(_ context: Int, _ value: UInt32) {
        if context >= entries.count { entries.append(contentsOf: repeatElement(0, count: context + 1 - entries.count)) }
        entries[context] = value
    }

    /// Pointwise maximum: what either clock has seen.
    mutating func join(_ other: VectorClock) {
        if other.entries.count > entries.count {
            entries.append(contentsOf: repeatElement(0, count: other.entries.count - entries.count))
        }
        for (i, value) in other.entries.enumerated() where value > entries[i] { entries[i] = value }
    }
}
