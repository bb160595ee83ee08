/// A data race the simulator's detector found, in the chapter's terms: both accesses with their
/// chapter lines, who made them, and what would order them.
public struct DataRaceInfo: Hashable, Codable, Sendable {
    public struct Access: Hashable, Codable, Sendable {
        /// "read", "write", "atomic read" or "atomic write".
        public var kind: String
        /// The chapter line, when the program's line table names one.
        public var location: SourceLocation?
        public var column: Int?
        /// "thread 3", "the DPC initialized at 04-dpcs.md:40"...
        public var context: String
        public var processor: Int
        public var irql: Int
        /// The locks its context held, as the chapter names them ("&queue.lock", else the kind),
        /// each with where it was acquired.
        public var locks: [String]
    }

    /// The variable or field, as the chapter's code names it (`queue.lastNumber`), or an address.
    public var variable: String
    public var size: Int
    /// The access that found the race, and the earlier one it races with.
    public var current: Access
    public var previous: Access
    /// Distinct pairs of racing instructions in the run, this one included.
    public var racingPairs: Int
    /// One line on what would order the two accesses.
    public var advice: String

    /// The report as the terminal and the HTML report show it.
    public var text: String {
        func line(_ a: Access, _ role: String) -> String {
            let place = a.location.map { " at \($0)" } ?? ""
            let locks = a.locks.isEmpty ? "holding no lock" : "holding " + a.locks.joined(separator: ", ")
            return "  \(role)\(a.kind) by \(a.context)\(place) (processor \(a.processor), IRQL \(a.irql)), \(locks)"
        }
        var lines = ["data race on \(variable) (\(size) \(size == 1 ? "byte" : "bytes"))", line(current, ""),
                     line(previous, "previous "),
                     "  " + advice]
        if racingPairs > 1 { lines.append("  (\(racingPairs - 1) more racing pair(s) of instructions in this run)") }
        return lines.joined(separator: "\n")
    }
}
