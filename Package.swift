// swift-tools-version:6.1
import PackageDescription

let package = Package(
    name: "gmemctl",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "gmemctl", targets: ["gmemctl"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
    ],
    targets: [
        // The system libyaml (Debian: libyaml-dev), wrapped once in Config/YAML.
        .systemLibrary(
            name: "CYAML",
            pkgConfig: "yaml-0.1",
            providers: [.apt(["libyaml-dev"])]
        ),
        // Manifest model, YAML loading with source positions, validation. Knows nothing of KVM.
        .target(name: "Config", dependencies: ["CYAML"]),
        // C only: KVM uapi definitions for every ABI generation and thin syscall wrappers. No policy.
        .target(name: "CKVM"),
        // Layout algebra, capabilities and profiles, planner, executor, hosts (kvm, simulator), diff.
        .target(
            name: "Engine",
            dependencies: [
                "Config", "CKVM",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            exclude: ["Conformance"]
        ),
        // Conformance cases (the kernel's selftests, uapi rules, in-place series rules) and their reports.
        .target(name: "GmemConformance", dependencies: ["Engine", "Config"], path: "Sources/Engine/Conformance"),
        // The CLI: argument parsing, output formatting, exit codes. No logic of its own.
        .executableTarget(
            name: "gmemctl",
            dependencies: [
                "Config", "Engine", "GmemConformance",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // Benchmarks: programs that print figures (run with `swift run -c release gmemctl-bench`).
        .executableTarget(name: "gmemctl-bench", dependencies: ["Engine", "Config"]),
        .testTarget(name: "ConfigTests", dependencies: ["Config"]),
        .testTarget(name: "EngineTests", dependencies: ["Engine", "Config"]),
        .testTarget(name: "KVMTests", dependencies: ["Engine", "Config", "CKVM", "GmemConformance"]),
        // Shared by the tests that run the built binary: a process runner.
        .target(name: "ProcessSupport", path: "Tests/ProcessSupport"),
        .testTarget(name: "CLITests", dependencies: ["Config", "ProcessSupport"]),
        // The agent as a real process on a Unix socket: protocol, listeners, concurrency, robustness.
        .testTarget(name: "AgentTests", dependencies: ["Engine", "Config", "ProcessSupport"]),
    ]
)
