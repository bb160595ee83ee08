// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "IRQLWorkbook",
    products: [
        // Generated chapter programs link against these two dynamic libraries.
        .library(name: "KernelSim", type: .dynamic, targets: ["KernelSim"]),
        .library(name: "WorkbookRuntime", type: .dynamic, targets: ["WorkbookRuntime"]),
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
        .target(name: "KernelSim"),
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
        .testTarget(name: "KernelSimTests", dependencies: ["KernelSim"]),
        .testTarget(name: "WorkbookTests", dependencies: ["Workbook"]),
    ]
)
