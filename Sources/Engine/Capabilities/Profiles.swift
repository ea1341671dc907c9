import Config

/// Built-in kernel profiles: named capability sets of kernel generations, for offline checks and for the
/// simulator. Each generation, what changed in it and where it was read are in docs/kernels.md.
public enum Profiles {
    public static let all: [Capabilities] = [
        linux68, linux611, linux611SevSnp, linux616TDX,
        linux618, linux618PVM, linux618SevSnp, linux618TDX,
        linux74, linux74SevSnp, linux74TDX,
        linux74InPlace, linux74InPlaceSevSnp, linux74InPlaceTDX,
        gmemConvertPOC,
    ]

    /// Older names kept working: the 2026 series profiles were named after their ioctl before the series
    /// was applied for 7.4.
    public static let aliases: [(alias: String, profile: String)] = [
        ("gmem-attributes2", "linux-7.4-in-place"),
        ("gmem-attributes2-sev-snp", "linux-7.4-in-place-sev-snp"),
    ]

    /// A profile by name. An alias gives its profile's capabilities under the alias name, so hosts, state
    /// files and agents named after it keep their identity.
    public static func named(_ name: String) -> Capabilities? {
        if let alias = aliases.first(where: { $0.alias == name }) {
            guard var profile = all.first(where: { $0.name == alias.profile }) else { return nil }
            profile.name = alias.alias
            profile.summary = "alias of \(alias.profile): \(profile.summary)"
            return profile
        }
        return all.first { $0.name == name }
    }

    public static var names: [String] { all.map(\.name) + aliases.map(\.alias) }

    /// The first kernel release a profile describes, from its `linux-MAJOR.MINOR` name; nil for the 2025 POC.
    public static func generation(of profile: Capabilities) -> KernelGeneration? {
        let name = canonicalName(profile.name)
        guard name.hasPrefix("linux-") else { return nil }
        return KernelGeneration(release: String(name.dropFirst("linux-".count)))
    }

    /// The built-in profile a name stands for: an alias's target, else the name itself.
    public static func canonicalName(_ name: String) -> String {
        aliases.first { $0.alias == name }?.profile ?? name
    }

    private static let x86Base: [UInt32: Int64] = [
        KVMConstants.capUserMemory2: 1,
        KVMConstants.capMemoryFaultInfo: 1,
        KVMConstants.capGuestMemfd: 1,
        KVMConstants.capNrMemslots: 32764,
    ]

    private static func extensions(_ extra: [UInt32: Int64], types: [VMTypeCapabilities]) -> [UInt32: Int64] {
        var result = x86Base.merging(extra) { $1 }
        result[KVMConstants.capVMTypes] = types.reduce(0) { $0 | (1 << Int64($1.vmType.kvmValue)) }
        return result
    }

    /// 6.8-6.17: guest_memfd (flags 0) only for VMs with private memory, converted by per-VM attributes.
    private static func preMmapTypes(_ coco: [VMType]) -> [VMTypeCapabilities] {
        [
            VMTypeCapabilities(
                vmType: .default, guestMemfdFlags: 0, guestMemfd: false, memoryAttributes: 0, conversion: .none)
        ]
            + coco.map {
                VMTypeCapabilities(
                    vmType: $0, guestMemfdFlags: 0, guestMemfd: true,
                    memoryAttributes: KVMConstants.memoryAttributePrivate, conversion: .vmAttributes)
            }
    }

    /// Linux 6.8-6.10: no KVM_PRE_FAULT_MEMORY yet (capability 236 arrived in 6.11).
    public static let linux68: Capabilities = {
        let types = preMmapTypes([.swProtected])
        return Capabilities(
            name: "linux-6.8",
            summary:
                "Linux 6.8-6.10 x86 with CONFIG_KVM_SW_PROTECTED_VM: guest_memfd (flags 0) for private VMs, per-VM attributes, no pre-fault",
            guestMemfdFlagSet: .none, vmTypes: types,
            systemExtensions: extensions([KVMConstants.capMemoryAttributes: 8], types: types),
            preFault: false)
    }()

    private static func makeLinux611(name: String, coco: [VMType], summary: String) -> Capabilities {
        let types = preMmapTypes(coco)
        return Capabilities(
            name: name, summary: summary, guestMemfdFlagSet: .none, vmTypes: types,
            systemExtensions: extensions(
                [KVMConstants.capMemoryAttributes: 8, KVMConstants.capPreFaultMemory: 1], types: types),
            preFault: true)
    }

    public static let linux611 = makeLinux611(
        name: "linux-6.11", coco: [.swProtected, .sevSnp],
        summary:
            "Linux 6.11-6.17 x86 with SW_PROTECTED and SEV-SNP: guest_memfd (flags 0) for private VMs, per-VM attributes, pre-fault (cap 236)"
    )

    public static let linux611SevSnp = makeLinux611(
        name: "linux-6.11-sev-snp", coco: [.sevSnp],
        summary: "Linux 6.11-6.17 on an AMD SEV-SNP host: default and SNP VMs, per-VM attributes")

