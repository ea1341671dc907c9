import Config
import Foundation
import Testing

@testable import GmemCore
@testable import GmemSimulator

/// The invariant behind the fuzz targets: whatever `validate` accepts, plan, apply (on the simulator), diff
/// and get handle without trapping, on every profile. Run over `examples/`, the regression inputs in
/// `Fuzz/regressions/`, and a fuzzer's corpus when `GMEMCTL_FUZZ_CORPUS` names its directory.
@Suite struct CorpusInvariantTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    static func files(in directory: URL) -> [URL] {
        (try? FileManager.default.contentsOfDirectory(at: directory, includingPropertiesForKeys: nil))?
            .filter { !$0.hasDirectoryPath }.sorted { $0.path < $1.path } ?? []
    }

    static var corpus: [URL] {
        var files =
            files(in: root.appendingPathComponent("examples"))
            + files(in: root.appendingPathComponent("examples/invalid"))
            + files(in: root.appendingPathComponent("Fuzz/regressions"))
        if let extra = ProcessInfo.processInfo.environment["GMEMCTL_FUZZ_CORPUS"] {
            files += Self.files(in: URL(fileURLWithPath: extra))
        }
        return files
    }

    @Test func everyValidManifestPlansAppliesDiffsAndGetsOnEveryProfile() throws {
        var valid = 0
        for file in Self.corpus {
            guard let data = FileManager.default.contents(atPath: file.path) else { continue }
            let result = ManifestLoader.load(bytes: [UInt8](data), file: file.lastPathComponent)
            guard result.isValid, let manifest = result.manifest else { continue }
            valid += 1
            for profile in Profiles.all {
                let host = SimulatedHost(profile: profile)
                let provisioner = Provisioner(host: host, executor: Executor(maxRetries: 1, retryDelayMicroseconds: 1))
                // Each step may refuse (a profile lacking a feature); none may trap.
                _ = try? provisioner.plan(manifest)
                _ = try? provisioner.apply(manifest)
                _ = try? provisioner.diff(manifest)
                _ = Observer.observe(host.guest(named: manifest.metadata.name), kernel: host.kernel)
                _ = try? provisioner.destroy(guest: manifest.metadata.name)
            }
        }
        #expect(valid >= 8, "only \(valid) valid manifests in the corpus")
    }

    @Test func rangesOfTwoToTheSixtyThreeAreRefusedByValidate() throws {
        for name in ["two-to-the-63.yaml", "two-below-63-merging.yaml"] {
            let result = ManifestLoader.load(file: Self.root.appendingPathComponent("Fuzz/regressions/\(name)").path)
            #expect(!result.isValid, "\(name)")
            #expect(result.diagnostics.contains { $0.summary.contains("2^57") }, "\(name): \(result.diagnostics)")
        }
    }

    @Test func mergedRunAtTheLimitPlansWithoutTrapping() throws {
        let result = ManifestLoader.load(
            file: Self.root.appendingPathComponent("Fuzz/regressions/merged-run-at-limit.yaml").path)
        let manifest = try #require(result.manifest)
        #expect(result.isValid, "\(result.diagnostics)")
        var planned = 0
        // The run ends at 2^57, past every profile's guest-physical limit; widen it so the planner, not the
        // limit check, is what the manifest exercises.
        for var profile in Profiles.all {
            profile.physicalAddressBits = 58
            // Profiles without in-place conversion on sw-protected VMs refuse the manifest; that is fine.
            guard let desired = try? DesiredState(manifest: manifest, capabilities: profile) else { continue }
            let plan = try Planner.plan(
                desired: desired, observed: LiveState(name: desired.name), capabilities: profile)
            #expect(!plan.operations.isEmpty)
            planned += 1
        }
        #expect(planned > 0, "no profile builds the manifest")
    }
}
