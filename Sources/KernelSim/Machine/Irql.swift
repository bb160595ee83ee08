// IRQL levels (x64 values from wdm.h) and the routines that read and change a processor's IRQL.
// On x64 the IRQL is the CR8 register, so raising and lowering are plain writes of one processor's
// value; the checks below are the documented bug checks, not free-build behaviour (see 4.3 of
// reactos-sync-semantics.md).

public let PASSIVE_LEVEL: KIRQL = 0
public let LOW_LEVEL: KIRQL = 0
public let APC_LEVEL: KIRQL = 1
public let DISPATCH_LEVEL: KIRQL = 2
public let CMCI_LEVEL: KIRQL = 5
public let SYNCH_LEVEL: KIRQL = 12
public let CLOCK_LEVEL: KIRQL = 13
public let IPI_LEVEL: KIRQL = 14
public let DRS_LEVEL: KIRQL = 14
public let POWER_LEVEL: KIRQL = 14
public let PROFILE_LEVEL: KIRQL = 15
public let HIGH_LEVEL: KIRQL = 15

/// Returns the IRQL of the processor the caller runs on.
public func KeGetCurrentIrql(file: String = #filePath, line: Int = #line) -> KIRQL {
    enterKernel("KeGetCurrentIrql", file, line).irql
}

/// Raises the current processor's IRQL to `NewIrql` and stores the previous IRQL in `*OldIrql`.
public func KeRaiseIrql(_ NewIrql: KIRQL, _ OldIrql: PKIRQL, file: String = #filePath, line: Int = #line) {
    let m = enterKernel("KeRaiseIrql", file, line)
    m.kernelObject(OldIrql)
    OldIrql.pointee = m.raiseIrql(to: NewIrql)
}

/// Lowers the current processor's IRQL to `NewIrql`, the value saved by the matching raise.
public func KeLowerIrql(_ NewIrql: KIRQL, file: String = #filePath, line: Int = #line) {
    let m = enterKernel("KeLowerIrql", file, line)
    m.lowerIrql(to: NewIrql)
}

/// Raises to DISPATCH_LEVEL and returns the previous IRQL.
public func KeRaiseIrqlToDpcLevel(file: String = #filePath, line: Int = #line) -> KIRQL {
    enterKernel("KeRaiseIrqlToDpcLevel", file, line).raiseIrql(to: DISPATCH_LEVEL)
}

/// Raises to SYNCH_LEVEL (12 on x64 multiprocessor kernels) and returns the previous IRQL.
public func KeRaiseIrqlToSynchLevel(file: String = #filePath, line: Int = #line) -> KIRQL {
    enterKernel("KeRaiseIrqlToSynchLevel", file, line).raiseIrql(to: SYNCH_LEVEL)
}

/// The zero-based number of the processor the caller runs on.
public func KeGetCurrentProcessorNumber(file: String = #filePath, line: Int = #line) -> ULONG {
    ULONG(enterKernel("KeGetCurrentProcessorNumber", file, line).currentProcessor.number)
}

extension Machine {
    /// KeRaiseIrql's contract: "If the new IRQL is less than the current IRQL, a bug check occurs."
    /// https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-keraiseirql
    /// Driver Verifier reports 0xC4/0x30; without it we raise 0x9 as ReactOS's debug HAL does.
    func raiseIrql(to new: KIRQL) -> KIRQL {
        let old = irql
        if options.verifier && (new < old || new > HIGH_LEVEL) {
            bugCheck(DRIVER_VERIFIER_DETECTED_VIOLATION, 0x30, ULONG_PTR(old), ULONG_PTR(new), 0)
        }
        if new < old {
            bugCheck(IRQL_NOT_GREATER_OR_EQUAL, 0, 0, 0, 0,
                     note: "KeRaiseIrql was asked to lower the IRQL from \(old) to \(new).")
        }
        irql = new
        return old
    }

    /// "It is a fatal error to call KeLowerIrql using an input NewIrql that was not returned by the
    /// immediately preceding call to KeRaiseIrql." Verifier: 0xC4/0x31 (P4 = 1: below
    /// DISPATCH_LEVEL inside a DPC routine); retail: 0xA as ReactOS's debug HAL raises it.
    /// https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-kelowerirql
    func lowerIrql(to new: KIRQL) {
        let old = irql
        if options.verifier && (new > old || new > HIGH_LEVEL) {
            bugCheck(DRIVER_VERIFIER_DETECTED_VIOLATION, 0x31, ULONG_PTR(old), ULONG_PTR(new), 0)
        }
        if options.verifier && new < DISPATCH_LEVEL && currentProcessor.dpc.routineActive {
            bugCheck(DRIVER_VERIFIER_DETECTED_VIOLATION, 0x31, ULONG_PTR(old), ULONG_PTR(new), 1)
        }
        if new > old {
            bugCheck(IRQL_NOT_LESS_OR_EQUAL, 0, 0, 0, 0,
                     note: "KeLowerIrql was asked to raise the IRQL from \(old) to \(new).")
        }
        irql = new
    }
}
