import Config
import ProcessSupport
import Testing

@testable import GmemCore
@testable import GmemSimulator

/// The shape of the work for huge guests: the kernel calls of an apply and of the observation that `get`
/// and `apply` report do not grow with the guest's size (times are measured by `gmemctl-bench scale`).
@Suite("Scale: host calls do not grow with guest size")
struct ScaleShapeTests {
    private static func inPlaceShared(size: String) -> String {
        manifestYAML(
            name: "big", vm: "default", blocks: [engBlock(size: size, backend: "{ type: in-place }")],
            mappings: ["{ block: ram, offset: 0, size: \(size), gpa: 0x100000000 }"], defaultState: "shared")
    }

    /// Applies the manifest on a fresh simulator of this machine's kernel, then observes it as `get` does;
    /// returns the calls of each step.
    private static func applyAndObserve(
        size: String
    ) throws -> (
        apply: [SimulatedCall], observe: [SimulatedCall],
        observation: GuestObservation
    ) {
        let host = SimulatedHost(profile: Profiles.linux618PVM)
        let provisioner = Provisioner(host: host, executor: Executor(maxRetries: 5, retryDelayMicroseconds: 1))
        let (_, report) = try provisioner.apply(try engManifest(inPlaceShared(size: size)))
        #expect(report.failure == nil, "apply failed: \(String(describing: report.failure))")
        let applyCalls = host.simulator.callLog.map(\.call)
        host.simulator.clearCallLog()
        let observation = Observer.observe(host.guest(named: "big"), kernel: host.kernel)
        return (applyCalls, host.simulator.callLog.map(\.call), observation)
    }

    @Test("a 1 TiB in-place shared apply issues exactly the calls of a 1 GiB one: VM, guest_memfd, mmap, memslot")
    func applyCallsDoNotGrow() throws {
        let small = try Self.applyAndObserve(size: "1GiB")
        let huge = try Self.applyAndObserve(size: "1TiB")
        #expect(huge.apply == small.apply)
        #expect(
            huge.apply.filter { $0 != .checkExtension } == [.createVM, .createGuestMemfd, .mmap, .setUserMemoryRegion2])
        #expect(!huge.apply.contains(.residentPages), "apply reads no residency page by page")
    }

    @Test("observing a 1 TiB block takes one residency reading, whatever its size")
    func observationIsOneReadingPerBlock() throws {
        let huge = try Self.applyAndObserve(size: "1TiB")
        #expect(huge.observe == [.residentPages])
        #expect(huge.observation.blocks.map(\.residentBytes) == [0])
        #expect(huge.observation.blocks.map(\.residentSource) == [.mincore])
    }
}