    public static let linux616TDX = makeLinux611(
        name: "linux-6.16-tdx", coco: [.tdx],
        summary:
            "Linux 6.16-6.17 on an Intel TDX host (TDX VMs arrived in 6.16): default and TDX VMs, per-VM attributes")

    private static func linux618Types(_ coco: [VMType]) -> [VMTypeCapabilities] {
        [
            VMTypeCapabilities(
                vmType: .default, guestMemfdFlags: KVMConstants.gmemFlagMmap | KVMConstants.gmemFlagInitShared,
                guestMemfd: true, memoryAttributes: 0, conversion: .sharedOnly)
        ]
            + coco.map {
                VMTypeCapabilities(
                    vmType: $0, guestMemfdFlags: KVMConstants.gmemFlagMmap, guestMemfd: true,
                    memoryAttributes: KVMConstants.memoryAttributePrivate, conversion: .vmAttributes)
            }
    }

    /// A 6.18-7.3 x86 host (or 7.4 with `gmem_in_place_conversion=0`) offering default VMs plus the given
    /// CoCo VM types, converted by per-VM attributes.
    private static func makeLinux618(
        name: String, coco: [VMType], inPlaceParameter: Bool? = nil,
        summary: String
    ) -> Capabilities {
        let types = linux618Types(coco)
        return Capabilities(
            name: name, summary: summary, guestMemfdFlagSet: .upstream, vmTypes: types,
            systemExtensions: extensions(
                [
                    KVMConstants.capMemoryAttributes: 8, KVMConstants.capPreFaultMemory: 1,
                    KVMConstants.capGuestMemfdFlags: 3,
                ], types: types),
            preFault: true, gmemInPlaceConversion: inPlaceParameter)
    }

    /// Linux 6.18-7.3 generic x86: mmap-able shared guest_memfd for default VMs; CoCo VMs convert by VM attributes.
    public static let linux618 = makeLinux618(
        name: "linux-6.18", coco: [.swProtected, .sevSnp, .tdx],
        summary:
            "Linux 6.18-7.3 x86 with SW_PROTECTED, SEV-SNP and TDX: MMAP|INIT_SHARED guest_memfd (shared only) for default VMs, VM attributes for CoCo VMs"
    )

    /// Exactly the development machines: PVM, shadow paging, default VMs only, no attributes.
    public static let linux618PVM: Capabilities = {
        let types = linux618Types([])
        return Capabilities(
            name: "linux-6.18-pvm",
            summary:
                "Linux 6.18 PVM (the development machines): default VMs only, MMAP|INIT_SHARED guest_memfd, no memory attributes, no TDP",
            guestMemfdFlagSet: .upstream, vmTypes: types,
            systemExtensions: extensions(
                [
                    KVMConstants.capMemoryAttributes: 0, KVMConstants.capPreFaultMemory: 0,
                    KVMConstants.capGuestMemfdFlags: 3,
                ], types: types),
            hugePageSizes: [2 << 20],
            preFault: false)
    }()

    public static let linux618SevSnp = makeLinux618(
        name: "linux-6.18-sev-snp", coco: [.sevSnp],
        summary: "Linux 6.18-7.3 on an AMD SEV-SNP host: default and SNP VMs, VM attributes")

    public static let linux618TDX = makeLinux618(
        name: "linux-6.18-tdx", coco: [.tdx],
        summary: "Linux 6.18-7.3 on an Intel TDX host: default and TDX VMs, VM attributes")

    /// Linux 7.4 with the in-place series and `kvm.gmem_in_place_conversion=0`: per-VM attributes as in
    /// 6.18; KVM_SET_MEMORY_ATTRIBUTES2 is ENOTTY and capability 250 reports 0.
    public static let linux74 = makeLinux618(
        name: "linux-7.4", coco: [.swProtected, .sevSnp, .tdx], inPlaceParameter: false,
        summary:
            "Linux 7.4 x86, kvm.gmem_in_place_conversion=0: per-VM attributes as in 6.18, no KVM_SET_MEMORY_ATTRIBUTES2"
    )

    public static let linux74SevSnp = makeLinux618(
        name: "linux-7.4-sev-snp", coco: [.sevSnp], inPlaceParameter: false,
        summary: "Linux 7.4 on an AMD SEV-SNP host, kvm.gmem_in_place_conversion=0: VM attributes")

    public static let linux74TDX = makeLinux618(
        name: "linux-7.4-tdx", coco: [.tdx], inPlaceParameter: false,
        summary: "Linux 7.4 on an Intel TDX host, kvm.gmem_in_place_conversion=0: VM attributes")

