import Config
import ProcessSupport
import Testing

@testable import GmemCore
@testable import GmemSimulator

/// `validate --target P` and `apply --host sim:P` agree at every kernel limit: manifests generated at each
/// side of the guest-physical limit, the per-memslot page limit (split by the planner) and the memslot
/// count are accepted by `CapabilityCheck` exactly when the simulator of P builds them. The simulator run
/// plans with the limits lifted, so the kernel rules, not the offline check, decide whether it builds.
@Suite("CapabilityCheck: edge manifests agree with the simulator")
struct CapabilityEdgeManifestTests {
    /// A host with few memslots (KVM_CAP_NR_MEMSLOTS was 509 before 5.x), so the count edge stays small.
    static func withMemslots(_ profile: Capabilities, _ count: Int) -> Capabilities {
        var copy = profile
        copy.maxMemslots = count
        copy.systemExtensions[KVMConstants.capNrMemslots] = Int64(count)
        return copy
    }

    struct Edge: CustomStringConvertible {
        var description: String
        var yaml: String
        var expected: Bool
    }

    static func vmType(of profile: Capabilities) -> VMTypeCapabilities? {
        profile.vmTypes.first { $0.guestMemfd && $0.vmType.hasPrivateMemory } ?? profile.vmTypes.first { $0.guestMemfd }
    }

    static func manifest(_ vm: VMTypeCapabilities, blockSize: UInt64, mappings: [(size: UInt64, gpa: UInt64)]) -> String
    {
        var offset: UInt64 = 0
        let lines = mappings.map { mapping -> String in
            defer { offset += mapping.size }
            return engMapping(offset: offset, size: mapping.size, gpa: mapping.gpa)
        }
        return manifestYAML(
            vm: vm.vmType.rawValue, blocks: [engBlock(size: engHex(blockSize), backend: engAuto)], mappings: lines,
            defaultState: vm.vmType.hasPrivateMemory ? "private" : "shared")
    }

    static func edges(_ profile: Capabilities, _ vm: VMTypeCapabilities) -> [Edge] {
        let page = profile.pageSize
        let limit = profile.gpaLimit
        let maxSlot = profile.maxMemslotSize
        let slots = profile.maxMemslots
        func one(_ name: String, size: UInt64, gpa: UInt64, _ expected: Bool) -> Edge {
            Edge(description: name, yaml: manifest(vm, blockSize: size, mappings: [(size, gpa)]), expected: expected)
        }
        func many(_ name: String, count: Int, big: UInt64?, _ expected: Bool) -> Edge {
            var mappings = (0..<count).map { (size: page, gpa: UInt64($0) * 2 * page) }
            if let big { mappings.append((size: big, gpa: 1 << 40)) }
            return Edge(
                description: name,
                yaml: manifest(vm, blockSize: mappings.reduce(0) { $0 + $1.size }, mappings: mappings),
                expected: expected)
        }
        return [
            one("1 GiB ending at the GPA limit", size: 1 << 30, gpa: limit - (1 << 30), true),
            one("1 GiB ending one page past the GPA limit", size: 1 << 30, gpa: limit - (1 << 30) + page, false),
            one("1 GiB at 2^52", size: 1 << 30, gpa: 1 << 52, false),
            one("one memslot's worth (2^31-1 pages)", size: maxSlot, gpa: 0, true),
            one("one page more than a memslot holds (split in two)", size: maxSlot + page, gpa: 0, true),
            one("9 TiB", size: 9 << 40, gpa: 0, true),
            many("as many mappings as memslots", count: slots, big: nil, true),
            many("one mapping more than memslots", count: slots + 1, big: nil, false),
            many("a split mapping filling the last memslot", count: slots - 2, big: 9 << 40, true),
            many("a split mapping needing one memslot too many", count: slots - 1, big: 9 << 40, false),
        ]
    }

    /// Builds the manifest on the simulator of `profile`, planning as if the host had no limits.
    static func builds(_ manifest: Manifest, on profile: Capabilities) throws -> Bool {
        var unlimited = profile
        unlimited.physicalAddressBits = 64
        unlimited.maxMemslots = Int.max
        let desired = try DesiredState(manifest: manifest, capabilities: unlimited)
        let plan = try Planner.plan(desired: desired, observed: LiveState(name: desired.name), capabilities: unlimited)
        let runtime = GuestRuntime(
            kernel: SimulatedKernel(capabilities: profile), capabilities: profile,
            state: LiveState(name: desired.name))
        return Executor(maxRetries: 0, retryDelayMicroseconds: 1).apply(plan, on: runtime).succeeded
    }

    @Test("validate --target P accepts exactly the edge manifests that sim:P builds", arguments: Profiles.all)
    func agreement(profile base: Capabilities) throws {
        let profile = Self.withMemslots(base, 64)
        let vm = try #require(Self.vmType(of: profile))
        for edge in Self.edges(profile, vm) {
            let manifest = try engManifest(edge.yaml)
            let accepted = CapabilityCheck.check(manifest, against: profile).allSatisfy { $0.severity != .error }
            let built = try Self.builds(manifest, on: profile)
            #expect(accepted == built, "\(profile.name): \(edge): validate \(accepted), simulator \(built)")
            #expect(accepted == edge.expected, "\(profile.name): \(edge)")
        }
    }
}
