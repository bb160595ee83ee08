// Crash and deadlock reports, laid out like WinDbg's `!analyze -v` so the text teaches the
// format learners will meet on a real machine.

private let banner = """
*******************************************************************************
*                                                                             *
*                        Bugcheck Analysis                                    *
*                                                                             *
*******************************************************************************
"""

extension Machine {
    func crashReport(code: ULONG, parameters: [ULONG_PTR], site: CallSite, note: String?) -> String {
        let info = bugCheckInfo(code)
        let name = info?.name ?? "UNKNOWN_BUGCHECK"
        let subcodes = code == DRIVER_VERIFIER_DETECTED_VIOLATION ? verifierSubcodes
            : code == BAD_POOL_CALLER ? poolCallerSubcodes : nil
        let subcode = subcodes?[parameters[0]]
        var meanings = info?.parameters ?? ["", "", "", ""]
        if let subcode { meanings = [subcode.summary] + subcode.parameters }
        let t = current!
        var lines = [banner, "", "\(name) (\(String(code, radix: 16)))"]
        if let info { lines.append(info.summary) }
        lines.append("Arguments:")
        for (i, value) in parameters.enumerated() {
            lines.append("Arg\(i + 1): \(hex(value)), \(meanings[i])")
        }
        if let note { lines += ["", "NOTE: " + note] }
        lines += [
            "",
            "BUGCHECK_CODE:  \(String(code, radix: 16))",
            "BUGCHECK_STR:  0x\(String(code, radix: 16, uppercase: true))"
                + (subcode != nil ? "_\(String(parameters[0], radix: 16, uppercase: true))" : ""),
            "CURRENT_IRQL:  \(irql)",
            "PROCESSOR:  \(currentProcessor.number) of \(processors.count)",
            "DRIVER_VERIFIER:  \(options.verifier ? "on" : "off")",
            "FAULTING_THREAD:  \(t.name) (KTHREAD \(hex(address(t.kthread)))), started by \(t.origin)",
            "FAULTING_SOURCE_LINE:  \(site.file):\(site.line) (\(site.routine))",
            "",
            "RECENT_KERNEL_CALLS (\(t.name), oldest first):",
        ]
        lines += t.recentCalls.map { "  \($0.routine.padding(to: 34)) \($0.file):\($0.line)" }
        lines += ["", "SCHEDULE:  seed \(options.seed), strategy \(options.strategy), \(steps) scheduling steps, simulated time \(clock / 10) us"]
        if let info { lines.append("DOCUMENTATION:  " + info.url) }
        return lines.joined(separator: "\n") + "\n"
    }

    /// Who waits for what, who holds what, and the likely cause, for a machine where no thread
    /// can run and no timeout is pending.
    func deadlockReport() -> String {
        var lines = ["DEADLOCK: every live thread is waiting and no timeout is pending.", "", "Threads:"]
        for t in threads {
            let site = t.lastCall.map { " in \($0.routine) at \($0.file):\($0.line)" } ?? ""
            switch t.state {
            case .terminated: lines.append("  \(t.name): ended")
            case .waiting: lines.append("  \(t.name) (\(t.origin)): waiting\(site) for \(describeWait(t))")
            case .ready, .running: lines.append("  \(t.name): runnable\(site)")
            }
        }
        if !fastMutexes.isEmpty {
            lines += ["", "Fast mutexes:"]
            for mutex in fastMutexes {
                let m = mutex.pointee
                lines.append("  FAST_MUTEX \(hex(address(mutex))): Count=\(m.Count) Owner=\(describeOwner(m.Owner)) "
                    + "Contention=\(m.Contention)")
            }
        }
        let kernelMutexes = threads.flatMap { t in ownedMutexes(t).map { (t, $0) } }
        if !kernelMutexes.isEmpty {
            lines += ["", "Kernel mutexes:"] + kernelMutexes.map { t, mutex in
                "  KMUTEX \(hex(address(mutex))): SignalState=\(mutex.pointee.Header.SignalState) OwnerThread=\(t.name)"
            }
        }
        let held = spinLockOwners.map { "  KSPIN_LOCK \(hex(address($0.key))) held by \($0.value.name)" }.sorted()
        if !held.isEmpty { lines += ["", "Spin locks:"] + held }
        let diagnoses = threads.compactMap(diagnose)
        if !diagnoses.isEmpty { lines += ["", "Analysis:"] + diagnoses.map { "  - " + $0 } }
        return lines.joined(separator: "\n") + "\n"
    }

