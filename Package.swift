// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "IRQLWorkbook",
    products: [
        // The one shared library generated chapter programs link against: the simulator and the
        // block runtime together, so the program and the runtime share one machine (two libraries
        // would each carry their own copy of KernelSim's state).
        .library(name: "KernelSim", type: .dynamic,
                 targets: ["KernelSim", "CKernelSimContext", "KernelSimInstrumentation", "WorkbookRuntime"]),
        .library(name: "Workbook", targets: ["Workbook"]),
        .executable(name: "workbook", targets: ["WorkbookCLI"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/swiftlang/swift-syntax", from: "603.0.1"),
    ],
    targets: [
        .systemLibrary(
            name: "CCmark",
            pkgConfig: "libcmark",
            providers: [.apt(["libcmark-dev"])]
        ),
        // Always optimised, without dynamic exclusivity checks: exploring schedules runs the
        // scheduler hundreds of thousands of times, and only the running simulated thread touches its state.
        .target(
            name: "KernelSim",
            dependencies: ["CKernelSimContext", "KernelSimInstrumentation"],
            swiftSettings: [.unsafeFlags(["-O", "-enforce-exclusivity=unchecked"])]
        ),
        // Switching between simulated threads' stacks, in assembly.
        .target(name: "CKernelSimContext"),
        // The `__tsan_*` entry points that instrumented chapter programs call (race detection), and
        // the Interlocked routines.
        .target(name: "KernelSimInstrumentation"),
        .target(name: "WorkbookRuntime", dependencies: ["KernelSim"]),
        .target(
            name: "Workbook",
            dependencies: [
                "CCmark",
                "KernelSim",
                .product(name: "SwiftParser", package: "swift-syntax"),
                .product(name: "SwiftSyntax", package: "swift-syntax"),
            ]
        ),
        .executableTarget(
            name: "WorkbookCLI",
            dependencies: [
                "Workbook",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        // Scheduling throughput figures: `make bench-sim` (release).
        .executableTarget(name: "KernelSimBenchmark", dependencies: ["KernelSim"],
                          swiftSettings: [.unsafeFlags(["-Xfrontend", "-sanitize=thread", "-enforce-exclusivity=unchecked"])]),
        .testTarget(name: "KernelSimTests", dependencies: ["KernelSim"]),
        // Compiled as chapter programs are: with ThreadSanitizer's instrumentation (frontend only:
        // KernelSim implements the `__tsan_*` entry points), so the tests' own accesses reach the race
        // detector, and without dynamic exclusivity checks.
        .testTarget(name: "RaceDetectionTests", dependencies: ["KernelSim"],
                    swiftSettings: [.unsafeFlags(["-Xfrontend", "-sanitize=thread", "-enforce-exclusivity=unchecked"])]),
        .testTarget(name: "WorkbookTests", dependencies: ["Workbook"]),
    ]
)
