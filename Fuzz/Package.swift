// swift-tools-version:6.1
// Fuzz targets, a package of their own so that the main package's `swift build` is unaffected. Build and run
// with `scripts/fuzz` (libFuzzer with AddressSanitizer: `-sanitize=fuzzer,address`). Config and CYAML are
// the main package's sources, linked here.
import PackageDescription

let fuzz: [SwiftSetting] = [.unsafeFlags(["-parse-as-library", "-sanitize=fuzzer,address"])]
let fuzzLink: [LinkerSetting] = [.unsafeFlags(["-sanitize=fuzzer,address"])]

let package = Package(
    name: "gmemctl-fuzz",
    targets: [
        .systemLibrary(name: "CYAML", pkgConfig: "yaml-0.1"),
        .target(name: "Config", dependencies: ["CYAML"],
                swiftSettings: [.unsafeFlags(["-sanitize=fuzzer,address"])]),
        // The manifest loader plus validator over arbitrary bytes.
        .executableTarget(name: "fuzz-manifest", dependencies: ["Config"], swiftSettings: fuzz, linkerSettings: fuzzLink),
    ]
)
