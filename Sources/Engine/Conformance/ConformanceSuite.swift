import Config
import GmemCore
import GmemKVM
import GmemSimulator

#if canImport(Glibc)
import Glibc
#endif

/// Every conformance case, by source.
public enum ConformanceCatalog {
    public static let all: [ConformanceCase] = DifferentialCases.all + SelftestCases.all + InPlaceCases.all

    /// The cases whose rule a kernel of `profile` must obey, optionally only those whose id matches `glob`.
    /// An alias runs exactly the cases of the profile it names: the kernel is the same.
    public static func cases(for profile: String, matching glob: String? = nil) -> [ConformanceCase] {
        let canonical = Profiles.canonicalName(profile)
        return all.filter { testCase in
            testCase.profiles.contains(canonical) && (glob.map { Glob.matches($0, testCase.id) } ?? true)
        }
    }
}

/// Shell-style matching of case ids: `*` any run of characters (including `/`), `?` one character.
public enum Glob {
    public static func matches(_ pattern: String, _ text: String) -> Bool {
        let p = Array(pattern), t = Array(text)
        var pi = 0, ti = 0, star = -1, mark = 0
        while ti < t.count {
            if pi < p.count && (p[pi] == "?" || p[pi] == t[ti]) {
                pi += 1
                ti += 1
            } else if pi < p.count && p[pi] == "*" {
                star = pi
                mark = ti
                pi += 1
            } else if star >= 0 {
                pi = star + 1
                mark += 1
                ti = mark
            } else {
                return false
            }
        }
        while pi < p.count && p[pi] == "*" { pi += 1 }
        return pi == p.count
    }
}

/// The kernel a conformance run checks, with what it offers (for the skip decisions).
public struct ConformanceTarget {
    public var label: String
    public var kernel: KernelInterface
    public var deviceFd: Int32
    public var capabilities: Capabilities

    public init(label: String, kernel: KernelInterface, deviceFd: Int32, capabilities: Capabilities) {
        self.label = label
        self.kernel = kernel
        self.deviceFd = deviceFd
        self.capabilities = capabilities
    }
}

/// One step of a case as run: what the host did, what the reference simulator did, what the rule documents.
public struct StepResult: Sendable, Hashable {
    public var index: Int
    public var label: String
    public var observed: ConformanceOutcome
    public var simulator: ConformanceOutcome
    public var expected: ConformanceOutcome?

    public var meetsRule: Bool { expected.map { $0 == observed } ?? true }
    public var matchesSimulator: Bool { observed == simulator }
}

/// Why a case failed: the first step that broke its rule, or else the first that the simulator does differently.
public struct CaseFailure: Sendable, Hashable {
    public enum Kind: String, Sendable, Hashable {
        /// The host's outcome is not the one the rule documents.
        case rule
        /// The host and the simulator of the profile disagree (no documented outcome decides between them).
        case simulator
    }

    public var kind: Kind
    public var step: Int
    public var label: String
    /// The rule's outcome (`.rule`) or the simulator's (`.simulator`).
    public var expected: ConformanceOutcome
    public var observed: ConformanceOutcome
    /// Every other step that deviates, beyond the first.
    public var otherDeviations: Int

    public var summary: String {
        switch kind {
        case .rule: return "step \(step) \(label): expected \(expected), observed \(observed)"
        case .simulator: return "step \(step) \(label): simulator gives \(expected), host \(observed)"
        }
    }
}

public enum CaseStatus: Sendable, Hashable {
    case ok
    case notOK(CaseFailure)
    case skip(String)
}

public struct CaseResult: Sendable {
    public var testCase: ConformanceCase
    public var status: CaseStatus
    public var steps: [StepResult]
    public var seconds: Double
}

/// A whole run: the host, the profile it was compared with, how the host deviates from that profile, the cases.
public struct ConformanceRun: Sendable {
    public var host: String
    public var profile: String
    /// Whether the host is the kernel `profile` describes (no deviations).
    public var profileMatchesHost: Bool
    /// Whether the profile was named by the caller (`--profile`): then each deviation fails the run. Otherwise
    /// it is the host's own profile, or the nearest one when the host matches none, and deviations are notes.
    public var profilePinned: Bool
    public var deviations: [String]
    public var results: [CaseResult]

    public var passed: Int { results.filter { $0.status == .ok }.count }
    public var failed: Int { results.filter { if case .notOK = $0.status { return true } else { return false } }.count }
    public var skipped: Int { results.filter { if case .skip = $0.status { return true } else { return false } }.count }
    /// A run fails when a case fails or when the host is not the kernel of the profile it was pinned to.
    public var succeeded: Bool { failed == 0 && (deviations.isEmpty || !profilePinned) }
}

/// Runs cases on a target and on a fresh simulator of the reference profile, step by step.
public enum ConformanceSuite {
    /// The reference profile with the host's hugetlb pools laid over it: which huge page sizes exist and how many
    /// pages are free are facts of the machine, not of the kernel generation.
    public static func reference(_ profile: Capabilities, host: Capabilities) -> Capabilities {
        var reference = profile
        if let pools = host.hugePagesFree, !pools.isEmpty {
            reference.hugePageSizes = pools.keys.sorted()
            reference.hugePagesFree = pools
        }
        return reference
    }

