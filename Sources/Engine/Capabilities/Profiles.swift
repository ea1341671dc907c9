import Config

/// Built-in kernel profiles: named capability sets of kernel generations, for offline checks and for the
/// simulator. Values follow kvm-uapi.md (sections 1.2-1.9, 2 and 3); where a value of an unmerged series is
/// uncertain, the profile says so in its summary.
public enum Profiles {
    public static let all: [Capabilities] = [
        linux68, linux618, linux618PVM, linux618SevSnp, linux618TDX,
        gmemConvertPOC, gmemAttributes2, gmemAttributes2SevSnp,
    ]

    public static func named(_ name: String) -> Capabilities? { all.first { $0.name == name } }

    public static var names: [String] { all.map(\.name) }

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

    /// Linux 6.8-6.17: guest_memfd only for VMs with private memory; per-VM attributes convert.
    public static let linux68: Capabilities = {
        let types = [
            VMTypeCapabilities(vmType: .default, guestMemfdFlags: 0, guestMemfd: false, memoryAttributes: 0, conversion: .none),
            VMTypeCapabilities(vmType: .swProtected, guestMemfdFlags: 0, guestMemfd: true,
                               memoryAttributes: KVMConstants.memoryAttributePrivate, conversion: .vmAttributes),
        ]
        return Capabilities(
            name: "linux-6.8",
            summary: "Linux 6.8-6.17 x86 with CONFIG_KVM_SW_PROTECTED_VM: guest_memfd (flags 0) for private VMs, per-VM attributes",
            guestMemfdFlagSet: .none, vmTypes: types,
            systemExtensions: extensions([KVMConstants.capMemoryAttributes: 8, KVMConstants.capPreFaultMemory: 1], types: types),
            preFault: true)
    }()

    private static func linux618Types(_ coco: [VMType]) -> [VMTypeCapabilities] {
        [VMTypeCapabilities(vmType: .default, guestMemfdFlags: KVMConstants.gmemFlagMmap | KVMConstants.gmemFlagInitShared,
                            guestMemfd: true, memoryAttributes: 0, conversion: .sharedOnly)]
            + coco.map {
                VMTypeCapabilities(vmType: $0, guestMemfdFlags: KVMConstants.gmemFlagMmap, guestMemfd: true,
                                   memoryAttributes: KVMConstants.memoryAttributePrivate, conversion: .vmAttributes)
            }
    }

    /// A Linux 6.18 x86 host offering default VMs plus the given CoCo VM types (with VM attributes).
    private static func makeLinux618(name: String, coco: [VMType], summary: String) -> Capabilities {
        let types = linux618Types(coco)
        return Capabilities(
            name: name, summary: summary, guestMemfdFlagSet: .upstream, vmTypes: types,
            systemExtensions: extensions([KVMConstants.capMemoryAttributes: 8, KVMConstants.capPreFaultMemory: 1,
                                          KVMConstants.capGuestMemfdFlags: 3], types: types),
            preFault: true)
    }

    /// Linux 6.18 generic x86: mmap-able shared guest_memfd for default VMs; CoCo VMs convert by VM attributes.
    public static let linux618 = makeLinux618(
        name: "linux-6.18", coco: [.swProtected, .sevSnp, .tdx],
        summary: "Linux 6.18 x86 with SW_PROTECTED, SEV-SNP and TDX: MMAP|INIT_SHARED guest_memfd (shared only) for default VMs, VM attributes for CoCo VMs")

    /// Exactly the development machines (kvm-uapi.md 1.9): PVM, shadow paging, default VMs only, no attributes.
    public static let linux618PVM: Capabilities = {
        let types = linux618Types([])
        return Capabilities(
            name: "linux-6.18-pvm",
            summary: "Linux 6.18 PVM (the development machines): default VMs only, MMAP|INIT_SHARED guest_memfd, no memory attributes, no TDP",
            guestMemfdFlagSet: .upstream, vmTypes: types,
            systemExtensions: extensions([KVMConstants.capMemoryAttributes: 0, KVMConstants.capPreFaultMemory: 0,
                                          KVMConstants.capGuestMemfdFlags: 3], types: types),
            hugePageSizes: [2 << 20],
            preFault: false)
    }()

