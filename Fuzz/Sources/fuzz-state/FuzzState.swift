import Config
import Foundation
import GmemCore

// Foundation has a `Host` too; this one is meant.
import protocol GmemCore.Host

@testable import GmemSimulator

/// libFuzzer entry: any bytes are decoded as a simulator state file. Nothing may trap. A state the decoder
/// accepts is served as the CLI would serve it: every guest observed (`get`), planned, diffed and applied
/// against the example manifests of the same name, then destroyed.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzState(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    guard let saved = try? SimulatedHost.decode(bytes, file: "fuzz.json"),
        let profile = Profiles.named(saved.profile)
    else { return 0 }
    // The host reads its state from a file (and locks it): a scratch directory per accepted input.
    guard let directory = try? Scratch.make() else { return 0 }
    defer { try? FileManager.default.removeItem(at: directory) }
    let path = directory.appendingPathComponent("sim.json").path
    guard FileManager.default.createFile(atPath: path, contents: Data(bytes)),
        let host = try? SimulatedHost(profile: profile, stateFile: path)
    else { return 0 }
    let provisioner = Provisioner(host: host, executor: Executor(maxRetries: 1, retryDelayMicroseconds: 1))
    for name in host.guestNames() {
        _ = Observer.observe(host.guest(named: name), kernel: host.kernel)
        for manifest in Seeds.manifests where manifest.metadata.name == name {
            _ = try? provisioner.plan(manifest)
            _ = try? provisioner.diff(manifest)
            _ = try? provisioner.apply(manifest)
            _ = Observer.observe(host.guest(named: name), kernel: host.kernel)
        }
        _ = try? provisioner.destroy(guest: name)
    }
    return 0
}

enum Scratch {
    static func make() throws -> URL {
        let name = "gmemctl-fuzz-state-\(UUID().uuidString)"
        let url = FileManager.default.temporaryDirectory.appendingPathComponent(name)
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }
}

/// The manifests in `$FUZZ_STATE_MANIFESTS` (scripts/fuzz: examples/): what accepted states are diffed and
/// applied against, and what the seed states are made from.
enum Seeds {
    static let manifests: [Manifest] = {
        guard let directory = ProcessInfo.processInfo.environment["FUZZ_STATE_MANIFESTS"],
            let names = try? FileManager.default.contentsOfDirectory(atPath: directory)
        else { return [] }
        return names.filter { $0.hasSuffix(".yaml") }.sorted().compactMap { name in
            let result = ManifestLoader.load(file: "\(directory)/\(name)")
            return result.isValid ? result.manifest : nil
        }
    }()

    /// Profiles the seeds are made on: per-VM attributes, in-place conversion, and the released 6.18 ABI.
    static let profiles = ["gmem-attributes2", "linux-7.4", "linux-6.18"]

    /// Writes real state files into `directory`: every manifest applied alone on every profile that takes
    /// it, and all that fit applied together. Returns how many were written.
    static func write(into directory: String) -> Int {
        var written = 0
        for name in profiles {
            guard let profile = Profiles.named(name) else { continue }
            let together = "\(directory)/all-\(name).json"
            for (index, manifest) in manifests.enumerated() {
                let path = "\(directory)/\(index)-\(manifest.metadata.name)-\(name).json"
                if apply(manifest, profile: profile, stateFile: path) { written += 1 }
                _ = apply(manifest, profile: profile, stateFile: together)
            }
            if FileManager.default.fileExists(atPath: together) { written += 1 }
        }
        // The lock files beside the states are not seeds.
        let files = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        for name in files where !name.hasSuffix(".json") {
            try? FileManager.default.removeItem(atPath: "\(directory)/\(name)")
        }
        return written
    }

    private static func apply(_ manifest: Manifest, profile: Capabilities, stateFile: String) -> Bool {
        guard let host = try? SimulatedHost(profile: profile, stateFile: stateFile),
            let (_, report) = try? Provisioner(host: host).apply(manifest)
        else { return false }
        return report.succeeded
    }
}

// SwiftPM links an executable's entry point under this name; hand control to libFuzzer's driver, or with
// `FUZZ_STATE_SEEDS=DIR` write the seed corpus there and stop.
@_silgen_name("LLVMFuzzerRunDriver")
func runDriver(
    _ argc: UnsafeMutablePointer<Int32>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>, Int) -> Int32
) -> Int32

@_cdecl("fuzz_state_main")
func fuzzMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    if let directory = ProcessInfo.processInfo.environment["FUZZ_STATE_SEEDS"] {
        let written = Seeds.write(into: directory)
        print("fuzz-state: \(written) seed states from \(Seeds.manifests.count) manifests in \(directory)")
        return written > 0 ? 0 : 1
    }
    var count = argc
    var arguments = argv
    return runDriver(&count, &arguments) { fuzzState($0, $1) }
}