    private func mutex(owningEvent object: UnsafeMutableRawPointer?) -> PFAST_MUTEX? {
        fastMutexes.first { UnsafeMutableRawPointer(eventOf($0)) == object }
    }

    private func describe(_ object: UnsafeMutableRawPointer?) -> String {
        guard let object else { return "a timeout" }
        if let mutex = mutex(owningEvent: object) { return "FAST_MUTEX \(hex(address(mutex))) (sleeping on its Event)" }
        if let t = thread(for: object) { return "\(t.name) to end" }
        let header = object.assumingMemoryBound(to: DISPATCHER_HEADER.self).pointee
        if header.Type == MutantObject {
            let owner = object.assumingMemoryBound(to: KMUTANT.self).pointee.OwnerThread
            return "KMUTEX \(hex(address(object))) (SignalState \(header.SignalState), OwnerThread \(describeOwner(owner)))"
        }
        if header.Type == SemaphoreObject {
            let limit = object.assumingMemoryBound(to: KSEMAPHORE.self).pointee.Limit
            return "KSEMAPHORE \(hex(address(object))) (count \(header.SignalState), Limit \(limit))"
        }
        let kind = header.Type == EventSynchronizationObject ? "SynchronizationEvent" : "NotificationEvent"
        return "KEVENT \(hex(address(object))) (\(kind), SignalState \(header.SignalState))"
    }

    /// What a waiting thread waits for: one object, or the objects of a KeWaitForMultipleObjects.
    private func describeWait(_ t: SimThread) -> String {
        let objects = t.waitObjects
        guard objects.count > 1 else { return describe(t.waitObject) }
        let all = t.waitBlockList!.pointee.WaitType == UCHAR(WaitAll.rawValue)
        return (all ? "all of " : "any of ") + objects.map(describe).joined(separator: "; ")
    }

    private func describeOwner(_ owner: PVOID) -> String {
        guard let owner else { return "NULL" }
        return thread(for: owner)?.name ?? hex(address(owner))
    }

    private func diagnose(_ t: SimThread) -> String? {
        guard t.state == .waiting else { return nil }
        if let mutex = mutex(owningEvent: t.waitObject) {
            let m = mutex.pointee
            if m.Owner == UnsafeMutableRawPointer(t.kthread) {
                return "\(t.name) is acquiring FAST_MUTEX \(hex(address(mutex))), which it already owns. Fast mutexes "
                    + "are not recursive: \"that thread will deadlock\" "
                    + "(https://learn.microsoft.com/windows-hardware/drivers/kernel/fast-mutexes-and-guarded-mutexes)."
            }
            if m.Owner == nil && m.Count & FM_LOCK_BIT == 0 {
                return "FAST_MUTEX \(hex(address(mutex))) has no owner, yet its lock bit is clear (Count=\(m.Count)). "
                    + "It never became free: ExInitializeFastMutex sets Count = FM_LOCK_BIT (1 = unlocked)."
            }
            if let owner = thread(for: m.Owner) {
                return "\(t.name) waits for FAST_MUTEX \(hex(address(mutex))), owned by \(owner.name)"
                    + (owner.state == .waiting ? ", which is itself waiting." : ".")
            }
        }
        for object in t.waitObjects where object.assumingMemoryBound(to: DISPATCHER_HEADER.self).pointee.Type == MutantObject {
            if let owner = thread(for: object.assumingMemoryBound(to: KMUTANT.self).pointee.OwnerThread) {
                return "\(t.name) waits for KMUTEX \(hex(address(object))), owned by \(owner.name)"
                    + (owner.state == .waiting ? ", which is itself waiting." : ".")
            }
        }
        if let target = thread(for: t.waitObject), target === t {
            return "\(t.name) waits for itself to end."
        }
        return nil
    }
}

extension String {
    fileprivate func padding(to width: Int) -> String {
        count >= width ? self : self + String(repeating: " ", count: width - count)
    }
}