    public static func run(
        _ cases: [ConformanceCase], on target: ConformanceTarget, profile: Capabilities,
        pinned: Bool, clock: () -> Double = monotonicSeconds
    ) -> ConformanceRun {
        let reference = reference(profile, host: target.capabilities)
        let deviations = ProfileDeviation.between(host: target.capabilities, profile: profile)
        let results = cases.map { testCase in
            let start = clock()
            let result = run(testCase, on: target, reference: reference, hostMatchesProfile: deviations.isEmpty)
            return CaseResult(testCase: testCase, status: result.status, steps: result.steps, seconds: clock() - start)
        }
        return ConformanceRun(
            host: target.label, profile: profile.name, profileMatchesHost: deviations.isEmpty,
            profilePinned: pinned, deviations: deviations, results: results)
    }

    /// One case: skipped when the host lacks what it needs, else run on both kernels, each in its own VM and
    /// files, all released afterwards.
    public static func run(
        _ testCase: ConformanceCase, on target: ConformanceTarget, reference: Capabilities,
        hostMatchesProfile: Bool = true
    ) -> (status: CaseStatus, steps: [StepResult]) {
        if let reason = testCase.skipReason(on: target.capabilities, hostMatchesProfile: hostMatchesProfile) {
            return (.skip(reason), [])
        }
        let hostRunner = StepRunner(kernel: target.kernel, deviceFd: target.deviceFd)
        let observed = hostRunner.run(testCase.steps)
        hostRunner.release()
        let simulator = SimulatedKernel(capabilities: reference)
        let simRunner = StepRunner(kernel: simulator, deviceFd: simulator.deviceDescriptor)
        let simulated = simRunner.run(testCase.steps)
        simRunner.release()

        let documented: [ConformanceOutcome?] = testCase.steps.map {
            if case .expect(_, let outcome) = $0 { return outcome } else { return nil }
        }
        var steps: [StepResult] = []
        for index in 0..<max(observed.count, simulated.count) {
            let host = index < observed.count ? observed[index] : nil
            let sim = index < simulated.count ? simulated[index] : nil
            steps.append(
                StepResult(
                    index: index + 1, label: host?.label ?? sim?.label ?? "?",
                    observed: host?.outcome ?? .bytes("(no step)"),
                    simulator: sim?.outcome ?? .bytes("(no step)"),
                    expected: index < documented.count ? documented[index] : nil))
        }
        return (status(of: steps), steps)
    }

    static func status(of steps: [StepResult]) -> CaseStatus {
        let broken = steps.filter { !$0.meetsRule }
        let differing = steps.filter { $0.meetsRule && !$0.matchesSimulator }
        let others = broken.count + differing.count - 1
        if let first = broken.first, let expected = first.expected {
            return .notOK(
                CaseFailure(
                    kind: .rule, step: first.index, label: first.label, expected: expected,
                    observed: first.observed, otherDeviations: others))
        }
        if let first = differing.first {
            return .notOK(
                CaseFailure(
                    kind: .simulator, step: first.index, label: first.label, expected: first.simulator,
                    observed: first.observed, otherDeviations: others))
        }
        return .ok
    }

    /// The step-by-step table of a case: every step, the host's and the simulator's outcome, the documented one.
    public static func table(_ result: CaseResult) -> String { table(id: result.testCase.id, steps: result.steps) }

    public static func table(id: String, steps: [StepResult]) -> String {
        func pad(_ text: String, _ width: Int) -> String {
            text.count >= width ? text : text + String(repeating: " ", count: width - text.count)
        }
        let labelWidth = min(100, steps.map(\.label.count).max() ?? 10)
        var lines = [
            "case \(id):",
            "  #   \(pad("step", labelWidth))  \(pad("host", 22))  \(pad("simulator", 22))  documented",
        ]
        for step in steps {
            let marker = !step.meetsRule ? "<<< differs from the rule" : (!step.matchesSimulator ? "<<< MISMATCH" : "")
            lines.append(
                "  \(pad(String(step.index), 3)) \(pad(step.label, labelWidth))  \(pad(step.observed.description, 22))  "
                    + "\(pad(step.simulator.description, 22))  \(pad(step.expected?.description ?? "", 10)) \(marker)")
        }
        return lines.joined(separator: "\n")
    }
}

