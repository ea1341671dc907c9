import Foundation
import ProcessSupport
import Testing

/// End to end through the built binary on the simulator: apply, diff, drift, convergence, fault injection.
/// Each test owns a fresh simulator state file, so tests are independent.
@Suite struct SimulatorWorkflowTests {
    /// A temporary directory for one test's state file and manifests.
    struct Workspace {
        /// Removed when the test's workspace goes.
        private let temporary: TemporaryDirectory
        var directory: URL { temporary.url }
        var state: String { directory.appendingPathComponent("sim.json").path }

        init() throws {
            temporary = try TemporaryDirectory(prefix: "gmemctl-sim")
        }

        func write(_ name: String, _ text: String) throws -> String {
            let url = directory.appendingPathComponent(name)
            try text.write(to: url, atomically: true, encoding: .utf8)
            return url.path
        }
    }

    static func inPlaceManifest(shared: [String]) -> String {
        """
        apiVersion: gmemctl/v1
        kind: GuestMemory
        metadata:
          name: cvm
        spec:
          vm:
            type: tdx
          blocks:
            - name: ram
              size: 64MiB
              backend:
                type: in-place
          mappings:
            - { block: ram, offset: 0, size: 64MiB, gpa: 0 }
          layout:
            default: private
            shared:
        \(shared.map { "      - \"\($0)\"" }.joined(separator: "\n"))
          listeners:
            - { name: vfio0 }
        """
    }

    /// `--no-agent`: these tests exercise the simulator in this process, whatever agent may run on the machine.
    private func run(
        _ workspace: Workspace, _ arguments: [String], host: String = "sim:gmem-attributes2"
    ) throws -> Gmemctl.Output {
        try Gmemctl.run(arguments + ["--host", host, "--state", workspace.state, "--no-agent"])
    }

    @Test func applyThenDiffIsClean() throws {
        let workspace = try Workspace()
        let manifest = try workspace.write("cvm.yaml", Self.inPlaceManifest(shared: ["0x100000-0x1FFFFF"]))
        let apply = try run(workspace, ["apply", manifest])
        #expect(apply.exitCode == 0, "\(apply.stdout)\(apply.stderr)")
        let diff = try run(workspace, ["diff", manifest])
        #expect(diff.exitCode == 0, "\(diff.stdout)\(diff.stderr)")
        #expect(diff.stdout.contains("No drift"))
        let plan = try run(workspace, ["plan", manifest])
        #expect(plan.exitCode == 0)
        #expect(plan.stdout.contains("No changes"))
    }

    @Test func changedLayoutShowsTransitionsAndConverges() throws {
        let workspace = try Workspace()
        let before = try workspace.write("cvm.yaml", Self.inPlaceManifest(shared: ["0x100000-0x1FFFFF"]))
        #expect(try run(workspace, ["apply", before]).exitCode == 0)

        // Move the shared window: 1-2 MiB goes back to private, 8-12 MiB becomes shared.
        let after = try workspace.write("cvm2.yaml", Self.inPlaceManifest(shared: ["0x800000-0xBFFFFF"]))
        let plan = try run(workspace, ["plan", after])
        #expect(plan.exitCode == 2, "\(plan.stdout)\(plan.stderr)")
        #expect(plan.stdout.contains("ram [0x100000-0x1fffff] shared -> private"))
        #expect(plan.stdout.contains("ram [0x800000-0xbfffff] private -> shared"))
        let diff = try run(workspace, ["diff", after, "--output", "json"])
        #expect(diff.exitCode == 2)
        let document = try #require(try JSONSerialization.jsonObject(with: Data(diff.stdout.utf8)) as? [String: Any])
        #expect(document["changes"] as? Bool == true)
        #expect(document["formatVersion"] as? String == "1.0")
        let names = (document["entries"] as? [[String: Any]] ?? []).compactMap { $0["name"] as? String }
        #expect(names == ["ram[0x100000-0x1fffff]", "ram[0x800000-0xbfffff]"])

        let apply = try run(workspace, ["apply", after])
        #expect(apply.exitCode == 0, "\(apply.stdout)\(apply.stderr)")
        #expect(try run(workspace, ["diff", after]).exitCode == 0)
        #expect(try run(workspace, ["plan", after]).exitCode == 0)
    }

