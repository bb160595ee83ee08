// Memory faults of simulated threads: pool the MMU refuses (paged out, freed or past the end of a
// block; PoolMemory.swift) and stack overflows. One SIGSEGV handler tells them apart and hands
// anything else back to the disposition it replaced. It runs on a stack of its own, since an
// overflowed stack cannot run it.
import Glibc

/// SIGSEGV's disposition before the simulator's handler (Swift's backtracer, or the default),
/// restored for a fault that is not the simulator's.
nonisolated(unsafe) private var previousSegvAction = sigaction()

/// Installs the handler, once per process, when the first machine starts. Anonymous memory
/// faults with SIGSEGV, not SIGBUS.
private let faultHandlerInstalled: Void = {
    var action = sigaction()
    action.__sigaction_handler.sa_sigaction = handleFault
    action.sa_flags = SA_SIGINFO | SA_ONSTACK
    sigemptyset(&action.sa_mask)
    sigaction(SIGSEGV, &action, &previousSegvAction)
}()

/// The alternate signal stack the handler runs on while a machine runs. A pool fault's bug check
/// runs its report there too, so it is as big as a thread's stack (and as cheap until touched).
nonisolated(unsafe) private let signalStack = Context.mapStack() + Context.guardSize

/// Runs `body`, a machine, with the handler installed and its signal stack in place on the calling
/// OS thread; afterwards the thread's previous alternate stack (Swift's backtracer gives the main
/// thread one) is back.
func handlingFaults(_ body: () -> Void) {
    _ = faultHandlerInstalled
    var ours = stack_t(ss_sp: signalStack, ss_flags: 0, ss_size: Context.stackSize)
    var previous = stack_t()
    sigaltstack(&ours, &previous)
    body()
    sigaltstack(&previous, nil)
}

/// Only a fault of a simulated thread of the running machine is the simulator's. Anything else
/// gets the previous disposition back and returns, so the access faults again and crashes exactly
/// as it would have without the simulator.
private func handleFault(_ signal: Int32, _ info: UnsafeMutablePointer<siginfo_t>?, _ context: UnsafeMutableRawPointer?) {
    let address = UInt(bitPattern: info!.pointee._sifields._sigfault.si_addr)
    if let m = activeMachine, m.onSimulatedThread, let t = m.current {
        if let fault = m.pool.fault(at: address) {
            // The kernel blocks SIGSEGV while its handler runs and sigreturn unblocks it; a bug
            // check leaves the handler by a context switch instead, and the next pool fault would
            // then kill the process (sigaction(2): sa_mask and SA_NODEFER).
            var segv = sigset_t()
            sigemptyset(&segv)
            sigaddset(&segv, SIGSEGV)
            pthread_sigmask(SIG_UNBLOCK, &segv, nil)
            m.resolve(fault, at: address, faultingAccess(context))
            return
        }
        if t.context.guards(address) { reportStackOverflow(in: t) }
    }
    sigaction(SIGSEGV, &previousSegvAction, nil)
}

/// Ends the process with one line on stderr: a simulated thread's stack is exhausted, usually by
/// unbounded recursion, and the thread cannot go on. "Fatal error", as in Swift's runtime traps,
/// is what the workbook's runner quotes from stderr. Written with write(2) alone: the overflow may
/// have hit inside malloc, whose lock would then never be released.
private func reportStackOverflow(in t: SimThread) -> Never {
    func write(_ text: String) {
        var text = text
        text.withUTF8 { _ = Glibc.write(STDERR_FILENO, $0.baseAddress, $0.count) }
    }
    write("KernelSim: Fatal error: stack overflow in thread ")
    withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 20) { digits in
        var n = t.id, start = digits.count
        repeat {
            start -= 1
            digits[start] = UInt8(ascii: "0") + UInt8(n % 10)
            n /= 10
        } while n > 0
        _ = Glibc.write(STDERR_FILENO, digits.baseAddress! + start, digits.count - start)
    }
    write(" (")
    write(t.origin)
    write(")\n")
    _exit(134)
}
