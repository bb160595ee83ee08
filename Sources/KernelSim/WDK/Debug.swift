// Debugger output and PAGED_CODE.
import Glibc

/// Writes `Format` to the kernel debugger (the process's stdout). No newline is added, as in C.
/// https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-dbgprint
@discardableResult
public func DbgPrint(_ Format: String, file: String = #filePath, line: Int = #line) -> ULONG {
    _ = enterKernel("DbgPrint", file, line)
    debugOutput(Format)
    return ULONG(bitPattern: STATUS_SUCCESS)
}

/// `KdPrint((...))` as a checked build expands it: DbgPrint.
/// https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-kdprint
public func KdPrint(_ Format: String, file: String = #filePath, line: Int = #line) {
    _ = enterKernel("KdPrint", file, line)
    debugOutput(Format)
}

/// Goes through `print` so it interleaves correctly with the learner's own prints, and is flushed
/// at once so it survives a runner that kills a deadlocked process.
private func debugOutput(_ text: String) {
    print(text, terminator: "")
    fflush(nil)
}

/// Marks pageable code. A free build compiles the macro away, but Driver Verifier's Force IRQL
/// Checking pages pageable code out whenever the IRQL rises, so running it at DISPATCH_LEVEL or
/// above faults: 0xD1 with P3 = 8 (execute). The simulator has no code addresses, so P1 and P4
/// are a synthetic address in a pageable section; the report gives the source line.
/// https://learn.microsoft.com/windows-hardware/drivers/kernel/paged_code
/// https://learn.microsoft.com/windows-hardware/drivers/devtest/force-irql-checking
public func PAGED_CODE(file: String = #filePath, line: Int = #line) {
    let m = enterKernel("PAGED_CODE", file, line)
    guard m.options.verifier, m.irql > APC_LEVEL else { return }
    let pageableCode: ULONG_PTR = 0xFFFF_F806_1000_0000 + ULONG_PTR(line)
    m.pageFaultAtRaisedIrql(pageableCode, access: 8, instruction: pageableCode, "PAGED_CODE() ran pageable code",
                            " Driver Verifier's Force IRQL Checking pages pageable code out whenever the IRQL rises.")
}
