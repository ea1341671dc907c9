import Config
import Foundation
import Testing

@testable import GmemCore
@testable import GmemSimulator

/// Mutated state files (seeded, reproducible): each is refused with a message or, when it still holds
/// together, serves get, diff and apply without trapping. A trap here kills the test run, which is the failure.
@Suite struct StateDecodingFuzzTests {
    struct SplitMix: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    static let manifestText = """
        apiVersion: gmemctl/v1
        kind: GuestMemory
        metadata: { name: g }
        spec:
          vm: { type: tdx }
          blocks:
            - { name: ram, size: 64MiB, backend: { type: in-place } }
          mappings:
            - { block: ram, offset: 0, size: 32MiB, gpa: 0 }
            - { block: ram, offset: 32MiB, size: 32MiB, gpa: 0x100000000 }
          layout:
            default: private
            shared: [ "0x100000-0x1FFFFF" ]
        """

    /// Replaces one number of the JSON text with a hostile one, flips a byte, or cuts the text.
    static func mutate(_ text: [UInt8], _ random: inout SplitMix) -> [UInt8] {
        var bytes = text
        // An earlier cut can leave nothing: nothing more to mutate (and no position to pick).
        guard !bytes.isEmpty else { return bytes }
        switch random.next() % 4 {
        case 0:
            let digits = bytes.indices.filter { (0x30...0x39).contains(bytes[$0]) }
            guard let at = digits.randomElement(using: &random) else { return bytes }
            var end = at
            while end < bytes.count, (0x30...0x39).contains(bytes[end]) { end += 1 }
            let values = [
                "0", "1", "4095", "9223372036854775807", "9223372036854775808", "18446744073709551615",
                "144115188075855872", "999999", "-1",
            ]
            bytes.replaceSubrange(at..<end, with: Array(values[Int(random.next() % UInt64(values.count))].utf8))
        case 1:
            let at = Int(random.next() % UInt64(bytes.count))
            bytes[at] = UInt8(truncatingIfNeeded: random.next())
        case 2:
            bytes = Array(bytes.prefix(Int(random.next() % UInt64(bytes.count))))
        default:
            let at = Int(random.next() % UInt64(bytes.count))
            let other = Int(random.next() % UInt64(bytes.count))
            bytes.swapAt(at, other)
        }
        return bytes
    }

    @Test func mutatedStateFilesAreRefusedOrServed() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "gmemctl-statefuzz-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("sim.json").path
        let profile = try #require(Profiles.named("gmem-attributes2"))
        let manifest = try #require(ManifestLoader.load(yaml: Self.manifestText, file: "g.yaml").manifest)
        do {
            let host = try SimulatedHost(profile: profile, stateFile: path)
            _ = try Provisioner(host: host).apply(manifest)
            try host.commit()
        }
        let original = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        var random = SplitMix(state: 14)
        var refused = 0, served = 0
        for _ in 0..<1500 {
            var bytes = original
            for _ in 0..<(1 + random.next() % 3) { bytes = Self.mutate(bytes, &random) }
            guard (try? SimulatedHost.decode(bytes, file: path)) != nil else { refused += 1; continue }
            try Data(bytes).write(to: URL(fileURLWithPath: path))
            guard let host = try? SimulatedHost(profile: profile, stateFile: path) else { refused += 1; continue }
            served += 1
            let provisioner = Provisioner(host: host, executor: Executor(maxRetries: 1, retryDelayMicroseconds: 1))
            _ = Observer.observe(host.guest(named: "g"), kernel: host.kernel)
            _ = try? provisioner.diff(manifest)
            _ = try? provisioner.apply(manifest)
        }
        #expect(refused > 0 && served > 0, "refused \(refused), served \(served)")
    }
}
