import Config
import GmemCore
import GmemKVM
import GmemSimulator

/// Where the rule a case checks comes from.
public enum RuleSource: Sendable, Hashable {
    /// A function of the kernel source (`file`, `function`), read for this rule.
    case kernel(file: String, function: String)
    /// A case of a kernel selftest, ported step by step (`file` relative to the kernel tree).
    case selftest(file: String, testCase: String)
    /// A rule of the in-place conversion series (`KVM_SET_MEMORY_ATTRIBUTES2`), with the kernel function.
    case inPlaceSeries(file: String, function: String)

    /// The family the report counts cases by.
    public var family: String {
        switch self {
        case .kernel: return "uapi"
        case .selftest: return "selftest"
        case .inPlaceSeries: return "in-place"
        }
    }

    public var description: String {
        switch self {
        case .kernel(let file, let function): return "\(file): \(function)"
        case .selftest(let file, let testCase): return "\(file): \(testCase)"
        case .inPlaceSeries(let file, let function): return "in-place conversion series, \(file): \(function)"
        }
    }
}

/// What a host must offer for a case to run at all; a host that lacks it skips the case, saying which.
public enum CaseRequirement: Sendable, Hashable, CustomStringConvertible {
    /// The VM type must be creatable (KVM_CAP_VM_TYPES).
    case vmType(VMType)
    /// The hugetlb pool of that page size must have at least one free page.
    case hugePages(UInt64)
    /// The host must be the kernel the profile describes: the case checks the profile's capability values,
    /// which on another host are reported as deviations instead.
    case profileCapabilities

    public var description: String {
        switch self {
        case .vmType(let type): return "VM type \(type.rawValue)"
        case .hugePages(let size): return "a free \(size >> 20) MiB huge page"
        case .profileCapabilities: return "the host matches the profile"
        }
    }
}

/// One conformance case: a stable id, the rule it checks and where that rule comes from, the profiles whose
/// kernels must obey it, what the host needs, and the steps with their documented outcomes.
public struct ConformanceCase: Sendable, CustomStringConvertible {
    /// Stable, unique, KTAP-safe (no `#`, no newline): `family/name`.
    public var id: String
    /// The rule, in one sentence.
    public var rule: String
    public var source: RuleSource
    /// Profile names whose kernels must pass this case.
    public var profiles: Set<String>
    public var requirements: [CaseRequirement]
    public var steps: [ConformanceStep]

    public init(
        id: String, rule: String, source: RuleSource, profiles: Set<String>,
        requirements: [CaseRequirement] = [], steps: [ConformanceStep]
    ) {
        self.id = id
        self.rule = rule
        self.source = source
        self.profiles = profiles
        self.requirements = requirements
        self.steps = steps
    }

    public var description: String { id }

    /// How many steps carry a documented outcome.
    public var expectationCount: Int {
        steps.filter { if case .expect = $0 { return true } else { return false } }.count
    }

    /// Why `host` cannot run this case, or nil when it can. Besides the declared requirements, a case that
    /// creates a guest_memfd needs a kernel with guest_memfd (derived from the steps; KVM_CREATE_GUEST_MEMFD is
    /// ENOTTY without it).
    public func skipReason(on host: Capabilities, hostMatchesProfile: Bool = true) -> String? {
        let hasGuestMemfd =
            host.systemExtension(KVMConstants.capGuestMemfd) != 0 || host.vmTypes.contains { $0.guestMemfd }
        let createsGuestMemfd = steps.contains { step in
            if case .createGmem = step { return true }
            if case .expect(.createGmem, _) = step { return true }
            return false
        }
        // The declared requirements first: a case for a VM type the host lacks names the VM type, the
        // first thing to change, even where guest_memfd is missing too.
        for requirement in requirements {
            switch requirement {
            case .vmType(let type):
                if !host.vmTypes.contains(where: { $0.vmType == type }) { return "VM type \(type.rawValue) absent" }
            case .hugePages(let size):
                let free = host.hugePagesFree?[size] ?? (host.hugePageSizes.contains(size) ? 1 : 0)
                if free == 0 { return "hugetlb pool of \(size >> 20) MiB pages is empty" }
            case .profileCapabilities:
                if !hostMatchesProfile {
                    return "checks the profile's capability values; the host's differ (see the deviations)"
                }
            }
        }
        if createsGuestMemfd && !hasGuestMemfd { return "guest_memfd absent (KVM_CAP_GUEST_MEMFD is 0)" }
        return nil
    }
}

/// Profile groups the cases name, by canonical profile name (aliases are resolved when cases are selected).
/// Groups other than a generation are derived from what the profiles offer, so a new profile with the same
/// capabilities gets the same cases.
public enum ProfileGroup {
    /// The 6.18 generation, every variant (rules of 6.18-7.3 that 7.4 changed or that only 6.18 shows).
    public static let linux618: Set<String> = ["linux-6.18", "linux-6.18-pvm", "linux-6.18-sev-snp", "linux-6.18-tdx"]
    /// Kernels in the in-place mode of 7.4 (`kvm.gmem_in_place_conversion=1`): `KVM_SET_MEMORY_ATTRIBUTES2`.
    public static let inPlaceMode: Set<String> = names { $0.inPlaceMode }
    /// Kernels whose guest_memfd flags mean MMAP = 1, INIT_SHARED = 2 (6.18 on, 7.4 in either mode).
    public static let upstreamFlags: Set<String> = names { $0.guestMemfdFlagSet == .upstream }
    /// Every built-in profile.
    public static var all: Set<String> { names { _ in true } }

    static func names(_ predicate: (Capabilities) -> Bool) -> Set<String> {
        Set(Profiles.all.filter(predicate).map(\.name))
    }
}
