// Driver Verifier's Deadlock Detection: every lock a thread holds, and a graph of the order in
// which locks were ever acquired. "Deadlock Detection monitors the driver's use of resources which
// need to be locked -- spin locks, mutexes, and fast mutexes" and "builds a graph of resource
// acquisition order and checks for loops", so a hierarchy violation is reported before it hangs.
// https://learn.microsoft.com/windows-hardware/drivers/devtest/deadlock-detection
// Each lock primitive calls `lockWillBeAcquired` (before it may wait), `lockAcquired` and
// `lockWillBeReleased`; a new kind only needs its own `KsLockKind`. A recursive lock (KMUTEX)
// calls them only for its first acquisition and its last release: a recursive acquire is legal,
// never waits, and orders nothing.

/// The type of a lock, as `!deadlock` names it.
public struct KsLockKind: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }

    public static let fastMutex = KsLockKind(rawValue: "FAST_MUTEX")
    /// Since Windows 8 a fast mutex underneath, but acquired and reported through its own routines.
    public static let guardedMutex = KsLockKind(rawValue: "KGUARDED_MUTEX")
    public static let spinLock = KsLockKind(rawValue: "KSPIN_LOCK")
    /// A KSPIN_LOCK taken through KeAcquireInStackQueuedSpinLock(AtDpcLevel).
    public static let queuedSpinLock = KsLockKind(rawValue: "KSPIN_LOCK (in-stack queued)")
    public static let kernelMutex = KsLockKind(rawValue: "KMUTEX")

    public var description: String { rawValue }

    /// The size of the object a lock of this kind is.
    var objectSize: Int {
        switch self {
        case .fastMutex: return MemoryLayout<FAST_MUTEX>.size
        case .guardedMutex: return MemoryLayout<KGUARDED_MUTEX>.size
        case .kernelMutex: return MemoryLayout<KMUTANT>.size
        default: return MemoryLayout<KSPIN_LOCK>.size
        }
    }
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

/// A lock a thread holds, and where it took it. `acquisition` numbers the acquisition: the
/// KMUTEXes one WaitAll takes "at the same moment" share it, so they have no order among them.
struct HeldLock {
    let lock: KsLock
    let site: CallSite
    var acquisition: Int
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
    private var acquisitions = 0

    /// A new acquisition number for `HeldLock.acquisition`.
    mutating func nextAcquisition() -> Int {
        acquisitions += 1
        return acquisitions
    }

    mutating func add(_ edge: OrderEdge) {
        if edges[edge.first.address]?.contains(where: { $0.second.address == edge.second.address }) == true { return }
        edges[edge.first.address, default: []].append(edge)
    }

    /// The first path found from `start` to any lock `isGoal` accepts, as its edges.
    func path(from start: ULONG_PTR, to isGoal: (ULONG_PTR) -> Bool) -> [OrderEdge]? {
        // Usually nothing is ordered after the lock yet: no search, and nothing allocated.
        guard edges[start] != nil else { return nil }
        var visited: Set<ULONG_PTR> = [start]
        var path: [OrderEdge] = []
        func search(_ node: ULONG_PTR) -> Bool {
            for edge in edges[node] ?? [] where visited.insert(edge.second.address).inserted {
                path.append(edge)
                if isGoal(edge.second.address) || search(edge.second.address) { return true }
                path.removeLast()
            }
            return false
        }
        return search(start) ? path : nil
    }
}

