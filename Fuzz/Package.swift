// swift-tools-version:6.1
// Fuzz targets, a package of their own so that the main package's `swift build` is unaffected. Build and run
// with `scripts/fuzz` (libFuzzer with AddressSanitizer: `-sanitize=fuzzer,address`). Config, CYAML, GmemCore
// and GmemSimulator are the main package's sources, linked here (symbolic links under Sources/).
import PackageDescription

let fuzz: [SwiftSetting] = [.unsafeFlags(["-parse-as-library", "-sanitize=fuzzer,address"])]
let fuzzLink: [LinkerSetting] = [.unsafeFlags(["-sanitize=fuzzer,address"])]
let instrumented: [SwiftSetting] = [.unsafeFlags(["-sanitize=fuzzer,address"])]

let package = Package(
    name: "gmemctl-fuzz",
    targets: [
        .systemLibrary(name: "CYAML", pkgConfig: "yaml-0.1"),
        .target(name: "Config", dependencies: ["CYAML"], swiftSettings: instrumented),
        // Sources/GmemCore and Sources/GmemSimulator link to the parts of Sources/Engine that the main package's
        // targets of the same names select.
        .target(name: "GmemCore", dependencies: ["Config"], swiftSettings: instrumented),
        // Testable, so that the fuzzer reaches the state decoder itself without a file per input.
        .target(
            name: "GmemSimulator", dependencies: ["GmemCore", "Config"],
            swiftSettings: [.unsafeFlags(["-sanitize=fuzzer,address", "-enable-testing"])]
        ),
        // The manifest loader plus validator over arbitrary bytes.
        .executableTarget(
            name: "fuzz-manifest", dependencies: ["Config"], swiftSettings: fuzz, linkerSettings: fuzzLink),
        // The state-file decoder over arbitrary bytes; what it accepts is served (get, plan, diff, apply).
        .executableTarget(
            name: "fuzz-state", dependencies: ["Config", "GmemCore", "GmemSimulator"], swiftSettings: fuzz,
            linkerSettings: fuzzLink
        ),
    ]
)
