// The happens-before edges Windows documents, as the kernel routines report them to the race
// detector: locks (every kind, through Verifier's lock bookkeeping), dispatcher objects (a signal
// orders what came before it with the wait it satisfies: thread end, events, semaphores,
// mutexes), thread creation, KeInsertQueueDpc before the DPC, the end of every DPC before
// KeFlushQueuedDpcs returns, KeInsertQueueApc before the APC, KsAssertInterrupt before the ISR,
// and a processor's DISPATCH_LEVEL: code a thread runs at or above it is ordered with the DPCs of
// that processor, which cannot interleave with it there.

/// How deep below a new thread's first frame its stack's shadow is forgotten.
let stackShadowReach: UInt = 256 << 10

/// Clocks the machine keeps for itself rather than for an object at an address (no object lives
/// at these addresses).
enum SyncKey {
    /// Processor n's DISPATCH_LEVEL as its DPCs leave it: a thread that raises there comes after them.
    static func dpcsOf(_ p: Processor) -> UInt { 2 * UInt(p.number) + 1 }
    /// Processor n's DISPATCH_LEVEL as threads leave it: a DPC there comes after them. Two keys, so
    /// that two threads that raised on the same processor stay unordered (in another schedule
    /// they run on two processors), as do two DPCs.
    static func threadsOf(_ p: Processor) -> UInt { 2 * UInt(p.number) + 2 }
    /// Every DPC's end, for KeFlushQueuedDpcs.
    static let dpcsFlushed: UInt = 0x1000
}

extension Machine {
    /// The context code on `t` runs in: the innermost DPC, ISR or APC running on it, or the thread's own.
    /// Inlined at every access and lock event, which saves retains; a thread's first takes the slow path.
    @inline(__always)
    func raceContext(of t: SimThread) -> RaceContext {
        t.raceContexts.last ?? firstRaceContext(of: t)
    }

    private func firstRaceContext(of t: SimThread) -> RaceContext {
        let context = races!.newContext(name: t.name)
        t.raceContexts.append(context)
        return context
    }

    /// Runs `body` on the detector, if races are tracked, marked busy: the C library's `free`,
    /// which the detector's own collections call, must not re-enter it.
    @discardableResult
    func withRaces<T>(_ body: (RaceDetector) -> T) -> T? {
        guard let races, !races.busy else { return nil }
        races.busy = true
        defer { races.busy = false }
        return body(races)
    }

    /// `t` (by default the current thread) acquires the clock of `key`: a lock taken, a wait satisfied.
    func happensAfter(_ key: UInt, in t: SimThread? = nil) {
        guard races != nil else { return }
        let context = raceContext(of: t ?? current)
        withRaces { $0.acquire(key, into: context) }
    }

    /// The current context releases into the clock of `key`: a lock released, an object signaled.
    func happensBefore(_ key: UInt) {
        guard races != nil else { return }
        let context = raceContext(of: current)
        withRaces { $0.release(key, from: context) }
    }

    /// A DPC, APC or interrupt was queued: its routine runs after what the current context did so
    /// far, and from now on concurrently with it.
    func workQueued(_ object: UInt) {
        races?.concurrent = true
        happensBefore(object)
    }

    /// A new thread starts after what its creator did so far.
    func threadCreated(_ child: SimThread) {
        guard races != nil, let creator = current else { return }
        let parent = raceContext(of: creator)
        withRaces { races in
            races.concurrent = true
            let context = races.newContext(name: child.name)
            child.raceContexts = [context]
            races.fork(context, from: parent)
        }
    }

    /// Runs a DPC, ISR or APC routine in the context of `object` (one per object, created on
    /// first use and named by `name`), after the edge `object` carries (its queuing); a DPC also
    /// runs after, and before, the DISPATCH_LEVEL code of its processor. The routine interrupts
    /// the context running on this thread's processor, which one processor runs in order: what
    /// that context did before comes before the routine, and what it does after comes after.
    func inContext<T>(of object: UInt, _ name: @autoclosure () -> String, dispatchLevelOf p: Processor? = nil,
                      _ body: () -> T) -> T {
        guard races != nil else { return body() }
        let t = current!
        let interrupted = raceContext(of: t)
        let interruption = UInt(bitPattern: t.kthread) | 1  // odd: no object has this address
        let context = deferredContexts[object] ?? withRaces { races in
            let created = races.newContext(name: name())
            deferredContexts[object] = created
            return created
        }!
        context.lockBase = t.heldLocks.count
        context.lockset = 0
        t.raceContexts.append(context)
        withRaces { races in
            races.release(interruption, from: interrupted)
            races.acquire(interruption, into: context)
            races.acquire(object, into: context)
            if let p { races.acquire(SyncKey.threadsOf(p), into: context) }
        }
        defer {
            withRaces { races in
                if let p { races.release(SyncKey.dpcsOf(p), from: context) }
                races.release(interruption, from: context)
                races.acquire(interruption, into: interrupted)
            }
            t.raceContexts.removeLast()
        }
        return body()
    }

    /// Registers a kernel object (or an out-parameter the kernel writes) that chapter code passes
    /// by address: accesses to it are the kernel's business, never a data race.
    func kernelObject<T>(_ pointer: UnsafeMutablePointer<T>?) {
        guard let pointer else { return }
        kernelObject(UInt(bitPattern: pointer), size: MemoryLayout<T>.size)
    }

    func kernelObject(_ address: UInt, size: Int) {
        withRaces { $0.registerKernelObject(address, size: size) }
    }

    /// Forgets the shadow of the stack a new thread is about to use: a thread that ended on the same
    /// stack left accesses there that are not this thread's (TSan forgets a dead thread's stack).
    func forgetStackBelow() {
        var marker = 0
        let top = withUnsafeMutablePointer(to: &marker) { UInt(bitPattern: $0) } + 256
        withRaces { $0.forget(top - stackShadowReach, size: stackShadowReach) }
    }

    /// Recomputes the lock set of `t`'s current context after its locks changed.
    func locksChanged(_ t: SimThread) {
        guard races != nil else { return }
        let context = raceContext(of: t)
        withRaces { $0.updateLockset(of: context, holding: t.heldLocks) }
    }

    /// `t` took `lock`: registers the lock (its routine took it by address), then `t` acquires
    /// its clock and recomputes its lock set, in one call into the detector.
    func lockEdgeAcquired(_ lock: KsLock, by t: SimThread) {
        guard races != nil else { return }
        let context = raceContext(of: t)
        withRaces { races in
            races.registerKernelObject(lock.address, size: lock.kind.objectSize)
            races.acquire(lock.address, into: context)
            races.updateLockset(of: context, holding: t.heldLocks)
        }
    }

    /// The current context releases `lock`: registers it, then releases into its clock.
    func lockEdgeReleased(_ lock: KsLock) {
        guard races != nil else { return }
        let context = raceContext(of: current)
        withRaces { races in
            races.registerKernelObject(lock.address, size: lock.kind.objectSize)
            races.release(lock.address, from: context)
        }
    }
}