extension Machine {
    /// Called before a thread may wait for `lock` (not for a try-acquire, which never waits).
    /// With Verifier on, acquiring a lock the thread already holds is 0xC4/0x1000 ("Self-deadlock:
    /// The current thread has tried to recursively acquire a resource"; P2 = the resource, P3/P4
    /// reserved): without Verifier a mutex would wait for itself forever and a spin lock is 0xF.
    /// Acquiring it while holding a lock that the graph already orders after it is 0xC4/0x1001
    /// ("the current thread is trying to acquire a resource that would cause a deadlock"; P2 = that
    /// resource, P3/P4 reserved). The order is recorded at the attempt, so the second thread of an
    /// ABBA pair is stopped before it can block on the first.
    /// https://learn.microsoft.com/windows-hardware/drivers/debugger/bug-check-0xc4--driver-verifier-detected-violation
    func lockWillBeAcquired(_ lock: KsLock) {
        kernelObject(lock.address, size: lock.kind.objectSize)
        guard options.verifier else { return }
        let me = current!
        let site = me.lastCall!
        if let first = me.heldLocks.last(where: { $0.lock.address == lock.address }) {
            bugCheck(DRIVER_VERIFIER_DETECTED_VIOLATION, 0x1000, lock.address, 0, 0,
                     note: "Self-deadlock: \(me.name) acquires \(lock) at \(site.file):\(site.line), but already "
                        + "holds it (acquired as \(first.lock.kind) at \(first.site.file):\(first.site.line)). "
                        + "This lock is not recursive: release it before acquiring it again.")
        }
        guard !me.heldLocks.isEmpty else { return }
        let held = me.heldLocks
        guard let path = lockOrder.path(from: lock.address, to: { a in held.contains { $0.lock.address == a } }) else {
            for h in me.heldLocks {
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

    /// Records that `thread` (by default the current one) now holds `lock`. A wait can be
    /// satisfied by another thread's release (a KMUTEX handed to its oldest waiter), so the owner
    /// is not always the thread that is running; its site is the KeWaitXxx it is blocked in.
    func lockAcquired(_ lock: KsLock, by thread: SimThread? = nil) {
        let t = thread ?? current!
        t.heldLocks.append(HeldLock(lock: lock, site: t.lastCall!, acquisition: lockOrder.nextAcquisition()))
        lockEdgeAcquired(lock, by: t)
        recordEvent(.acquire(lock), thread: t)
    }

    /// Makes the locks `t` acquired from `heldLocks[start]` on one acquisition: a satisfied WaitAll
    /// takes all of its objects at once, so releasing them in any order is not out of order.
    func locksAcquiredTogether(by t: SimThread, from start: Int) {
        guard start < t.heldLocks.count else { return }
        for i in start..<t.heldLocks.count { t.heldLocks[i].acquisition = t.heldLocks[start].acquisition }
    }

    /// Called before `lock` is released. With Verifier on: 0xC4/0x1007 if no thread holds it
    /// (P2 = lock), 0x1004 if another thread does (P2 = lock, P3 = the thread that acquired it,
    /// P4 = the current thread), 0x1003 if the current thread took another lock after it (in a later
    /// acquisition) and still holds that one (P2 = lock being released, P3 = the lock that should be
    /// released first).
    /// https://learn.microsoft.com/windows-hardware/drivers/debugger/bug-check-0xc4--driver-verifier-detected-violation
    func lockWillBeReleased(_ lock: KsLock) {
        let me = current!
        // A DPC or ISR that ran on an idle processor took its locks in that processor's idle
        // context, which is not one of `threads`.
        let holds = { (t: SimThread) in t.heldLocks.contains { $0.lock.address == lock.address } }
        let owner = threads.first(where: holds) ?? processors.lazy.compactMap(\.dpc.idle).first(where: holds)
        if options.verifier {
            guard let owner else {
                bugCheck(DRIVER_VERIFIER_DETECTED_VIOLATION, 0x1007, lock.address, 0, 0)
            }
            if owner !== me {
                bugCheck(DRIVER_VERIFIER_DETECTED_VIOLATION, 0x1004, lock.address, address(owner.kthread), address(me.kthread))
            }
            let released = me.heldLocks.last { $0.lock.address == lock.address }!
            if let last = me.heldLocks.last, last.acquisition != released.acquisition {
                bugCheck(DRIVER_VERIFIER_DETECTED_VIOLATION, 0x1003, lock.address, last.lock.address, 0,
                         note: "\(me.name) releases \(lock) while it still holds \(last.lock), acquired after it "
                            + "at \(last.site.file):\(last.site.line). Release locks in the reverse order of acquisition.")
            }
        }
        lockEdgeReleased(lock)
        if let owner, let index = owner.heldLocks.lastIndex(where: { $0.lock.address == lock.address }) {
            owner.heldLocks.remove(at: index)
            locksChanged(owner)
        }
        recordEvent(.release(lock))
    }

    /// Thread deletion with Verifier on: a thread that ends holding a lock is 0xC4/0x100A ("The
    /// terminated thread owns the lock"; P2 = the owner thread; P3 is "Driver Verifier internal
    /// data", here the lock's address). Windows deletes the thread object after PspExitThread, so
    /// this runs after its checks: 0x20 for a thread still at raised IRQL or in a critical or
    /// guarded region (which holding a fast/guarded mutex or spin lock usually means) and
    /// KeRundownThread's 0x4000008A for a KMUTEX come first; 0x100A catches a lock that was held
    /// after the IRQL and the APC counts were put back.
    /// https://learn.microsoft.com/windows-hardware/drivers/debugger/bug-check-0xc4--driver-verifier-detected-violation
    /// https://learn.microsoft.com/windows-hardware/drivers/devtest/deadlock-detection
    func threadWillBeDeleted() {
        let me = current!
        guard options.verifier, let held = me.heldLocks.first else { return }
        bugCheck(DRIVER_VERIFIER_DETECTED_VIOLATION, 0x100A, address(me.kthread), held.lock.address, 0,
                 note: "\(me.name) ended owning \(me.heldLocks.map(\.lock.description).joined(separator: ", ")) "
                    + "(the first acquired at \(held.site.file):\(held.site.line)); no other thread can ever acquire it.")
    }
}
