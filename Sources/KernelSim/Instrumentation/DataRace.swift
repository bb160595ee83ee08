// What the race detector found, in the terms a report needs: the two accesses, who made them,
// where, at which IRQL and holding which locks.
import Glibc
import KernelSimInstrumentation

/// A lock held by a racing access's context, and where it was acquired.
public struct KsRaceLock: Sendable, Hashable {
    public var kind: String
    public var address: ULONG_PTR
    public var file: String
    public var line: Int
}

/// A data race: two accesses to the same bytes, at least one a write, not both atomic, that no
/// synchronization orders.
public struct KsDataRace: Sendable {
    public struct Access: Sendable {
        public var write: Bool
        public var atomic: Bool
        /// The instruction's address in the process, and as an offset into `module` (the file of
        /// the executable or library it is in), which a symbolizer turns into a source line.
        public var pc: UInt
        public var module: String
        public var offset: UInt
        /// The function the instruction is in, demangled, if the image exports it.
        public var function: String?
        /// "thread 3", "the DPC initialized at ch.md:40"...
        public var context: String
        public var processor: Int
        public var irql: KIRQL
        public var locks: [KsRaceLock]
    }

    public var address: ULONG_PTR
    /// Bytes of the first racing access.
    public var size: Int
    /// The global variable at `address`, if it is one.
    public var variable: String?
    /// The access made first, and the one that found the race.
    public var previous: Access
    public var current: Access
    /// Distinct pairs of racing instructions found in the run (this one included).
    public var racingPairs: Int

    /// A plain-text report (functions, not source lines: those need the program's debug info).
    public var description: String {
        func line(_ a: Access, _ role: String) -> String {
            let what = (a.atomic ? "atomic " : "") + (a.write ? "write" : "read")
            let place = a.function.map { "in \($0)" } ?? "at \(a.module)+\(hex(a.offset))"
            let locks = a.locks.isEmpty ? "holding no lock"
                : "holding " + a.locks.map { "\($0.kind) \(hex($0.address)) (acquired at \($0.file):\($0.line))" }
                    .joined(separator: ", ")
            return "  \(role) \(what) by \(a.context) on processor \(a.processor) at IRQL \(a.irql), \(locks), \(place)"
        }
        var text = "data race on \(variable ?? hex(address)) (\(size) bytes)\n"
        text += line(current, "") + "\n" + line(previous, "previous")
        if racingPairs > 1 { text += "\n  (\(racingPairs - 1) more racing pair(s) of instructions in this run)" }
        return text
    }
}

nonisolated(unsafe) var lastDataRace: KsDataRace?

/// The first data race of the last machine run, if it had one (and reported races).
public func KsLastDataRace() -> KsDataRace? { lastDataRace }

extension RaceDetector {
    /// The first race found, as a report.
    func report() -> KsDataRace? {
        guard let (previous, current, address, size) = firstRace else { return nil }
        func access(_ a: ShadowAccess) -> KsDataRace.Access {
            let image = imageInfo(a.pc)
            return KsDataRace.Access(
                write: a.write, atomic: a.atomic, pc: a.pc, module: image.module, offset: a.pc &- image.base,
                function: image.symbol.map(demangled), context: contexts[Int(a.context) - 1].name,
                processor: Int(a.processor), irql: a.irql,
                locks: locksets[Int(a.lockset)].map {
                    KsRaceLock(kind: $0.lock.kind.rawValue, address: $0.lock.address, file: $0.file, line: $0.line)
                })
        }
        let symbol = imageInfo(address).symbol
        return KsDataRace(address: address, size: Int(max(size, 1)), variable: symbol.map(demangled),
                          previous: access(previous), current: access(current), racingPairs: racingPairs.count)
    }
}

/// The image holding `address`, its load address and the exported symbol at or below it.
private func imageInfo(_ address: UInt) -> (module: String, base: UInt, symbol: String?) {
    var file: UnsafePointer<CChar>?
    var base: UInt = 0
    var symbol: UnsafePointer<CChar>?
    guard ks_image_of(UnsafeRawPointer(bitPattern: address), &file, &base, &symbol) != 0 else { return ("?", 0, nil) }
    return (file.map { String(cString: $0) } ?? "?", base, symbol.map { String(cString: $0) })
}

@_silgen_name("swift_demangle")
private func swiftDemangle(_ mangled: UnsafePointer<CChar>?, _ length: Int, _ output: UnsafeMutablePointer<CChar>?,
                           _ outputSize: UnsafeMutablePointer<Int>?, _ flags: UInt32) -> UnsafeMutablePointer<CChar>?

/// A Swift symbol demangled by the runtime; anything else as it is.
private func demangled(_ symbol: String) -> String {
    guard let result = swiftDemangle(symbol, symbol.utf8.count, nil, nil, 0) else { return symbol }
    defer { free(result) }
    return String(cString: result)
}
