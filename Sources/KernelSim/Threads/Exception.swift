// Kernel exceptions. KernelSim has no structured exception handling, so every raised exception
// is unhandled. A system thread's start routine runs inside PspSystemThreadStartup's __except,
// whose filter (PspUnhandledExceptionInSystemThread) brings the system down: on current Windows
// with 0x7E SYSTEM_THREAD_EXCEPTION_NOT_HANDLED, P1 = the exception code ("a system thread
// generated an exception that the error handler didn't catch"). The Windows Research Kernel
// (Server 2003) raised 0x1E KMODE_EXCEPTION_NOT_HANDLED from the same filter; every simulated
// thread is a system thread, so 0x7E is the one that applies.
// https://learn.microsoft.com/windows-hardware/drivers/debugger/bug-check-0x7e--system-thread-exception-not-handled

extension Machine {
    /// Raises `status` (as ExRaiseStatus would) in the current thread: bug check 0x7E. P1 is the
    /// NTSTATUS sign-extended to 64 bits, as x64 dumps show it (ffffffffc0000046); there are no code
    /// addresses, exception records or context records here, so P2–P4 are 0.
    func raiseException(_ status: NTSTATUS, note: String) -> Never {
        bugCheck(SYSTEM_THREAD_EXCEPTION_NOT_HANDLED, ULONG_PTR(bitPattern: Int(status)), 0, 0, 0,
                 note: "Unhandled exception 0x\(String(UInt32(bitPattern: status), radix: 16, uppercase: true)): \(note)")
    }
}
