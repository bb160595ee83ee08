// The shadow of chapter-program memory, in 8-byte granules as ThreadSanitizer keeps it: for each
// granule, the last few accesses that a future access may race with.

/// One remembered access: who made it, when (its context's clock), which bytes, and where, with
/// what the report needs to say about it.
struct ShadowAccess {
    /// The race context that made it, plus one (0: the slot is empty).
    var context: UInt32 = 0
    var clock: UInt32 = 0
    /// Interned set of locks its context held (`RaceDetector.locksets`).
    var lockset: UInt32 = 0
    /// The instruction address in the chapter program.
    var pc: UInt = 0
    /// Bytes of the granule it touched, as a bit mask.
    var bytes: UInt8 = 0
    var write = false
    var atomic = false
    var processor: UInt8 = 0
    var irql: KIRQL = 0

    var isEmpty: Bool { context == 0 }
}

/// Four accesses per granule, like TSan's shadow cells: enough to keep reads by a few contexts
/// beside the last write. A struct, kept in one array and mutated in place (`RaceDetector.granules`):
/// no allocation and no reference counting per granule.
struct ShadowGranule {
    private var slots = (ShadowAccess(), ShadowAccess(), ShadowAccess(), ShadowAccess())
    /// Bytes that belong to a kernel object (a lock, an event, an IRQL out-parameter...): never
    /// reported, never a scheduling point.
    var kernelBytes: UInt8 = 0
    /// The first context to touch the granule, plus one, until a second one does; then `shared`.
    private var firstContext: UInt32 = 0
    private(set) var shared = false
    /// The slot an access replaces when all four are taken (rotating).
    private var nextVictim = 0

    subscript(i: Int) -> ShadowAccess {
        get {
            switch i {
            case 0: return slots.0
            case 1: return slots.1
            case 2: return slots.2
            default: return slots.3
            }
        }
        set {
            switch i {
            case 0: slots.0 = newValue
            case 1: slots.1 = newValue
            case 2: slots.2 = newValue
            default: slots.3 = newValue
            }
        }
    }

    /// Notes that `context` (plus one) touched the granule; true once two contexts have.
    mutating func touch(by context: UInt32) -> Bool {
        if !shared {
            if firstContext == 0 { firstContext = context } else if firstContext != context { shared = true }
        }
        return shared
    }

    /// Keeps `access`: over an access of the same context that it makes redundant (no other bytes,
    /// and a write over a read), else in an empty slot, else over the next in rotation.
    mutating func remember(_ access: ShadowAccess) {
        var empty = -1
        for i in 0..<4 {
            let old = self[i]
            if old.isEmpty {
                if empty < 0 { empty = i }
            } else if old.context == access.context && old.bytes & ~access.bytes == 0
                        && (access.write || !old.write) && old.atomic == access.atomic {
                self[i] = access
                return
            }
        }
        if empty >= 0 {
            self[empty] = access
        } else {
            self[nextVictim] = access
            nextVictim = (nextVictim + 1) & 3
        }
    }
}

/// The bytes of granule `granule` (address `granule << 3`) that `[address, address + size)` covers.
func granuleBytes(_ granule: UInt, _ address: UInt, _ size: UInt) -> UInt8 {
    let start = granule << 3
    let low = max(address, start) - start
    let high = min(address &+ size, start + 8) - start
    return UInt8(truncatingIfNeeded: (UInt(1) << high) - (UInt(1) << low))
}

/// The granules of one run, by granule number (address >> 3): an index table over one array of
/// granules mutated in place, whose slots forgotten granules leave are reused.
struct ShadowMemory {
    private var index = AddressTable<Int32>()
    private var granules: [ShadowGranule] = []
    private var vacated: [Int32] = []
    /// The granule last looked up and its index (`UInt.max`: none): every access looks its first
    /// granule up twice, to decide on a scheduling point and then to judge it.
    private var lastKey = UInt.max
    private var lastIndex: Int32 = 0
    /// The lowest and highest granule given a shadow since the shadow was emptied: most freed
    /// blocks, and the stacks that new threads forget, lie outside them and need no look-up.
    private var lowest = UInt.max
    private var highest: UInt = 0
    /// Kernel objects' bytes: a granule takes its `kernelBytes` from them when it is created, so
    /// that marking an object (a KTHREAD spans 27 granules) creates no shadow.
    private var kernelRanges: [Range<UInt>] = []
    /// The 64-byte lines that granules or kernel bytes were given in since the shadow was emptied,
    /// hashed onto 4096 bits: most freed blocks share no line with them and need no look-up.
    private var lines = [UInt64](repeating: 0, count: 64)

