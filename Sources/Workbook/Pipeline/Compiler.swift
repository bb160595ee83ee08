import Foundation

/// The built simulator the generated programs compile against: `libKernelSim.so` (which also
/// holds the WorkbookRuntime module) and the modules' interfaces in SwiftPM's build folder.
public struct SimulatorBuild: Sendable {
    public var directory: String

    /// Looks next to the running executable (`workbook` and the test bundle both live in SwiftPM's
    /// bin folder), unless `WORKBOOK_SIMULATOR_DIR` names another folder.
    public static func locate() throws -> SimulatorBuild {
        let environment = ProcessInfo.processInfo.environment
        let directory = environment["WORKBOOK_SIMULATOR_DIR"]
            ?? URL(fileURLWithPath: Bundle.main.executablePath ?? CommandLine.arguments[0])
                .resolvingSymlinksInPath().deletingLastPathComponent().path
        let build = SimulatorBuild(directory: directory)
        let missing = build.requiredFiles.filter { !FileManager.default.fileExists(atPath: $0) }
        guard missing.isEmpty else {
            throw ChildProcessError(message: "the simulator is not built (missing \(missing.joined(separator: ", "))); run `swift build` first")
        }
        return build
    }

    var requiredFiles: [String] {
        ["libKernelSim.so", "Modules/KernelSim.swiftmodule",
         "Modules/WorkbookRuntime.swiftmodule", instrumentationModuleMap].map { "\(directory)/\($0)" }
    }

    /// The C module KernelSim re-exports (the Interlocked routines and the instrumentation hooks).
    let instrumentationModuleMap = "KernelSimInstrumentation.build/module.modulemap"

    /// Changes whenever the simulator is rebuilt: size and modification time of its files.
    public var identity: String {
        requiredFiles.map { path -> String in
            let attributes = try? FileManager.default.attributesOfItem(atPath: path)
            let size = attributes?[.size] as? Int ?? -1
            let date = (attributes?[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0
            return "\(path):\(size):\(date)"
        }.joined(separator: "|")
    }
}

/// `swiftc`, invoked once per chapter (and once per `compile_fail` block).
public struct Compiler: Sendable {
    public var swiftc: String
    public var simulator: SimulatorBuild
    /// Clang and Swift module cache shared between runs: a cold one costs seconds per compile.
    public var moduleCache: String

    public init(simulator: SimulatorBuild, moduleCache: String) throws {
        self.simulator = simulator
        self.moduleCache = moduleCache
        let environment = ProcessInfo.processInfo.environment
        if let explicit = environment["SWIFTC"] {
            swiftc = explicit
        } else if let found = (environment["PATH"] ?? "").split(separator: ":").map({ "\($0)/swiftc" })
                    .first(where: { FileManager.default.isExecutableFile(atPath: $0) }) {
            swiftc = found
        } else {
            throw ChildProcessError(message: "swiftc is not on PATH")
        }
    }

    /// Changes with the compiler binary.
    public var identity: String {
        let attributes = try? FileManager.default.attributesOfItem(atPath: swiftc)
        let date = (attributes?[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0
        return "\(swiftc):\(attributes?[.size] as? Int ?? -1):\(date)"
    }

    struct Outcome {
        var succeeded: Bool
        var diagnostics: [Diagnostic]
        /// The compiler's own words, for errors no chapter line explains.
        var output: String
    }

    /// Compiles `source` to `executable` (or only checks it, up to SIL, when `executable` is nil);
    /// `debugInfo` lets a trap's backtrace name the chapter line (toolchain-notes §6.2).
    func compile(source: String, moduleName: String, in folder: String, executable: String?,
                 debugInfo: Bool = false) throws -> Outcome {
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let sourcePath = "\(folder)/main.swift"
        try source.write(toFile: sourcePath, atomically: true, encoding: .utf8)
        var arguments = [
            "-module-name", moduleName, "-Onone", "-diagnostic-style=llvm",
            "-module-cache-path", moduleCache,
            "-I", "\(simulator.directory)/Modules",
            "-Xcc", "-fmodule-map-file=\(simulator.directory)/\(simulator.instrumentationModuleMap)",
            // Kernel objects are C structs reached through pointers: a DPC or APC that runs inside
            // `KeReleaseSpinLock(&device.lock, ...)` and takes `&device.lock` again is ordinary driver
            // code, but Swift's dynamic exclusivity check would see two overlapping accesses and abort.
            // Static exclusivity errors are still reported.
            "-enforce-exclusivity=unchecked",
        ]
        if let executable {
            // ThreadSanitizer's instrumentation only, from the frontend: the driver would also link
            // TSan's runtime, and KernelSim implements the entry points instead (race detection
            // and preemption at shared-memory accesses). Line tables let a race report name both
            // accesses' chapter lines.
            arguments += ["-Xfrontend", "-sanitize=thread", debugInfo ? "-g" : "-gline-tables-only"]
            arguments += ["-L", simulator.directory, "-lKernelSim",
                          "-Xlinker", "-rpath", "-Xlinker", simulator.directory, "-o", executable]
        } else {
            // Not `-typecheck`: the move checker ("used after consume"), escaping-inout and static
            // exclusivity errors come from the mandatory SIL passes, which only run when SIL is made.
            arguments += ["-emit-sil", "-o", "/dev/null"]
        }
        arguments.append(sourcePath)
        let outcome = try ChildProcess(executable: swiftc, arguments: arguments, timeLimit: 600).run()
        let output = outcome.stderr + outcome.stdout
        return Outcome(succeeded: outcome.ending == .exited(0), diagnostics: Self.diagnostics(in: output),
                       output: output)
    }

    /// Parses `file:line:col: severity: message` lines (`-diagnostic-style=llvm`).
    static func diagnostics(in output: String) -> [Diagnostic] {
        output.split(separator: "\n").compactMap { line -> Diagnostic? in
            for severity in [Diagnostic.Severity.error, .warning, .note] {
                guard let marker = line.range(of: ": \(severity.rawValue): ") else { continue }
                let position = line[..<marker.lowerBound].split(separator: ":", omittingEmptySubsequences: false)
                guard position.count >= 3, let column = Int(position[position.count - 1]),
                      let number = Int(position[position.count - 2]) else { continue }
                let file = position.dropLast(2).joined(separator: ":")
                return Diagnostic(location: SourceLocation(file: file, line: number), column: column,
                                  severity: severity, message: String(line[marker.upperBound...]))
            }
            return nil
        }
    }
}
