// A happens-before data-race detector over the simulated machine's execution contexts: system
// threads, DPCs, ISRs and APCs each have a vector clock; synchronization (locks, waits, DPC
// queuing, thread creation, a processor's DISPATCH_LEVEL, atomics) joins clocks; two accesses to
// the same bytes, at least one a write, not both atomic, whose contexts are not ordered, race.
// Because order is judged by clocks and not by the interleaving, one run finds a race even when
// its schedule happened to be harmless (the point of FastTrack and ThreadSanitizer).

/// One context whose accesses are in program order: a thread, or one DPC, ISR or APC object's
/// routine (its runs are taken to be in order, as they are on one processor).
final class RaceContext {
    let id: Int
    var clock = VectorClock()
    /// How reports name it: "thread 3", "the DPC initialized at ch.md:40".
    let name: String
    /// Where its locks start in its thread's `heldLocks`: a DPC holds what it took, not what the
    /// thread it interrupted holds.
    var lockBase = 0
    var lockset: UInt32 = 0
    /// Swift `inout` accesses not yet judged: their address may be the kernel object of the call
    /// that follows (`ExAcquireFastMutex(&lock)`), which registers it first (see `RaceDetector.flush`).
    var pending: [PendingInout] = []

    init(id: Int, name: String) {
        self.id = id
        self.name = name
        clock.set(id, 1)
    }

    var now: UInt32 { clock[id] }
}

struct PendingInout {
    var address: UInt
    var write: Bool
    var pc: UInt
    var processor: UInt8
    var irql: KIRQL
}

/// A lock as a report names it.
struct HeldLockSite {
    var lock: KsLock
    var file: String
    var line: Int
}

/// The race detector of a machine run. One is reused from run to run (`reset`): an exploration
/// runs thousands of short machines, and allocating its tables afresh for each cost more than
/// filling them.
final class RaceDetector {
    /// Off with `races=off`: accesses still make scheduling points, but nothing is reported.
    private(set) var reporting: Bool
    private(set) var contexts: [RaceContext] = []
    private(set) var shadow = ShadowMemory()
    /// Clocks of synchronization objects by address (or by `SyncKey` for the machine's own).
    private var syncs = AddressTable<VectorClock>()
    /// Lock sets by index; 0 is the empty set.
    private(set) var locksets: [[HeldLockSite]] = [[]]
    /// Lock sets by their locks' addresses and acquisition lines (as distinct as the sites), as a
    /// trie that `intern` walks without hashing or allocating; node 0 is the empty sequence.
    private var locksetTrie = [LocksetNode(lockset: 0)]

    struct LocksetNode {
        /// The lock set interned for this sequence of locks, if it was.
        var lockset: UInt32?
        var children: [(address: UInt, line: Int, node: Int)] = []
    }
    /// Sizes of the kernel objects already registered, by address: a lock is registered at every use.
    private var kernelObjects = AddressTable<Int>()
    /// The first race, in full, and how many distinct pairs of instructions raced.
    private(set) var firstRace: (previous: ShadowAccess, current: ShadowAccess, address: UInt, size: UInt)?
    private(set) var racingPairs: Set<PCPair> = []
    /// Set while the detector runs, so that `free` called from its own code is not fed back to it.
    var busy = false
    /// Set once a second thread was created or a DPC, APC or interrupt queued. Until then the
    /// machine's only context cannot race with anything (all that runs later starts after its
    /// accesses), so they are only noted as touched, not judged or remembered.
    var concurrent = false

    struct PCPair: Hashable {
        var a: UInt
        var b: UInt
        init(_ x: UInt, _ y: UInt) { (a, b) = x < y ? (x, y) : (y, x) }
    }

    init(reporting: Bool) {
        self.reporting = reporting
    }

    /// Empties the detector for a new run, keeping the capacity of its storage.
    func reset(reporting: Bool) {
        self.reporting = reporting
        contexts.removeAll(keepingCapacity: true)
        shadow.removeAll()
        syncs.removeAll()
        locksets.removeSubrange(1...)
        locksetTrie.removeSubrange(1...)
        locksetTrie[0].children.removeAll(keepingCapacity: true)
        kernelObjects.removeAll()
        firstRace = nil
        racingPairs.removeAll(keepingCapacity: true)
        busy = false
        concurrent = false
    }

    func newContext(name: String) -> RaceContext {
        let context = RaceContext(id: contexts.count, name: name)
        contexts.append(context)
        return context
    }

    // MARK: Synchronization

    func acquire(_ key: UInt, into context: RaceContext) {
        flush(context)
        if let clock = syncs[key] { context.clock.join(clock) }
    }

    func release(_ key: UInt, from context: RaceContext) {
        flush(context)
        syncs.withValue(key, orInsert: VectorClock.init) { $0.join(context.clock) }
        context.clock.set(context.id, context.now + 1)
    }

    /// A new context that starts after everything `parent` did so far (thread creation).
    func fork(_ child: RaceContext, from parent: RaceContext) {
        flush(parent)
        child.clock.join(parent.clock)
        parent.clock.set(parent.id, parent.now + 1)
    }

    /// Sets `context`'s lock set to the locks its thread holds from its `lockBase` on.
    func updateLockset(of context: RaceContext, holding held: [HeldLock]) {
        context.lockset = intern(held[min(context.lockBase, held.count)...])
    }

