// swift-tools-version:6.1
import PackageDescription

// Platform: gmemctl runs on Linux x86-64 (KVM with guest_memfd). CKVM and GmemKVM (the real /dev/kvm, the
// vCPU guest runner) are Linux x86-64 only. Config, GmemCore and GmemSimulator use only Foundation and the
// C library behind `#if canImport(Glibc)` guards and are meant to build wherever Swift does; only Linux
// x86-64 is built and tested. `platforms` below sets the minimum macOS for those portable modules; it does
// not mean the CLI or the agent run there.
//
// Modules (dependencies point one way; docs/architecture.md draws them):
//   Config <- GmemCore <- GmemSimulator
//                      <- GmemKVM (+ CKVM)
//                      <- GmemProtocol <- GmemAgent (+ NIO, Logging)
//   gmemctl (CLI) -> all of them
// Sources stay in today's folders under Sources/Engine/<Part>; each target selects its parts.
let package = Package(
    name: "gmemctl",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "gmemctl", targets: ["gmemctl"]),
        // The manifest: model, YAML loading with source positions, validation.
        .library(name: "GmemManifest", targets: ["Config"]),
        // The pure core: layout, capabilities and profiles, planner, executor, diff, the kernel protocol.
        .library(name: "GmemCore", targets: ["GmemCore"]),
        // The kernel simulator (every ABI generation), to test against without /dev/kvm.
        .library(name: "GmemSimulator", targets: ["GmemSimulator"]),
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
        // Linux x86-64 only.
        .target(name: "CKVM"),
        // The pure core: data in, data out, and every kernel call through `KernelInterface`. No NIO, no
        // logging backend, no processes or sockets, no C module.
        .target(
            name: "GmemCore",
            dependencies: ["Config"],
            path: "Sources/Engine",
            sources: [
                "Layout", "State", "Capabilities", "Plan", "Execute", "Verify", "Diff", "Provisioner.swift",
                "Hosts/Host.swift", "Kernel/KernelInterface.swift", "Kernel/KVMArgumentFormat.swift",
                "Kernel/GuestRunError.swift", "Kernel/Errno.swift",
            ]
        ),
        // The real kernel through /dev/kvm: KVMKernel, the vCPU guest runner (the guest half of
        // verification), KVMHost. Linux x86-64 only.
        .target(
            name: "GmemKVM",
            dependencies: ["GmemCore", "Config", "CKVM"],
            path: "Sources/Engine",
            exclude: [
                "Kernel/KernelInterface.swift", "Kernel/KVMArgumentFormat.swift", "Kernel/GuestRunError.swift",
                "Kernel/Errno.swift",
            ],
            sources: ["Kernel", "Hosts/KVMHost.swift"]
        ),
        // The simulated kernel and its host (state file).
        .target(
            name: "GmemSimulator",
            dependencies: ["GmemCore", "Config"],
            path: "Sources/Engine",
            sources: ["Simulator", "Hosts/SimulatedHost.swift", "Hosts/StateFileStore.swift"]
        ),
        // The agent's wire protocol: request and result types, the blocking client, the socket path.
        // Shared by the CLI and the agent; no NIO.
        .target(
            name: "GmemProtocol",
            dependencies: ["GmemCore", "Config"],
            path: "Sources/Engine/Agent",
            sources: ["AgentProtocol.swift", "AgentClient.swift", "AgentPaths.swift"]
        ),
        // The agent daemon: NIO server and line framing, the service, listener links, peer credentials.
        .target(
            name: "GmemAgent",
            dependencies: [
                "GmemCore", "GmemProtocol", "Config",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            path: "Sources/Engine/Agent",
            exclude: ["AgentProtocol.swift", "AgentClient.swift", "AgentPaths.swift"]
        ),
        // Conformance cases (the kernel's selftests, uapi rules, in-place series rules) and their reports.
        .target(
            name: "GmemConformance",
            dependencies: ["GmemCore", "GmemKVM", "GmemSimulator", "Config"],
            path: "Sources/Engine/Conformance"
        ),
        // The CLI: argument parsing, output formatting, exit codes, its memory of agents. No logic of its own.
        .executableTarget(
            name: "gmemctl",
            dependencies: [
                "Config", "GmemCore", "GmemKVM", "GmemSimulator", "GmemProtocol", "GmemAgent", "GmemConformance",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            plugins: ["BuildRevision"]
        ),
        // Records the git revision at build time for `gmemctl --version` (a generated BuildRevision.swift).
        .plugin(name: "BuildRevision", capability: .buildTool()),
        // Benchmarks: programs that print figures (run with `swift run -c release gmemctl-bench`).
        .executableTarget(
            name: "gmemctl-bench",
            dependencies: ["Config", "GmemCore", "GmemKVM", "GmemSimulator", "GmemProtocol"]
        ),
        .testTarget(name: "ConfigTests", dependencies: ["Config"]),
        .testTarget(name: "EngineTests", dependencies: ["GmemCore", "GmemSimulator", "Config", "ProcessSupport"]),
        .testTarget(
            name: "KVMTests",
            dependencies: ["GmemCore", "GmemKVM", "GmemSimulator", "GmemConformance", "Config", "CKVM"]
        ),
        // Shared by the test targets: running the built binary, waiting on conditions, temporary directories,
        // manifests.
        .target(name: "ProcessSupport", path: "Tests/ProcessSupport"),
        .testTarget(name: "CLITests", dependencies: ["Config", "ProcessSupport", "gmemctl"]),
        // The agent as a real process on a Unix socket: protocol, listeners, concurrency, robustness.
        .testTarget(
            name: "AgentTests",
            dependencies: ["GmemCore", "GmemKVM", "GmemProtocol", "GmemAgent", "Config", "ProcessSupport"]
        ),
    ]
)
