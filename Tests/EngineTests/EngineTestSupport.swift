import Config
import ProcessSupport
import Testing

@testable import GmemCore
@testable import GmemSimulator

// Helpers for the planner, executor, diff, capability and provisioner tests. Manifests are fed as YAML
// through `ManifestLoader`, exactly as users feed them.

let engKiB: UInt64 = 1 << 10
let engMiB: UInt64 = 1 << 20
let engGiB: UInt64 = 1 << 30

struct EngineTestError: Error, CustomStringConvertible {
    var description: String
}

/// Loads a manifest from YAML; a manifest the loader rejects fails the test with its diagnostics.
func engManifest(_ yaml: String, sourceLocation: SourceLocation = #_sourceLocation) throws -> Manifest {
    let result = ManifestLoader.load(yaml: yaml, file: "test.yaml")
    guard let manifest = result.manifest, result.isValid else {
        let text = result.diagnostics.map(\.description).joined(separator: "\n")
        Issue.record("manifest rejected:\n\(text)", sourceLocation: sourceLocation)
        throw EngineTestError(description: "manifest rejected: \(text)")
    }
    return manifest
}

func engDesired(
    _ yaml: String, on profile: Capabilities, sourceLocation: SourceLocation = #_sourceLocation
) throws -> DesiredState {
    let manifest = try engManifest(yaml, sourceLocation: sourceLocation)
    return try DesiredState(manifest: manifest, capabilities: profile)
}

/// The plan for a guest that does not exist yet.
func engFreshPlan(
    _ yaml: String, on profile: Capabilities, sourceLocation: SourceLocation = #_sourceLocation
) throws -> (DesiredState, Plan) {
    let desired = try engDesired(yaml, on: profile, sourceLocation: sourceLocation)
    let plan = try Planner.plan(desired: desired, observed: LiveState(name: desired.name), capabilities: profile)
    return (desired, plan)
}

/// A block line for `manifestYAML`.
func engBlock(_ name: String = "ram", size: String = "64MiB", backend: String) -> String {
    "{ name: \(name), size: \(size), backend: \(backend) }"
}

/// A mapping line for `engYAML`.
func engMapping(_ block: String = "ram", offset: UInt64 = 0, size: UInt64, gpa: UInt64) -> String {
    "{ block: \(block), offset: \(engHex(offset)), size: \(engHex(size)), gpa: \(engHex(gpa)) }"
}

/// A range line for `engYAML`.
func engRange(gpa: UInt64, size: UInt64) -> String { "{ gpa: \(engHex(gpa)), size: \(engHex(size)) }" }

func engHex(_ value: UInt64) -> String { "0x" + String(value, radix: 16) }

let engLegacyMemfd = "{ type: legacy, shared: { source: memfd } }"
let engLegacyAnonymous = "{ type: legacy, shared: { source: anonymous } }"
let engLegacyHugetlb = "{ type: legacy, shared: { source: hugetlb, pageSize: 2MiB } }"
let engInPlace = "{ type: in-place }"
let engAuto = "{ type: auto, shared: { source: memfd } }"

/// The operations of a plan that touch a given listener.
func engNotifications(_ operations: [PlanOperation], listener: String? = nil) -> [PlanOperation] {
    operations.filter {
        if case .notify(let name, _, _, _) = $0 { return listener == nil || name == listener }
        return false
    }
}

/// A simulated host with one guest applied from `yaml` (the apply must succeed).
struct EngApplied {
    let host: SimulatedHost
    let provisioner: Provisioner
    let manifest: Manifest
    let plan: Plan
    let report: ApplyReport

    init(_ yaml: String, on profile: Capabilities, sourceLocation: SourceLocation = #_sourceLocation) throws {
        host = SimulatedHost(profile: profile)
        provisioner = Provisioner(host: host, executor: Executor(maxRetries: 5, retryDelayMicroseconds: 1))
        manifest = try engManifest(yaml, sourceLocation: sourceLocation)
        (plan, report) = try provisioner.apply(manifest)
        #expect(
            report.failure == nil, "apply failed: \(String(describing: report.failure))", sourceLocation: sourceLocation
        )
    }

    var state: LiveState { host.guest(named: manifest.metadata.name) }
}

/// Private GPA ranges of the guest's VM in the simulator (per-VM attributes).
func engPrivateGPAs(_ host: SimulatedHost, _ state: LiveState) throws -> [Range<UInt64>] {
    guard let vm = state.vmFD else { throw EngineTestError(description: "no VM") }
    return try host.simulator.privateGPARanges(vm: vm)
}

/// The guest_memfd state of a block in the simulator, as (range, state) pairs.
func engGmemRuns(
    _ host: SimulatedHost, _ state: LiveState, block: String = "ram"
) throws -> [(Range<UInt64>, MemoryState)] {
    guard let fd = state.block(named: block)?.guestMemfd else {
        throw EngineTestError(description: "no gmem for \(block)")
    }
    return try host.simulator.guestMemfdState(gmem: fd).runs.map { ($0.range, $0.value) }
}

/// A block's tracked layout as (range, state) pairs.
func engLayoutRuns(_ state: LiveState, block: String = "ram") -> [(Range<UInt64>, MemoryState)] {
    (state.block(named: block)?.layout.runs ?? []).map { ($0.range, $0.value) }
}

func engSameRuns(_ lhs: [(Range<UInt64>, MemoryState)], _ rhs: [(Range<UInt64>, MemoryState)]) -> Bool {
    lhs.count == rhs.count && zip(lhs, rhs).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
}