    private func intern(_ locks: ArraySlice<HeldLock>) -> UInt32 {
        var node = 0
        for i in locks.indices {
            let (address, line) = (locks[i].lock.address, locks[i].site.line)
            if let child = locksetTrie[node].children.first(where: { $0.address == address && $0.line == line }) {
                node = child.node
            } else {
                locksetTrie.append(LocksetNode())
                locksetTrie[node].children.append((address, line, locksetTrie.count - 1))
                node = locksetTrie.count - 1
            }
        }
        if let index = locksetTrie[node].lockset { return index }
        let index = UInt32(locksets.count)
        locksets.append(locks.map { HeldLockSite(lock: $0.lock, file: $0.site.file, line: $0.site.line) })
        locksetTrie[node].lockset = index
        return index
    }

    // MARK: Kernel objects and memory

    /// Marks `[address, address + size)` as a kernel object: forgotten, and never reported again.
    func registerKernelObject(_ address: UInt, size: Int) {
        guard size > 0, kernelObjects[address] != size else { return }
        kernelObjects[address] = size
        shadow.markKernel(address..<address + UInt(size))
    }

    /// Forgets freed memory, so that a later block at the same address starts unshared.
    /// Kernel objects are in the shadow (`registerKernelObject`), so a block outside it has none.
    func forget(_ address: UInt, size: UInt) {
        guard size > 0 else { return }
        let granules = (address >> 3)...((address + size - 1) >> 3)
        guard shadow.mayHold(granules) else { return }
        forgetKernelObjects(address, size: size)
        shadow.forget(granules)
    }

    /// A freed block's kernel objects are not kernel objects any more.
    private func forgetKernelObjects(_ address: UInt, size: UInt) {
        guard !kernelObjects.isEmpty else { return }
        if size / 8 < UInt(kernelObjects.count) {
            var object = (address + 7) & ~7  // kernel objects are 8-byte aligned
            while object < address + size {
                kernelObjects.removeValue(forKey: object)
                object += 8
            }
        } else {
            kernelObjects.removeAll { key, _ in (address..<address + size).contains(key) }
        }
    }

    /// Runs `body` on granule `key` and the bytes of `[address, address + size)` in it that are not
    /// part of a kernel object, if any are, after noting whether a second context now touches it.
    private func touch(_ key: UInt, _ address: UInt, size: UInt, by context: RaceContext,
                       _ body: (inout ShadowGranule, _ bytes: UInt8, _ shared: Bool) -> Void) {
        shadow.withGranule(key) { g in
            let bytes = granuleBytes(key, address, max(size, 1)) & ~g.kernelBytes
            guard bytes != 0 else { return }
            body(&g, bytes, g.touch(by: UInt32(context.id + 1)))
        }
    }

    /// Whether an access at `address` is to memory a second context touches, outside kernel
    /// objects: a scheduling point.
    func isShared(_ address: UInt, size: UInt, by context: RaceContext) -> Bool {
        var shared = false
        touch(address >> 3, address, size: size, by: context) { _, _, s in shared = s }
        return shared
    }

    /// Checks an access against the shadow and remembers it.
    func access(_ address: UInt, size: UInt, write: Bool, atomic: Bool, pc: UInt, processor: Int, irql: KIRQL,
                context: RaceContext) {
        let access = ShadowAccess(context: UInt32(context.id + 1), clock: context.now, lockset: context.lockset,
                                  pc: pc, write: write, atomic: atomic, processor: UInt8(truncatingIfNeeded: processor),
                                  irql: irql)
        let last = (address &+ max(size, 1) - 1) >> 3
        var granule = address >> 3
        while granule <= last {
            touch(granule, address, size: size, by: context) { g, bytes, shared in
                var mine = access
                mine.bytes = bytes
                // Until a second context touches the granule, every access it keeps is this context's.
                if reporting && shared { check(mine, against: g, context: context, address: address, size: size) }
                g.remember(mine)
            }
            granule += 1
        }
    }

    private func check(_ access: ShadowAccess, against g: ShadowGranule, context: RaceContext, address: UInt, size: UInt) {
        for i in 0..<4 {
            let old = g[i]
            guard !old.isEmpty, old.context != access.context, old.bytes & access.bytes != 0,
                  old.write || access.write, !(old.atomic && access.atomic),
                  old.clock > context.clock[Int(old.context) - 1] else { continue }
            if firstRace == nil {
                firstRace = (old, access, address, size)
            } else if firstRace!.address == address && size > firstRace!.size {
                firstRace!.size = size  // a Swift inout access has no size; a later plain one does
            }
            racingPairs.insert(PCPair(old.pc, access.pc))
        }
    }

    // MARK: Swift inout accesses

    func pend(_ access: PendingInout, in context: RaceContext) {
        context.pending.append(access)
    }

    /// Judges the context's pending `inout` accesses, dropping those a kernel call has since
    /// registered as kernel objects. Runs before anything changes the context's clock, so each is
    /// judged with the clock it was made at.
    /// Inlined: most calls (every access, every lock event) find nothing pending.
    @inline(__always)
    func flush(_ context: RaceContext) {
        if !context.pending.isEmpty { judgePending(context) }
    }

    private func judgePending(_ context: RaceContext) {
        for p in context.pending {
            access(p.address, size: 1, write: p.write, atomic: false, pc: p.pc, processor: Int(p.processor),
                   irql: p.irql, context: context)
        }
        context.pending.removeAll(keepingCapacity: true)
    }
}
