// Where instrumented chapter code meets the machine: every access reaches `memoryAccess`, which
// makes an access to shared memory a scheduling point (so the load and the store of `count += 1`
// can be separated by another thread, DPC or ISR) and feeds the race detector.
import Glibc
import KernelSimInstrumentation

/// How a thread's place reads while it is at an access to shared memory (in interleavings and
/// crash reports): the "file" names the instruction's offset in the chapter program as the line,
/// which the runner turns into a chapter line.
public enum KsSharedAccessSite {
    public static let routine = "shared-memory access"
    public static let file = "program offset"
}

/// `pc` as an offset into the image that holds it (the chapter program), for a symbolizer.
private func programOffset(_ pc: UInt) -> Int {
    if programBase == 0 {
        var file: UnsafePointer<CChar>?
        var symbol: UnsafePointer<CChar>?
        _ = ks_image_of(UnsafeRawPointer(bitPattern: pc), &file, &programBase, &symbol)
    }
    return Int(bitPattern: pc &- programBase)
}

/// The chapter program's load address, found at its first shared access (all its code is in one image).
nonisolated(unsafe) private var programBase: UInt = 0

/// Simulated time an access to shared memory takes: 100 ns, a tenth of a kernel call's step, so a
/// loop spinning on a variable still lets timeouts expire and the DPC watchdog see it.
let memoryAccessTime: LONGLONG = 1

private let accessHook: ks_access_hook_t = { address, size, flags, pc in
    guard let m = activeMachine, let races = m.races, !races.busy, m.onSimulatedThread else { return }
    m.memoryAccess(address, size: size, flags: flags, pc: pc, races: races)
}

/// Most frees are the detector's own (while it is busy) or of blocks it has no shadow of: both
/// return before any table work.
private let freeHook: ks_free_hook_t = { pointer, size in
    guard let m = activeMachine, let races = m.races, !races.busy, m.onSimulatedThread else { return }
    m.withRaces { $0.forget(UInt(bitPattern: pointer), size: size) }
}

/// Routes instrumented accesses and frees to the running machine (nil: to nobody).
func installAccessHooks(_ on: Bool) {
    ks_set_access_hook(on ? accessHook : nil)
    ks_set_free_hook(on ? freeHook : nil)
}

extension Machine {
    /// `races` is the machine's detector, passed in by the hook that already holds it.
    func memoryAccess(_ address: UInt, size: UInt, flags: UInt32, pc: UInt, races: RaceDetector) {
        let context = raceContext(of: current)
        guard races.concurrent else {
            // Nothing to judge yet, but who touched the memory first decides what is shared later.
            if flags & UInt32(KS_ACCESS_INOUT) == 0 { withRaces { _ = $0.isShared(address, size: size, by: context) } }
            return
        }
        let write = flags & UInt32(KS_ACCESS_WRITE) != 0
        if flags & UInt32(KS_ACCESS_INOUT) != 0 {
            let p = currentProcessor
            races.pend(PendingInout(address: address, write: write, pc: pc, processor: UInt8(truncatingIfNeeded: p.number),
                                    irql: p.irql), in: context)
            return
        }
        races.busy = true
        races.flush(context)
        let shared = races.isShared(address, size: size, by: context)
        races.busy = false
        if shared {
            current.record(CallSite(routine: KsSharedAccessSite.routine, file: KsSharedAccessSite.file,
                                    line: programOffset(pc)))
            schedulingPoint(advancing: memoryAccessTime)
        }
        // The thread may resume on another processor, and a context it ran meanwhile may have
        // been pushed and popped: read both again.
        let p = currentProcessor
        let atomic = flags & UInt32(KS_ACCESS_ATOMIC) != 0
        races.busy = true
        races.access(address, size: size, write: write, atomic: atomic, pc: pc, processor: p.number, irql: p.irql,
                     context: context)
        if atomic {
            races.acquire(address, into: context)
            races.release(address, from: context)
        }
        races.busy = false
    }
}