/// Where a host's capabilities differ from a profile's, in words a kernel developer reads.
public enum ProfileDeviation {
    public static func between(host: Capabilities, profile: Capabilities) -> [String] {
        var deviations: [String] = []
        for type in profile.vmTypes {
            guard let offered = host.vmType(type.vmType) else {
                deviations.append("VM type \(type.vmType.rawValue) absent")
                continue
            }
            if offered.guestMemfd != type.guestMemfd {
                deviations.append(
                    "guest_memfd on \(type.vmType.rawValue) VMs: profile \(type.guestMemfd ? "yes" : "no"), host \(offered.guestMemfd ? "yes" : "no")"
                )
            }
            if offered.guestMemfdFlags != type.guestMemfdFlags {
                deviations.append(
                    "KVM_CAP_GUEST_MEMFD_FLAGS on \(type.vmType.rawValue) VMs: profile \(type.guestMemfdFlags), host \(offered.guestMemfdFlags)"
                )
            }
            if offered.memoryAttributes != type.memoryAttributes {
                deviations.append(
                    "KVM_CAP_MEMORY_ATTRIBUTES on \(type.vmType.rawValue) VMs: profile \(type.memoryAttributes), host \(offered.memoryAttributes)"
                )
            }
        }
        for type in host.vmTypes where profile.vmType(type.vmType) == nil {
            deviations.append("VM type \(type.vmType.rawValue) present, the profile has none")
        }
        let named: [(UInt32, String)] = [
            (KVMConstants.capUserMemory2, "KVM_CAP_USER_MEMORY2"),
            (KVMConstants.capMemoryAttributes, "KVM_CAP_MEMORY_ATTRIBUTES"),
            (KVMConstants.capGuestMemfd, "KVM_CAP_GUEST_MEMFD"), (KVMConstants.capVMTypes, "KVM_CAP_VM_TYPES"),
            (KVMConstants.capPreFaultMemory, "KVM_CAP_PRE_FAULT_MEMORY"),
            (KVMConstants.capGuestMemfdFlags, "KVM_CAP_GUEST_MEMFD_FLAGS"),
            (KVMConstants.capNrMemslots, "KVM_CAP_NR_MEMSLOTS"),
        ]
        for (number, name) in named where host.systemExtension(number) != profile.systemExtension(number) {
            deviations.append(
                "\(name) (\(number)) at system scope: profile \(profile.systemExtension(number)), host \(host.systemExtension(number))"
            )
        }
        return deviations
    }
}

/// Seconds from a monotonic clock (durations only).
public func monotonicSeconds() -> Double {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
}

/// Why a conformance run could not start.
public enum ConformanceError: Error, CustomStringConvertible {
    case unknownHost(String)
    case unknownProfile(String)
    case kvmUnavailable(KernelError)
    case noMatchingProfile

    public var description: String {
        switch self {
        case .unknownHost(let text): return "--host takes kvm or sim:PROFILE, not \(text)"
        case .unknownProfile(let name):
            return "unknown profile \(name); known: \(Profiles.names.joined(separator: ", "))"
        case .kvmUnavailable(let error): return "cannot use /dev/kvm: \(error)"
        case .noMatchingProfile:
            return "no built-in profile matches this host; name the one to check against with --profile"
        }
    }
}

extension ConformanceSuite {
    /// Opens the host of a run: `kvm` (probed, with this machine's hugetlb pools) or `sim:PROFILE`, and the
    /// profile it is checked against: `profile` (pinned), else the one the host matches, else the nearest one
    /// (fewest deviations).
    public static func open(
        host: String, profile: String?
    ) throws(ConformanceError)
        -> (target: ConformanceTarget, profile: Capabilities, pinned: Bool)
    {
        let target: ConformanceTarget
        let matched: Capabilities?
        if host == "kvm" {
            let kernel: KVMKernel
            let capabilities: Capabilities
            do {
                kernel = try KVMKernel()
                capabilities = try CapabilityProbe.probe(
                    kernel, hugepageDirectory: HugepagePools.defaultDirectory,
                    hostFacts: HostFacts.read())
            } catch {
                throw .kvmUnavailable(error)
            }
            target = ConformanceTarget(
                label: "kvm (\(kernel.devicePath))", kernel: kernel, deviceFd: kernel.systemFd,
                capabilities: capabilities)
            matched = CapabilityProbe.matchingProfile(capabilities)
        } else if host.hasPrefix("sim:") {
            let name = String(host.dropFirst(4))
            guard let simulated = Profiles.named(name) else { throw .unknownProfile(name) }
            let kernel = SimulatedKernel(capabilities: simulated)
            target = ConformanceTarget(
                label: "sim:\(name)", kernel: kernel, deviceFd: kernel.deviceDescriptor,
                capabilities: simulated)
            matched = simulated
        } else {
            throw .unknownHost(host)
        }
        if let profile {
            guard let named = Profiles.named(profile) else { throw .unknownProfile(profile) }
            return (target, named, true)
        }
        if let matched { return (target, matched, false) }
        guard let nearest = nearestProfile(to: target.capabilities) else { throw .noMatchingProfile }
        return (target, nearest, false)
    }

    /// The profile a host that matches none is checked against: fewest deviations, ties broken by the
    /// running kernel's generation (`CapabilityProbe.nearestProfile`).
    public static func nearestProfile(to host: Capabilities) -> Capabilities? {
        CapabilityProbe.nearestProfile(host) { ProfileDeviation.between(host: host, profile: $0).count }
    }
}
