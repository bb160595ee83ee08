// Driver Verifier's Deadlock Detection: every lock a thread holds, and a graph of the order in
// which locks were ever acquired. "Deadlock Detection monitors the driver's use of resources which
// need to be locked -- spin locks, mutexes, and fast mutexes" and "builds a graph of resource
// acquisition order and checks for loops", so a hierarchy violation is reported before it hangs.
// https://learn.microsoft.com/windows-hardware/drivers/devtest/deadlock-detection
// Each lock primitive calls `lockWillBeAcquired` (before it may wait), `lockAcquired` and
// `lockWillBeReleased`; a new kind only needs its own `KsLockKind`.

/// The type of a lock, as `!deadlock` names it.
public struct KsLockKind: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }

    public static let fastMutex = KsLockKind(rawValue: "FAST_MUTEX")
    public static let spinLock = KsLockKind(rawValue: "KSPIN_LOCK")

    public var description: String { rawValue }
}

/// A lock: its kind and address.
public struct KsLock: Hashable, Sendable, CustomStringConvertible {
    public var kind: KsLockKind
    public var address: ULONG_PTR

    public init(_ kind: KsLockKind, _ address: ULONG_PTR) {
        self.kind = kind
        self.address = address
    }

    public var description: String { "\(kind) \(hex(address))" }
}

/// A lock a thread holds, and where it took it.
struct HeldLock {
    let lock: KsLock
    let site: CallSite
}

/// first → second: `thread` acquired `second` at `secondSite` while holding `first` (taken at `firstSite`).
struct OrderEdge {
    let first: KsLock
    let second: KsLock
    let thread: Int
    let firstSite: CallSite
    let secondSite: CallSite
}

/// The acquisition-order graph, kept for the machine's lifetime as Verifier keeps it across threads.
struct LockOrderGraph {
    /// Outgoing edges by lock address, in the order they were established.
    private var edges: [ULONG_PTR: [OrderEdge]] = [:]

    mutating func add(_ edge: OrderEdge) {
        if edges[edge.first.address]?.contains(where: { $0.second.address == edge.second.address }) == true { return }
        edges[edge.first.address, default: []].append(edge)
    }

    /// The first path found from `start` to any lock in `goals`, as its edges.
    func path(from start: ULONG_PTR, to goals: Set<ULONG_PTR>) -> [OrderEdge]? {
        var visited: Set<ULONG_PTR> = [start]
        var path: [OrderEdge] = []
        func search(_ node: ULONG_PTR) -> Bool {
            for edge in edges[node] ?? [] where visited.insert(edge.second.address).inserted {
                path.append(edge)
                if goals.contains(edge.second.address) || search(edge.second.address) { return true }
                path.removeLast()
            }
            return false
        }
        return search(start) ? path : nil
    }
}

extension Machine {
    /// Called before a thread may wait for `lock` (not for a try-acquire, which never waits).
    /// With Verifier on, acquiring it while holding a lock that the graph already orders after it
    /// is 0xC4/0x1001 ("the current thread is trying to acquire a resource that would cause a
    /// deadlock"; P2 = that resource, P3/P4 reserved). The order is recorded at the attempt, so
    /// the second thread of an ABBA pair is stopped before it can block on the first.
    /// https://learn.microsoft.com/windows-hardware/drivers/debugger/bug-check-0xc4--driver-verifier-detected-violation
    func lockWillBeAcquired(_ lock: KsLock) {
        guard options.verifier else { return }
        let me = current!
        let site = me.lastCall!
        let held = Set(me.heldLocks.lazy.map(\.lock.address).filter { $0 != lock.address })
        guard !held.isEmpty else { return }
        guard let path = lockOrder.path(from: lock.address, to: held) else {
            for h in me.heldLocks where h.lock.address != lock.address {
                lockOrder.add(OrderEdge(first: h.lock, second: lock, thread: me.id, firstSite: h.site, secondSite: site))
            }
            return
        }
        let closing = me.heldLocks.last { $0.lock.address == path.last!.second.address }!
        var lines = ["Lock hierarchy violation (as !deadlock shows it): a cycle of \(path.count + 1) locks.",
                     "The acquisition order was established by:"]
        for edge in path {
            lines.append("  thread \(edge.thread) acquired \(edge.first) at \(edge.firstSite.file):\(edge.firstSite.line), "
                + "then \(edge.second) at \(edge.secondSite.file):\(edge.secondSite.line)")
        }
        lines.append("Now \(me.name) holds \(closing.lock) (acquired at \(closing.site.file):\(closing.site.line)) "
            + "and is acquiring \(lock) at \(site.file):\(site.line).")
        lines.append("If both orders run at once, each thread waits forever for the other's lock. Always take "
            + "these locks in one order.")
        bugCheck(DRIVER_VERIFIER_DETECTED_VIOLATION, 0x1001, lock.address, 0, 0,
                 note: lines.joined(separator: "\n      "))
    }

    /// Records that the current thread now holds `lock`.
    func lockAcquired(_ lock: KsLock) {
        let me = current!
        me.heldLocks.append(HeldLock(lock: lock, site: me.lastCall!))
        recordEvent(.acquire(lock))
    }

    /// Called before `lock` is released. With Verifier on: 0xC4/0x1007 if no thread holds it
    /// (P2 = lock), 0x1004 if another thread does (P2 = lock, P3 = the thread that acquired it,
    /// P4 = the current thread), 0x1003 if the current thread took another lock after it and
    /// still holds that one (P2 = lock being released, P3 = the lock that should be released first).
    /// https://learn.microsoft.com/windows-hardware/drivers/debugger/bug-check-0xc4--driver-verifier-detected-violation
    func lockWillBeReleased(_ lock: KsLock) {
        let me = current!
        let owner = threads.first { $0.heldLocks.contains { $0.lock.address == lock.address } }
        if options.verifier {
            guard let owner else {
                bugCheck(DRIVER_VERIFIER_DETECTED_VIOLATION, 0x1007, lock.address, 0, 0)
            }
            if owner !== me {
                bugCheck(DRIVER_VERIFIER_DETECTED_VIOLATION, 0x1004, lock.address, address(owner.kthread), address(me.kthread))
            }
            if let last = me.heldLocks.last, last.lock.address != lock.address {
                bugCheck(DRIVER_VERIFIER_DETECTED_VIOLATION, 0x1003, lock.address, last.lock.address, 0,
                         note: "\(me.name) releases \(lock) while it still holds \(last.lock), acquired after it "
                            + "at \(last.site.file):\(last.site.line). Release locks in the reverse order of acquisition.")
            }
        }
        if let owner, let index = owner.heldLocks.lastIndex(where: { $0.lock.address == lock.address }) {
            owner.heldLocks.remove(at: index)
        }
        recordEvent(.release(lock))
    }
}
