import Config

/// How a host converts guest memory between private and shared (docs/kernels.md, the generations table).
public enum ConversionABI: String, Sendable, Hashable, Codable, CaseIterable {
    /// Per-VM attributes, `KVM_SET_MEMORY_ATTRIBUTES` on the VM fd (Linux 6.8+); never in place.
    case vmAttributes = "vm-attributes"
    /// guest_memfd may be mmap-able and shared (`MMAP`, `INIT_SHARED`, Linux 6.18) but nothing converts.
    case sharedOnly = "shared-only"
    /// 2025 RFC/POC: `KVM_GMEM_CONVERT_SHARED/PRIVATE` on the guest_memfd (`SUPPORT_SHARED`, `INIT_PRIVATE`).
    case gmemConvertPOC = "gmem-convert-poc"
    /// The in-place series (Linux 7.4, `kvm.gmem_in_place_conversion=1`): `KVM_SET_MEMORY_ATTRIBUTES2` on the
    /// guest_memfd.
    case gmemAttributes2 = "gmem-attributes2"
    /// No guest_memfd conversion of any kind (no private memory).
    case none = "none"

    /// Whether one guest_memfd can serve both states ("in-place conversion").
    public var convertsInPlace: Bool { self == .gmemConvertPOC || self == .gmemAttributes2 }
    /// Whether private/shared state can change at run time at all.
    public var canConvert: Bool { self != .sharedOnly && self != .none }
}

/// What the bits of `kvm_create_guest_memfd.flags` mean on a host: they were reused between generations.
public enum GuestMemfdFlagSet: String, Sendable, Hashable, Codable {
    /// 6.8-6.17: no flags at all.
    case none
    /// 6.18 upstream and the 2026 series: `MMAP` = 1, `INIT_SHARED` = 2.
    case upstream
    /// 2025 POC: `SUPPORT_SHARED` = 1, `INIT_PRIVATE` = 2, `HUGETLB` = 4 (+ page size code in bits 58..63).
    case poc2025
}

/// Capabilities of one VM type on a host: what `KVM_CHECK_EXTENSION` says on a VM of that type, and what the
/// kernel accepts there.
public struct VMTypeCapabilities: Sendable, Hashable, Codable {
    public var vmType: VMType
    /// Accepted `kvm_create_guest_memfd.flags` (KVM_CAP_GUEST_MEMFD_FLAGS on such a VM; 0 before 6.18).
    public var guestMemfdFlags: UInt64
    /// Whether a guest_memfd can be created and bound (`KVM_MEM_GUEST_MEMFD`) on such a VM.
    public var guestMemfd: Bool
    /// KVM_CAP_MEMORY_ATTRIBUTES on such a VM (8 = `KVM_MEMORY_ATTRIBUTE_PRIVATE`).
    public var memoryAttributes: UInt64
    /// The conversion mechanism for such a VM.
    public var conversion: ConversionABI

    public init(
        vmType: VMType, guestMemfdFlags: UInt64, guestMemfd: Bool, memoryAttributes: UInt64, conversion: ConversionABI
    ) {
        self.vmType = vmType
        self.guestMemfdFlags = guestMemfdFlags
        self.guestMemfd = guestMemfd
        self.memoryAttributes = memoryAttributes
        self.conversion = conversion
    }

    public var hasVMAttributes: Bool { memoryAttributes & KVMConstants.memoryAttributePrivate != 0 }
}

/// Everything gmemctl needs to know about a host, real or named by a profile. Planning and offline
/// validation read only this value, so a profile and a probed kernel are interchangeable.
public struct Capabilities: Sendable, Hashable, Codable {
    /// Profile name, or `kvm` for a probed kernel.
    public var name: String
    /// One line on what this is (kernel generation, where the numbers come from).
    public var summary: String
    public var pageSize: UInt64
    /// What the bits of `kvm_create_guest_memfd.flags` mean on this host.
    public var guestMemfdFlagSet: GuestMemfdFlagSet
    /// Creatable VM types (KVM_CAP_VM_TYPES), each with its own capabilities.
    public var vmTypes: [VMTypeCapabilities]
    /// `KVM_CHECK_EXTENSION` at system scope, by capability number.
    public var systemExtensions: [UInt32: Int64]
    /// Hugetlb page sizes the host offers, and (for a real host) free pages per size.
    public var hugePageSizes: [UInt64]
    public var hugePagesFree: [UInt64: UInt64]?
    /// Highest memslot count (KVM_CAP_NR_MEMSLOTS).
    public var maxMemslots: Int
    /// KVM_PRE_FAULT_MEMORY works (needs TDP; the PVM host uses shadow paging).
    public var preFault: Bool
    /// `kvm.gmem_in_place_conversion` (Linux 7.4): nil where the parameter does not exist (before 7.4, and
    /// on hosts without private memory). When true every guest_memfd memslot is guest_memfd-only.
    public var gmemInPlaceConversion: Bool?
    /// Guest-physical address width a memslot may reach (`kvm_mmu_max_gfn`: the MMU's physical-address
    /// width with TDP, 52 with shadow paging). A slot whose last byte is at or above `2^bits` is EINVAL.
    public var physicalAddressBits: Int
    /// `uname -r` of a probed host (nil for profiles): breaks ties when it fits several profiles equally.
    public var kernelRelease: String?
    /// What a probe relied on, one line each ("ioctl", "module parameter", "capability"); empty for profiles.
    public var evidence: [String]

