import Foundation
import GmemAgent
import GmemCore
import GmemKVM
import GmemProtocol
import Testing

/// The whole life of a guest through a real agent: apply, diff, convert, drift, converge, destroy.
@Suite struct AgentWorkflowTests {
    struct Case: Sendable, CustomTestStringConvertible {
        var profile: String
        var manifest: String
        var guest: String
        var gpa: String
        var to: String
        var testDescription: String { "\(profile) \(manifest)" }
    }

    @Test(arguments: [
        // In-place conversion on the guest_memfd (2026 series).
        Case(
            profile: "gmem-attributes2", manifest: "examples/in-place-mixed.yaml", guest: "tdx-in-place",
            gpa: "0x10000000", to: "private"),
        // VM attributes with a legacy block (Linux 6.18).
        Case(
            profile: "linux-6.18", manifest: "examples/legacy-memfd.yaml", guest: "sw-protected-legacy",
            gpa: "0x200000", to: "shared"),
    ])
    func lifecycleOnSimulator(_ test: Case) throws {
        let world = try AgentHarness()
        let host = ["--host", "sim:\(test.profile)"]
        try world.startAgent(host)

        let applied = try world.run(["apply", test.manifest] + host)
        #expect(applied.exitCode == 0, "\(applied.all)")
        #expect(applied.stdout.contains("via agent \(world.socket)"), "apply went through the agent: \(applied.stdout)")
        #expect(try world.run(["diff", test.manifest] + host).exitCode == 0)

        let converted = try world.run(
            ["convert", test.guest, "--gpa", test.gpa, "--size", "2MiB", "--to", test.to] + host)
        #expect(converted.exitCode == 0, "\(converted.all)")

        let drift = try world.run(["diff", test.manifest] + host)
        #expect(drift.exitCode == 2, "\(drift.all)")
        #expect(drift.stdout.contains("is \(test.to)"), "\(drift.stdout)")
        #expect(drift.stdout.contains("gpa \(test.gpa)-"), "the drift names the range: \(drift.stdout)")

        let converged = try world.run(["apply", test.manifest] + host)
        #expect(converged.exitCode == 0, "\(converged.all)")
        #expect(try world.run(["diff", test.manifest] + host).exitCode == 0)

        let destroyed = try world.run(["destroy", test.guest] + host)
        #expect(destroyed.exitCode == 0, "\(destroyed.all)")
        let listed = try world.run(["get", "--output", "json"] + host)
        #expect(listed.exitCode == 0)
        let document = try JSONSerialization.jsonObject(with: Data(listed.stdout.utf8)) as? [String: Any]
        #expect((document?["guests"] as? [Any])?.isEmpty == true, "get shows nothing after destroy: \(listed.stdout)")
        #expect(try world.run(["get", test.guest] + host).exitCode == 1)

        let stopped = try world.stopAgent()
        #expect(stopped.exitCode == 0, "\(stopped.all)")
        #expect(AgentProbe.state(of: world.socket) == .absent, "the socket is removed")
    }

    /// Whether /dev/kvm opens and its kernel has guest_memfd (KVM_CAP_GUEST_MEMFD at system scope).
    static let realKernelWithGuestMemfd: Bool = {
        guard KVMKernel.canOpen().available, let kernel = try? KVMKernel() else { return false }
        return (try? kernel.checkExtension(KVMConstants.capGuestMemfd, vm: nil)) == 1
    }()

    @Test(.enabled(if: realKernelWithGuestMemfd, "needs /dev/kvm with guest_memfd (KVM_CAP_GUEST_MEMFD)"))
    func realKernelThroughAgent() throws {
        let world = try AgentHarness()
        let host = ["--host", "kvm"]
        // No agent runs: apply on kvm starts one and says so.
        let applied = try world.run(["apply", "examples/shared-in-place.yaml"] + host)
        #expect(applied.exitCode == 0, "\(applied.all)")
        #expect(applied.stderr.contains("started an agent"), "\(applied.stderr)")
        #expect(try world.run(["diff", "examples/shared-in-place.yaml"] + host).exitCode == 0)

        let got = try world.run(["get", "shared-in-place", "--output", "json"] + host)
        #expect(got.exitCode == 0, "\(got.all)")
        let document = try JSONSerialization.jsonObject(with: Data(got.stdout.utf8)) as? [String: Any]
        let guest = (document?["guests"] as? [[String: Any]])?.first
        let live = guest?["live"] as? [String: Any]
        let block = (live?["blocks"] as? [[String: Any]])?.first
        #expect((live?["vmFD"] as? Int ?? -1) >= 0, "a real VM fd: \(got.stdout)")
        #expect((block?["guestMemfd"] as? Int ?? -1) >= 0, "a real guest_memfd: \(got.stdout)")
        #expect(block?["size"] as? Int == 64 << 20)
        #expect(block?["residentBytes"] != nil, "resident bytes observed: \(got.stdout)")

        // The real kernel's default VMs are shared-only: the conversion is refused, naming what is missing.
        let convert = try world.run(
            ["convert", "shared-in-place", "--gpa", "0x0", "--size", "1MiB", "--to", "private"] + host)
        #expect(convert.exitCode == 1, "\(convert.all)")
        #expect(convert.stderr.contains("cannot convert"), "\(convert.all)")
        #expect(convert.stderr.contains("shared-only"), "names what the kernel lacks: \(convert.all)")

        #expect(try world.run(["destroy", "shared-in-place"] + host).exitCode == 0)
        #expect(try world.run(["agent", "stop"]).exitCode == 0)
    }
}