    /// The 2025 proof of concept (1G RFC v2 + QEMU POC): in-place conversion on the guest_memfd; VM
    /// attributes remain for legacy blocks.
    public static let gmemConvertPOC: Capabilities = {
        let pocFlags =
            KVMConstants.pocGmemFlagSupportShared | KVMConstants.pocGmemFlagInitPrivate
            | KVMConstants.pocGmemFlagHugetlb
        let types = [
            VMTypeCapabilities(
                vmType: .default, guestMemfdFlags: 0, guestMemfd: false, memoryAttributes: 0, conversion: .none),
            VMTypeCapabilities(
                vmType: .swProtected, guestMemfdFlags: pocFlags, guestMemfd: true,
                memoryAttributes: KVMConstants.memoryAttributePrivate, conversion: .gmemConvertPOC),
            VMTypeCapabilities(
                vmType: .tdx, guestMemfdFlags: pocFlags, guestMemfd: true,
                memoryAttributes: KVMConstants.memoryAttributePrivate, conversion: .gmemConvertPOC),
        ]
        return Capabilities(
            name: "gmem-convert-poc",
            summary:
                "2025 guest_memfd conversion POC (RFC v2 + QEMU POC): KVM_GMEM_CONVERT_* on the guest_memfd, caps 240-242 (collide with upstream ARM and RISC-V caps; opt-in only)",
            guestMemfdFlagSet: .poc2025, vmTypes: types,
            systemExtensions: extensions(
                [
                    KVMConstants.capMemoryAttributes: 8, KVMConstants.capPreFaultMemory: 1,
                    KVMConstants.capPOCGmemSharedMem: 1, KVMConstants.capPOCGmemConversion: 1,
                    KVMConstants.capPOCGmemHugetlb: 1,
                ], types: types),
            preFault: true)
    }()

    /// In-place mode: INIT_SHARED is allowed for CoCo VMs too, per-VM attributes report 0, capability 250
    /// reports PRIVATE where the VM type has private memory.
    private static func inPlaceTypes(_ coco: [VMType]) -> [VMTypeCapabilities] {
        [
            VMTypeCapabilities(
                vmType: .default, guestMemfdFlags: KVMConstants.gmemFlagMmap | KVMConstants.gmemFlagInitShared,
                guestMemfd: true, memoryAttributes: 0, conversion: .sharedOnly)
        ]
            + coco.map {
                VMTypeCapabilities(
                    vmType: $0, guestMemfdFlags: KVMConstants.gmemFlagMmap | KVMConstants.gmemFlagInitShared,
                    guestMemfd: true, memoryAttributes: 0, conversion: .gmemAttributes2)
            }
    }

    /// Linux 7.4 with `kvm.gmem_in_place_conversion=1`: per-guest_memfd attributes
    /// (`KVM_SET_MEMORY_ATTRIBUTES2` on the guest_memfd), every guest_memfd memslot guest_memfd-only.
    private static func makeInPlace(name: String, coco: [VMType], summary: String) -> Capabilities {
        let types = inPlaceTypes(coco)
        return Capabilities(
            name: name, summary: summary, guestMemfdFlagSet: .upstream, vmTypes: types,
            systemExtensions: extensions(
                [
                    KVMConstants.capMemoryAttributes: 0, KVMConstants.capPreFaultMemory: 1,
                    KVMConstants.capGuestMemfdFlags: 3, KVMConstants.capGuestMemfdMemoryAttributes: 8,
                ],
                types: types),
            preFault: true, gmemInPlaceConversion: true)
    }

    public static let linux74InPlace = makeInPlace(
        name: "linux-7.4-in-place", coco: [.swProtected, .sevSnp, .tdx],
        summary:
            "Linux 7.4 x86, kvm.gmem_in_place_conversion=1: KVM_SET_MEMORY_ATTRIBUTES2 on the guest_memfd, guest_memfd-only memslots (cap 250 unconfirmed)"
    )

    public static let linux74InPlaceSevSnp = makeInPlace(
        name: "linux-7.4-in-place-sev-snp", coco: [.sevSnp],
        summary: "Linux 7.4 on an AMD SEV-SNP host, kvm.gmem_in_place_conversion=1: in-place conversion")

    public static let linux74InPlaceTDX = makeInPlace(
        name: "linux-7.4-in-place-tdx", coco: [.tdx],
        summary: "Linux 7.4 on an Intel TDX host, kvm.gmem_in_place_conversion=1: in-place conversion")

    /// Kept for code that named the profiles by their ioctl (the alias names, same capabilities).
    public static var gmemAttributes2: Capabilities { named("gmem-attributes2") ?? linux74InPlace }
    public static var gmemAttributes2SevSnp: Capabilities { named("gmem-attributes2-sev-snp") ?? linux74InPlaceSevSnp }
}

/// A kernel's MAJOR.MINOR, as `uname -r` or a profile name begins ("6.18.44-fc-v1272" -> 6.18).
public struct KernelGeneration: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var major: Int
    public var minor: Int

    public init(major: Int, minor: Int) {
        self.major = major
        self.minor = minor
    }

    public init?(release: String) {
        let numbers = release.split(whereSeparator: { !$0.isNumber }).prefix(2).compactMap { Int($0) }
        guard numbers.count == 2, release.first?.isNumber == true else { return nil }
        self.init(major: numbers[0], minor: numbers[1])
    }

    /// One number that orders generations.
    var order: Int { major * 1000 + minor }

    public static func < (a: KernelGeneration, b: KernelGeneration) -> Bool { a.order < b.order }

    public var description: String { "\(major).\(minor)" }
}
