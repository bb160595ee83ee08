// The race detector's maps from addresses (and granules, and the machine's own sync keys) to
// values. Every access to shared memory looks up several of them, and `Dictionary` hashes a UInt
// with SipHash: here a key is spread by one multiplication (Fibonacci hashing), and collisions
// are resolved by linear probing, with backward-shift deletion so that no tombstones accumulate.

/// An open-addressing hash table keyed by `UInt`; `UInt.max` is reserved (no address or granule
/// is that large).
struct AddressTable<Value> {
    private var keys: [UInt]
    private var values: [Value?]
    private(set) var count = 0
    /// 64 minus log2 of the capacity: the hash is the multiplication's top bits.
    private var shift: UInt
    private static var vacant: UInt { .max }

    init() {
        keys = Array(repeating: Self.vacant, count: 16)
        values = Array(repeating: nil, count: 16)
        shift = 60
    }

    var isEmpty: Bool { count == 0 }
    private var mask: Int { keys.count - 1 }

    private func home(_ key: UInt) -> Int { Int(truncatingIfNeeded: (key &* 0x9E37_79B9_7F4A_7C15) >> shift) }

    /// The slot holding `key`, or the vacant slot where it would go.
    private func slot(_ key: UInt) -> (index: Int, found: Bool) {
        var i = home(key)
        while true {
            let k = keys[i]
            if k == key { return (i, true) }
            if k == Self.vacant { return (i, false) }
            i = (i + 1) & mask
        }
    }

    subscript(key: UInt) -> Value? {
        get {
            let (i, found) = slot(key)
            return found ? values[i] : nil
        }
        set {
            guard let newValue else {
                removeValue(forKey: key)
                return
            }
            let (i, found) = slot(key)
            if found { values[i] = newValue } else { insert(key, newValue, at: i) }
        }
    }

    /// Runs `body` on the value of `key` in place, inserting `make()` first if there is none.
    mutating func withValue<R>(_ key: UInt, orInsert make: () -> Value, _ body: (inout Value) -> R) -> R {
        var (i, found) = slot(key)
        if !found { i = insert(key, make(), at: i) }
        return body(&values[i]!)
    }

    /// Puts `key` in vacant slot `i` (another one if the table grows first); returns its slot.
    @discardableResult
    private mutating func insert(_ key: UInt, _ value: Value, at i: Int) -> Int {
        precondition(key != Self.vacant, "AddressTable: UInt.max is reserved")
        if 2 * (count + 1) > keys.count {
            grow()
            return insert(key, value, at: slot(key).index)
        }
        keys[i] = key
        values[i] = value
        count += 1
        return i
    }

    /// Doubles the capacity, keeping the load at most one half.
    private mutating func grow() {
        let oldKeys = keys
        var oldValues = values
        keys = Array(repeating: Self.vacant, count: 2 * oldKeys.count)
        values = Array(repeating: nil, count: keys.count)
        shift -= 1
        for (j, key) in oldKeys.enumerated() where key != Self.vacant {
            let i = slot(key).index
            keys[i] = key
            swap(&values[i], &oldValues[j])
        }
    }

    @discardableResult
    mutating func removeValue(forKey key: UInt) -> Value? {
        let (i, found) = slot(key)
        guard found else { return nil }
        let value = values[i]
        remove(at: i)
        return value
    }

    /// Removes every entry, keeping the capacity.
    mutating func removeAll() {
        guard count > 0 else { return }
        // Assigns every element in place (releasing the old values), within the buffers' bounds:
        // one uniqueness check per array instead of one per slot.
        keys.withUnsafeMutableBufferPointer { $0.update(repeating: Self.vacant) }
        values.withUnsafeMutableBufferPointer { $0.update(repeating: nil) }
        count = 0
    }

    /// Removes every entry whose key satisfies `predicate`, in one pass over the slots.
    mutating func removeAll(where predicate: (UInt, Value) -> Bool) {
        var i = 0
        while i < keys.count {
            // A removal shifts a later entry into slot i: look at it again.
            if keys[i] != Self.vacant && predicate(keys[i], values[i]!) { remove(at: i) } else { i += 1 }
        }
    }

    /// Empties slot `hole`, then moves back each following entry of the run that the hole
    /// separates from its home slot, so that every entry stays reachable from its home.
    private mutating func remove(at hole: Int) {
        var hole = hole
        var i = hole
        while true {
            i = (i + 1) & mask
            let key = keys[i]
            if key == Self.vacant { break }
            if (i - home(key)) & mask >= (i - hole) & mask {
                keys[hole] = key
                values[hole] = values[i]
                hole = i
            }
        }
        keys[hole] = Self.vacant
        values[hole] = nil
        count -= 1
    }
}