    public static let linux618SevSnp = makeLinux618(
        name: "linux-6.18-sev-snp", coco: [.sevSnp],
        summary: "Linux 6.18 on an AMD SEV-SNP host: default and SNP VMs, VM attributes")

    public static let linux618TDX = makeLinux618(
        name: "linux-6.18-tdx", coco: [.tdx],
        summary: "Linux 6.18 on an Intel TDX host: default and TDX VMs, VM attributes")

    /// The 2025 proof of concept (1G RFC v2 + QEMU POC): in-place conversion on the guest_memfd; VM
    /// attributes remain for legacy blocks.
    public static let gmemConvertPOC: Capabilities = {
        let pocFlags = KVMConstants.pocGmemFlagSupportShared | KVMConstants.pocGmemFlagInitPrivate | KVMConstants.pocGmemFlagHugetlb
        let types = [
            VMTypeCapabilities(vmType: .default, guestMemfdFlags: 0, guestMemfd: false, memoryAttributes: 0, conversion: .none),
            VMTypeCapabilities(vmType: .swProtected, guestMemfdFlags: pocFlags, guestMemfd: true,
                               memoryAttributes: KVMConstants.memoryAttributePrivate, conversion: .gmemConvertPOC),
            VMTypeCapabilities(vmType: .tdx, guestMemfdFlags: pocFlags, guestMemfd: true,
                               memoryAttributes: KVMConstants.memoryAttributePrivate, conversion: .gmemConvertPOC),
        ]
        return Capabilities(
            name: "gmem-convert-poc",
            summary: "2025 guest_memfd conversion POC (RFC v2 + QEMU POC): KVM_GMEM_CONVERT_* on the guest_memfd, caps 240-242 (collide with upstream ARM caps; opt-in only)",
            guestMemfdFlagSet: .poc2025, vmTypes: types,
            systemExtensions: extensions([KVMConstants.capMemoryAttributes: 8, KVMConstants.capPreFaultMemory: 1,
                                          KVMConstants.capPOCGmemSharedMem: 1, KVMConstants.capPOCGmemConversion: 1,
                                          KVMConstants.capPOCGmemHugetlb: 1], types: types),
            preFault: true)
    }()

    private static func attributes2Types(_ coco: [VMType]) -> [VMTypeCapabilities] {
        [VMTypeCapabilities(vmType: .default, guestMemfdFlags: KVMConstants.gmemFlagMmap | KVMConstants.gmemFlagInitShared,
                            guestMemfd: true, memoryAttributes: 0, conversion: .sharedOnly)]
            + coco.map {
                VMTypeCapabilities(vmType: $0, guestMemfdFlags: KVMConstants.gmemFlagMmap | KVMConstants.gmemFlagInitShared,
                                   guestMemfd: true, memoryAttributes: 0, conversion: .gmemAttributes2)
            }
    }

    /// A host running the 2026 in-place conversion series (v8 numbers, gmem_in_place_conversion=1): per-gmem
    /// attributes, `KVM_SET_MEMORY_ATTRIBUTES2` on the guest_memfd; per-VM attributes report 0.
    private static func makeAttributes2(name: String, coco: [VMType], summary: String) -> Capabilities {
        let types = attributes2Types(coco)
        return Capabilities(
            name: name, summary: summary, guestMemfdFlagSet: .upstream, vmTypes: types,
            systemExtensions: extensions([KVMConstants.capMemoryAttributes: 0, KVMConstants.capPreFaultMemory: 1,
                                          KVMConstants.capGuestMemfdFlags: 3, KVMConstants.capGuestMemfdMemoryAttributes: 8],
                                         types: types),
            preFault: true)
    }

    public static let gmemAttributes2 = makeAttributes2(
        name: "gmem-attributes2", coco: [.swProtected, .tdx],
        summary: "2026 in-place conversion series (v8 uAPI, cap 250 unconfirmed upstream): KVM_SET_MEMORY_ATTRIBUTES2 on the guest_memfd")

    public static let gmemAttributes2SevSnp = makeAttributes2(
        name: "gmem-attributes2-sev-snp", coco: [.sevSnp],
        summary: "2026 in-place conversion series on an AMD SEV-SNP host (convert-in-place=on)")
}