    @Test func runtimeConversionDriftsAndApplyRestores() throws {
        let workspace = try Workspace()
        let manifest = try workspace.write("cvm.yaml", Self.inPlaceManifest(shared: ["0x100000-0x1FFFFF"]))
        #expect(try run(workspace, ["apply", manifest]).exitCode == 0)
        let convert = try run(workspace, ["convert", "cvm", "--gpa", "0x100000", "--size", "1MiB", "--to", "private"])
        #expect(convert.exitCode == 0, "\(convert.stdout)\(convert.stderr)")
        // The listener hears unmap before the conversion.
        let lines = convert.stdout.split(separator: "\n").map(String.init)
        let unmap = try #require(
            lines.firstIndex { $0.contains("notify unmap listener=vfio0 gpa=0x100000 size=0x100000") })
        let change = try #require(
            lines.firstIndex {
                $0.contains("KVM_SET_MEMORY_ATTRIBUTES2 gmem=ram offset=0x100000 size=0x100000 to=private")
            })
        #expect(unmap < change)
        let diff = try run(workspace, ["diff", manifest])
        #expect(diff.exitCode == 2)
        #expect(diff.stdout.contains("range ram[0x100000-0x1fffff]: is private, manifest says shared"))
        #expect(try run(workspace, ["apply", manifest]).exitCode == 0)
        #expect(try run(workspace, ["diff", manifest]).exitCode == 0)
    }

    @Test func faultInTheMiddleOfApplyLeavesDiffTruthful() throws {
        let workspace = try Workspace()
        let manifest = try workspace.write(
            "cvm.yaml", Self.inPlaceManifest(shared: ["0x100000-0x1FFFFF", "0x800000-0x9FFFFF"]))
        // The second conversion fails with ENOMEM: the first window is shared, the second is not.
        let apply = try run(workspace, ["apply", manifest, "--sim-fault", "KVM_SET_MEMORY_ATTRIBUTES2:2:12"])
        #expect(apply.exitCode == 1)
        #expect(apply.stdout.contains("ENOMEM"), "\(apply.stdout)")
        #expect(apply.stdout.contains("not run"))
        let diff = try run(workspace, ["diff", manifest])
        #expect(diff.exitCode == 2)
        let drift = diff.stdout.split(separator: "\n").filter { $0.contains("~ range") }
        #expect(drift.count == 1, "\(diff.stdout)")
        #expect(drift.first?.contains("ram[0x800000-0x9fffff]: is private, manifest says shared") == true)
        let get = try run(workspace, ["get", "cvm"])
        #expect(get.stdout.contains("last operation did not finish"))
        #expect(try run(workspace, ["apply", manifest]).exitCode == 0)
        #expect(try run(workspace, ["diff", manifest]).exitCode == 0)
        #expect(!(try run(workspace, ["get", "cvm"]).stdout.contains("did not finish")))
    }

    @Test func legacyBlockConvertsWithVMAttributesAndDiscards() throws {
        let workspace = try Workspace()
        let text = """
            apiVersion: gmemctl/v1
            kind: GuestMemory
            metadata: { name: legacy }
            spec:
              vm: { type: sw-protected }
              blocks:
                - name: ram
                  size: 16MiB
                  backend: { type: legacy, shared: { source: memfd } }
              mappings:
                - { block: ram, offset: 0, size: 16MiB, gpa: 0 }
              layout:
                default: private
                shared: ["0x0-0xFFFFF"]
            """
        let manifest = try workspace.write("legacy.yaml", text)
        let apply = try run(workspace, ["apply", manifest], host: "sim:linux-6.18")
        #expect(apply.exitCode == 0, "\(apply.stdout)\(apply.stderr)")
        #expect(apply.stdout.contains("KVM_SET_MEMORY_ATTRIBUTES gpa=0x0 size=0x1000000 attributes=PRIVATE"))
        #expect(
            apply.stdout.contains(
                "fallocate(PUNCH_HOLE|KEEP_SIZE) block=ram memory=guest_memfd offset=0x0 size=0x100000"))
        let convert = try run(
            workspace, ["convert", "legacy", "--gpa", "0", "--size", "1MiB", "--to", "private"], host: "sim:linux-6.18")
        #expect(convert.exitCode == 0, "\(convert.stdout)\(convert.stderr)")
        #expect(
            convert.stdout.contains("fallocate(PUNCH_HOLE|KEEP_SIZE) block=ram memory=shared offset=0x0 size=0x100000"))
        #expect(try run(workspace, ["diff", manifest], host: "sim:linux-6.18").exitCode == 2)
        #expect(try run(workspace, ["apply", manifest], host: "sim:linux-6.18").exitCode == 0)
        #expect(try run(workspace, ["diff", manifest], host: "sim:linux-6.18").exitCode == 0)
        let destroy = try run(workspace, ["destroy", "legacy"], host: "sim:linux-6.18")
        #expect(destroy.exitCode == 0)
        #expect(try run(workspace, ["get", "legacy"], host: "sim:linux-6.18").exitCode == 1)
    }

    @Test func privateManifestNeedsAnInPlaceKernel() throws {
        let failing = try Gmemctl.run(["validate", "examples/in-place-mixed.yaml", "--target", "linux-6.18"])
        #expect(failing.exitCode == 1)
        #expect(failing.stdout.contains("KVM_CAP_GMEM_CONVERSION"))
        #expect(failing.stdout.contains("[spec.blocks[0].backend.type]"))
        for profile in ["gmem-convert-poc", "gmem-attributes2"] {
            let ok = try Gmemctl.run(["validate", "examples/in-place-mixed.yaml", "--target", profile])
            #expect(ok.exitCode == 0, "\(profile): \(ok.stdout)")
            let workspace = try Workspace()
            let plan = try run(workspace, ["plan", "examples/in-place-mixed.yaml"], host: "sim:\(profile)")
            #expect(plan.exitCode == 2, "\(profile): \(plan.stdout)\(plan.stderr)")
        }
        let workspace = try Workspace()
        let refused = try run(workspace, ["plan", "examples/in-place-mixed.yaml"], host: "sim:linux-6.18")
        #expect(refused.exitCode == 1)
        #expect(refused.stdout.contains("cannot convert a guest_memfd in place"))
    }

    @Test func unknownProfileIsAUsageError() throws {
        let result = try Gmemctl.run(["plan", "examples/shared-in-place.yaml", "--host", "sim:linux-9.9", "--no-agent"])
        #expect(result.exitCode == 64)
        #expect(result.stderr.contains("unknown profile"))
    }
}