    var count: Int { index.count }

    /// Whether some granule of `range` may have a shadow or kernel bytes (false: certainly none has).
    func mayHold(_ range: ClosedRange<UInt>) -> Bool {
        guard (index.count > 0 || !kernelRanges.isEmpty) && range.lowerBound <= highest && range.upperBound >= lowest
        else { return false }
        let lineRange = (range.lowerBound >> 3)...(range.upperBound >> 3)
        return lineRange.count >= 4096 || lineRange.contains { line in
            let bit = Int(truncatingIfNeeded: line & 4095)
            return lines[bit >> 6] & (1 << (bit & 63)) != 0
        }
    }

    /// Notes that the line of granule `key` now holds a granule or kernel bytes.
    private mutating func noteLine(_ key: UInt) {
        let bit = Int(truncatingIfNeeded: (key >> 3) & 4095)
        lines[bit >> 6] |= 1 << (bit & 63)
    }

    /// Marks `bytes` as part of a kernel object, forgetting what the granules they span remembered.
    mutating func markKernel(_ bytes: Range<UInt>) {
        let range = (bytes.lowerBound >> 3)...((bytes.upperBound - 1) >> 3)
        let held = mayHold(range)
        kernelRanges.append(bytes)
        (lowest, highest) = (min(lowest, range.lowerBound), max(highest, range.upperBound))
        for key in stride(from: range.lowerBound & ~7, through: range.upperBound, by: 8) { noteLine(key) }
        guard held else { return }
        for key in range {
            if let i = index[key] { granules[Int(i)] = newGranule(key) }
        }
    }

    /// An empty granule, with the bytes of kernel objects it holds.
    private func newGranule(_ key: UInt) -> ShadowGranule {
        var g = ShadowGranule()
        let span = key << 3..<(key << 3) + 8
        for r in kernelRanges where r.overlaps(span) {
            g.kernelBytes |= granuleBytes(key, r.lowerBound, UInt(r.count))
        }
        return g
    }

    /// Forgets every granule, keeping the storage for the next run.
    mutating func removeAll() {
        index.removeAll()
        granules.removeAll(keepingCapacity: true)
        vacated.removeAll(keepingCapacity: true)
        kernelRanges.removeAll(keepingCapacity: true)
        for i in lines.indices { lines[i] = 0 }
        lastKey = .max
        (lowest, highest) = (.max, 0)
    }

    /// Runs `body` on granule `key` in place, creating it empty first if it has no shadow.
    mutating func withGranule<R>(_ key: UInt, _ body: (inout ShadowGranule) -> R) -> R {
        if key != lastKey {
            lastIndex = lookUp(key)
            lastKey = key
        }
        return body(&granules[Int(lastIndex)])
    }

    /// The index of granule `key`, created empty if it has no shadow.
    private mutating func lookUp(_ key: UInt) -> Int32 {
        if let i = index[key] { return i }
        (lowest, highest) = (min(lowest, key), max(highest, key))
        noteLine(key)
        let i: Int32
        if let reused = vacated.popLast() {
            granules[Int(reused)] = newGranule(key)
            i = reused
        } else {
            granules.append(newGranule(key))
            i = Int32(granules.count - 1)
        }
        index[key] = i
        return i
    }

    /// Forgets the granules in `range`, kernel bytes included: by looking each up, or, when the
    /// range holds more granules than the shadow does (a stack), in one pass over the shadow.
    mutating func forget(_ range: ClosedRange<UInt>) {
        lastKey = .max
        let freed = range.lowerBound << 3..<(range.upperBound + 1) << 3
        if kernelRanges.contains(where: { $0.overlaps(freed) }) {
            kernelRanges = kernelRanges.flatMap { r -> [Range<UInt>] in
                guard r.overlaps(freed) else { return [r] }
                // What lies outside the freed granules stays kernel bytes, as their granules did.
                return [r.lowerBound..<max(r.lowerBound, min(r.upperBound, freed.lowerBound)),
                        min(r.upperBound, max(r.lowerBound, freed.upperBound))..<r.upperBound].filter { !$0.isEmpty }
            }
        }
        if UInt(index.count) < UInt(range.count) {
            index.removeAll { key, i in
                guard range.contains(key) else { return false }
                vacated.append(i)
                return true
            }
        } else {
            for key in range {
                if let i = index.removeValue(forKey: key) { vacated.append(i) }
            }
        }
    }
}