    public init(
        name: String, summary: String, pageSize: UInt64 = 4096, guestMemfdFlagSet: GuestMemfdFlagSet,
        vmTypes: [VMTypeCapabilities], systemExtensions: [UInt32: Int64], hugePageSizes: [UInt64] = [2 << 20, 1 << 30],
        hugePagesFree: [UInt64: UInt64]? = nil, maxMemslots: Int = 32764, preFault: Bool,
        gmemInPlaceConversion: Bool? = nil, physicalAddressBits: Int = 52, kernelRelease: String? = nil,
        evidence: [String] = []
    ) {
        self.name = name
        self.summary = summary
        self.pageSize = pageSize
        self.guestMemfdFlagSet = guestMemfdFlagSet
        self.vmTypes = vmTypes
        self.systemExtensions = systemExtensions
        self.hugePageSizes = hugePageSizes
        self.hugePagesFree = hugePagesFree
        self.maxMemslots = maxMemslots
        self.preFault = preFault
        self.gmemInPlaceConversion = gmemInPlaceConversion
        self.physicalAddressBits = physicalAddressBits
        self.kernelRelease = kernelRelease
        self.evidence = evidence
    }

    /// Whether this host runs the in-place mode of Linux 7.4 (guest_memfd-only memslots).
    public var inPlaceMode: Bool { gmemInPlaceConversion == true }

    /// First guest-physical address no memslot may cover.
    public var gpaLimit: UInt64 { physicalAddressBits >= 64 ? .max : 1 << UInt64(physicalAddressBits) }

    /// Largest memslot in bytes: `KVM_MEM_MAX_NR_PAGES` (2^31 - 1) pages.
    public var maxMemslotSize: UInt64 { KVMConstants.maxPagesPerMemslot * pageSize }

    /// "2^31 - 1 pages (8 TiB - 4 KiB)", for messages.
    public var maxMemslotDescription: String {
        "2^31 - 1 pages (\(formatSize(maxMemslotSize + pageSize)) - \(formatSize(pageSize)))"
    }

    public func vmType(_ type: VMType) -> VMTypeCapabilities? { vmTypes.first { $0.vmType == type } }

    /// KVM_CAP_VM_TYPES as the kernel reports it: `BIT(type)` for each creatable type.
    public var vmTypesMask: Int64 { vmTypes.reduce(0) { $0 | (1 << Int64($1.vmType.kvmValue)) } }

    public func systemExtension(_ cap: UInt32) -> Int64 { systemExtensions[cap] ?? 0 }
}

extension Capabilities {
    private enum CodingKeys: String, CodingKey {
        case name, summary, pageSize, guestMemfdFlagSet, vmTypes, systemExtensions, hugePageSizes, hugePagesFree
        case maxMemslots, preFault, gmemInPlaceConversion, physicalAddressBits, kernelRelease, evidence
    }

    /// Decodes capabilities written before the in-place mode, address width and evidence were recorded.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            name: try c.decode(String.self, forKey: .name), summary: try c.decode(String.self, forKey: .summary),
            pageSize: try c.decode(UInt64.self, forKey: .pageSize),
            guestMemfdFlagSet: try c.decode(GuestMemfdFlagSet.self, forKey: .guestMemfdFlagSet),
            vmTypes: try c.decode([VMTypeCapabilities].self, forKey: .vmTypes),
            systemExtensions: try c.decode([UInt32: Int64].self, forKey: .systemExtensions),
            hugePageSizes: try c.decode([UInt64].self, forKey: .hugePageSizes),
            hugePagesFree: try c.decodeIfPresent([UInt64: UInt64].self, forKey: .hugePagesFree),
            maxMemslots: try c.decode(Int.self, forKey: .maxMemslots),
            preFault: try c.decode(Bool.self, forKey: .preFault),
            gmemInPlaceConversion: try c.decodeIfPresent(Bool.self, forKey: .gmemInPlaceConversion),
            physicalAddressBits: try c.decodeIfPresent(Int.self, forKey: .physicalAddressBits) ?? 52,
            kernelRelease: try c.decodeIfPresent(String.self, forKey: .kernelRelease),
            evidence: try c.decodeIfPresent([String].self, forKey: .evidence) ?? [])
    }
}

