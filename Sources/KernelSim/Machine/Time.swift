/// The system time when every simulated machine boots: 2026-01-01 00:00 UTC, in 100 ns units since
/// January 1, 1601, the epoch of Windows system time. Fixed, so that runs stay reproducible.
let systemTimeAtBoot: LONGLONG = 134_116_992_000_000_000

extension Machine {
    /// The simulated time (since boot) at which a KeWaitXxx/KeDelayExecutionThread interval ends.
    /// "If a negative value is specified, the expiration time is relative to the current system
    /// time. [A positive value] specifies an absolute time, relative to January 1, 1601": a small
    /// positive value (a relative timeout whose minus sign was forgotten) lies in 1601 and expires
    /// at once.
    /// https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-kewaitforsingleobject
    func deadline(for interval: LARGE_INTEGER) -> LONGLONG {
        interval.QuadPart < 0 ? clock - interval.QuadPart : interval.QuadPart - systemTimeAtBoot
    }
}

/// The current system time, in 100 ns units since January 1, 1601 (UTC). Any IRQL.
/// https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-kequerysystemtime-r1
public func KeQuerySystemTime(_ CurrentTime: PLARGE_INTEGER, file: String = #filePath, line: Int = #line) {
    let m = enterKernel("KeQuerySystemTime", file, line)
    CurrentTime.pointee.QuadPart = systemTimeAtBoot + m.clock
}

/// The interrupt-time count: 100 ns units since the machine booted. Any IRQL.
/// https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-kequeryinterrupttime
public func KeQueryInterruptTime(file: String = #filePath, line: Int = #line) -> ULONGLONG {
    ULONGLONG(enterKernel("KeQueryInterruptTime", file, line).clock)
}
