// The Rtl memory routines: plain memory operations on whatever the pointers reach, so touching
// paged-out or freed pool through them faults like any other access (PoolMemory.swift). They are
// kernel calls, so a fault inside one names its source line.
import Glibc

/// Fills `Length` bytes at `Destination` with zeros.
/// https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-rtlzeromemory
public func RtlZeroMemory(_ Destination: PVOID, _ Length: SIZE_T, file: String = #filePath, line: Int = #line) {
    _ = enterKernel("RtlZeroMemory", file, line)
    if Length != 0 { memset(Destination!, 0, Int(Length)) }
}

/// Fills `Length` bytes at `Destination` with `Fill`.
/// https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-rtlfillmemory
public func RtlFillMemory(_ Destination: PVOID, _ Length: SIZE_T, _ Fill: UCHAR, file: String = #filePath, line: Int = #line) {
    _ = enterKernel("RtlFillMemory", file, line)
    if Length != 0 { memset(Destination!, Int32(Fill), Int(Length)) }
}

/// Copies `Length` bytes from `Source` to `Destination`; the blocks must not overlap.
/// https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-rtlcopymemory
public func RtlCopyMemory(_ Destination: PVOID, _ Source: UnsafeRawPointer?, _ Length: SIZE_T,
                          file: String = #filePath, line: Int = #line) {
    _ = enterKernel("RtlCopyMemory", file, line)
    if Length != 0 { memcpy(Destination!, Source!, Int(Length)) }
}

/// Copies `Length` bytes from `Source` to `Destination`; the blocks may overlap.
/// https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-rtlmovememory
public func RtlMoveMemory(_ Destination: PVOID, _ Source: UnsafeRawPointer?, _ Length: SIZE_T,
                          file: String = #filePath, line: Int = #line) {
    _ = enterKernel("RtlMoveMemory", file, line)
    if Length != 0 { memmove(Destination!, Source!, Int(Length)) }
}

/// The number of leading bytes that are equal in the two blocks (`Length` if all are).
/// https://learn.microsoft.com/windows-hardware/drivers/ddi/wdm/nf-wdm-rtlcomparememory
public func RtlCompareMemory(_ Source1: UnsafeRawPointer?, _ Source2: UnsafeRawPointer?, _ Length: SIZE_T,
                             file: String = #filePath, line: Int = #line) -> SIZE_T {
    _ = enterKernel("RtlCompareMemory", file, line)
    var equal: SIZE_T = 0
    while equal < Length && Source1!.load(fromByteOffset: Int(equal), as: UInt8.self)
            == Source2!.load(fromByteOffset: Int(equal), as: UInt8.self) {
        equal += 1
    }
    return equal
}