extension VMType {
    /// The `KVM_CREATE_VM` machine type (x86 uapi).
    public var kvmValue: UInt64 {
        switch self {
        case .default: return 0
        case .swProtected: return 1
        case .sevSnp: return 4
        case .tdx: return 5
        }
    }

    public init?(kvmValue: UInt64) {
        guard let match = VMType.allCases.first(where: { $0.kvmValue == kvmValue }) else { return nil }
        self = match
    }
}

/// Numbers from the uapi that policy code needs by name (the C definitions live in CKVM; these are the
/// same values, kept here so the pure planner and the profiles do not depend on C).
public enum KVMConstants {
    public static let capUserMemory2: UInt32 = 231
    public static let capMemoryFaultInfo: UInt32 = 232
    public static let capMemoryAttributes: UInt32 = 233
    public static let capGuestMemfd: UInt32 = 234
    public static let capVMTypes: UInt32 = 235
    public static let capPreFaultMemory: UInt32 = 236
    public static let capGuestMemfdFlags: UInt32 = 244
    /// 2025 POC numbers; they collide with released ARM/RISC-V capabilities, so they are read only on opt-in.
    public static let capPOCGmemSharedMem: UInt32 = 240
    public static let capPOCGmemConversion: UInt32 = 241
    public static let capPOCGmemHugetlb: UInt32 = 242
    /// `KVM_CAP_GUEST_MEMFD_MEMORY_ATTRIBUTES` of the in-place series (number unconfirmed; a PowerPC
    /// capability also wants 250): only confirmation, the probe asks the ioctl first.
    public static let capGuestMemfdMemoryAttributes: UInt32 = 250
    public static let capNrMemslots: UInt32 = 10
    /// `KVM_MEM_MAX_NR_PAGES`: pages one memslot may hold (every generation).
    public static let maxPagesPerMemslot: UInt64 = (1 << 31) - 1
    /// `/sys/module/kvm/parameters/gmem_in_place_conversion` (Linux 7.4, where private memory exists).
    public static let gmemInPlaceConversionParameter = "/sys/module/kvm/parameters/gmem_in_place_conversion"

    public static let memoryAttributePrivate: UInt64 = 1 << 3
    public static let memGuestMemfd: UInt32 = 1 << 2
    public static let memLogDirtyPages: UInt32 = 1 << 0
    public static let memReadonly: UInt32 = 1 << 1

    /// 6.18 upstream guest_memfd flags.
    public static let gmemFlagMmap: UInt64 = 1 << 0
    public static let gmemFlagInitShared: UInt64 = 1 << 1
    /// 2025 POC guest_memfd flags.
    public static let pocGmemFlagSupportShared: UInt64 = 1 << 0
    public static let pocGmemFlagInitPrivate: UInt64 = 1 << 1
    public static let pocGmemFlagHugetlb: UInt64 = 1 << 2

    public static let fallocKeepSize: Int32 = 0x01
    public static let fallocPunchHole: Int32 = 0x02
    public static let madvDontneed: Int32 = 4
    public static let madvRemove: Int32 = 9
    public static let madvPopulateWrite: Int32 = 23

    /// Names of guest_memfd flag bits under a flag set, for messages ("0x3 (MMAP|INIT_SHARED)").
    public static func describeGuestMemfdFlags(_ flags: UInt64, in set: GuestMemfdFlagSet) -> String {
        let names: [(UInt64, String)]
        switch set {
        case .none: names = []
        case .upstream: names = [(gmemFlagMmap, "MMAP"), (gmemFlagInitShared, "INIT_SHARED")]
        case .poc2025:
            names = [
                (pocGmemFlagSupportShared, "SUPPORT_SHARED"), (pocGmemFlagInitPrivate, "INIT_PRIVATE"),
                (pocGmemFlagHugetlb, "HUGETLB"),
            ]
        }
        var parts: [String] = []
        var rest = flags
        for (bit, name) in names where flags & bit != 0 {
            parts.append(name)
            rest &= ~bit
        }
        if rest != 0 { parts.append("0x" + String(rest, radix: 16)) }
        let hex = "0x" + String(flags, radix: 16)
        return parts.isEmpty ? hex : "\(hex) (\(parts.joined(separator: "|")))"
    }
}
