// Simulated threads are user-level contexts on the OS thread that called KsRunMachine: each has a
// stack of its own, and a switch (CKernelSimContext, in assembly) saves one context's registers on
// its stack and resumes another's, about 10 ns against 3.6 µs for handing a semaphore between
// pooled OS threads.
import Glibc

// C functions, declared here rather than imported: chapter programs are compiled against
// KernelSim's Swift module alone, and a module built for testing (as debug builds are) makes its
// clients load every Clang module it imports, even internally ("missing required module"). Swift's
// calling convention passes and preserves the same registers as C's for functions that take
// neither `self` nor an error, as these do (x86_64: LLVM's CSR_64; arm64: AAPCS64). KernelSim
// links CKernelSimContext, whose header documents them.
@_silgen_name("ks_context_switch")
private func ks_context_switch(_ save: UnsafeMutablePointer<UnsafeMutableRawPointer?>, _ resume: UnsafeMutableRawPointer)
@_silgen_name("ks_context_resume")
func ks_context_resume(_ resume: UnsafeMutableRawPointer) -> Never
@_silgen_name("ks_context_make")
private func ks_context_make(_ stackTop: UnsafeMutableRawPointer,
                             _ entry: @convention(c) (UnsafeMutableRawPointer?) -> UnsafeMutableRawPointer,
                             _ argument: UnsafeMutableRawPointer?) -> UnsafeMutableRawPointer
// The Swift runtime's own (libswiftCore, C calling convention); see `Context.accesses`.
// https://github.com/swiftlang/swift/blob/main/include/swift/Runtime/Exclusivity.h
@_silgen_name("swift_task_enterThreadLocalContext")
private func swift_task_enterThreadLocalContext(_ state: UnsafeMutablePointer<CChar>)
@_silgen_name("swift_task_exitThreadLocalContext")
private func swift_task_exitThreadLocalContext(_ state: UnsafeMutablePointer<CChar>)

/// One execution context: a simulated thread's, or that of `KsRunMachine`'s caller, where the
/// machine starts and ends.
final class Context {
    /// Usable bytes of a thread's stack, as much as the OS threads that ran simulated threads had:
    /// chapter code is compiled without optimisation, and a stack is only address space until used.
    static let stackSize = 4 << 20
    /// No-access bytes below each stack, more than a page so that a large frame cannot skip it.
    static let guardSize = 64 << 10

    /// The context of `KsRunMachine`'s caller, on the stack of its OS thread.
    nonisolated(unsafe) static let caller = Context(mapping: nil)

    /// Contexts of ended machines, for the next ones: exploring thousands of schedules maps a few
    /// stacks, not a few per schedule.
    nonisolated(unsafe) private(set) static var spare: [Context] = []

    /// The stack pointer while the context is switched out.
    let stackPointer = UnsafeMutablePointer<UnsafeMutableRawPointer?>.allocate(capacity: 1)
    /// The Swift runtime's dynamic exclusivity access set of the context while it is switched out.
    /// The runtime keeps the running code's set in thread-local storage, which all contexts share;
    /// the concurrency runtime moves a task's accesses out of it and back with these calls when
    /// the task suspends and resumes, and a switch does the same, so that an access a thread is in
    /// the middle of is not seen by the thread that runs next. Two words, zero when empty
    /// (SwiftTaskThreadLocalContext in the runtime's ConcurrencyExclusivity.inc).
    private let accesses = UnsafeMutablePointer<CChar>.allocate(capacity: 16)
    /// `guardSize` bytes of guard, then the stack; nil for the caller's context.
    private let mapping: UnsafeMutableRawPointer?

    private init(mapping: UnsafeMutableRawPointer?) {
        self.mapping = mapping
        accesses.initialize(repeating: 0, count: 16)
    }

    /// A context that, when first resumed, runs `entry(argument)` on a stack of its own and then
    /// resumes the context whose stack pointer the entry returned.
    static func make(_ entry: @convention(c) (UnsafeMutableRawPointer?) -> UnsafeMutableRawPointer,
                     _ argument: UnsafeMutableRawPointer) -> Context {
        let context = spare.popLast() ?? Context(mapping: mapStack())
        // A context abandoned in the middle of an access (a bug check) kept it.
        context.accesses.update(repeating: 0, count: 16)
        context.stackPointer.pointee = ks_context_make(context.mapping! + guardSize + stackSize, entry, argument)
        return context
    }

    /// Makes the contexts of an ended machine available to the next. A context may still hold the
    /// frames of a thread that never returned (a bug check, a deadlock, PsTerminateSystemThread):
    /// the thread is never resumed, so they are simply overwritten.
    static func recycle(_ contexts: [Context]) { spare.append(contentsOf: contexts) }

    /// A stack of `stackSize` bytes above `guardSize` bytes of guard; returns the guard's address.
    static func mapStack() -> UnsafeMutableRawPointer {
        let length = guardSize + stackSize
        let mapped = mmap(nil, length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0)
        guard let mapping = mapped, Int(bitPattern: mapping) != -1 else {  // MAP_FAILED
            fatalError("KernelSim: could not map a \(length >> 20) MiB stack for a simulated thread")
        }
        mprotect(mapping, guardSize, PROT_NONE)
        return mapping
    }

    /// Whether `address` is in the guard below this context's stack: the stack overflowed.
    func guards(_ address: UInt) -> Bool {
        guard let mapping else { return false }
        return address &- UInt(bitPattern: mapping) < UInt(Self.guardSize)
    }

    /// Switches from this context, the running one, to `next`; returns when this one is resumed.
    func switchTo(_ next: Context) {
        ks_context_switch(stackPointer, handOff(to: next))
    }

    /// Leaves this context, the running one, for `next` for good.
    func abandon(for next: Context) -> Never {
        ks_context_resume(handOff(to: next))
    }

    /// Moves the exclusivity access sets over from this context to `next`; returns the stack
    /// pointer that resumes `next`.
    func handOff(to next: Context) -> UnsafeMutableRawPointer {
        swift_task_exitThreadLocalContext(accesses)
        swift_task_enterThreadLocalContext(next.accesses)
        return next.stackPointer.pointee!
    }
}
