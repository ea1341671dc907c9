import Config

/// Checks a manifest against a host's capabilities (a probed kernel or a named profile) and says, for each
/// thing the host lacks, which capability is missing and which kernel feature provides it.
public enum CapabilityCheck {
    public static func check(_ manifest: Manifest, against caps: Capabilities) -> [Diagnostic] {
        check(manifest, against: caps, requestedStates: requestedStates(manifest))
    }

    /// As `check`, with the states each block is asked to be in already known (planning computes them anyway).
    static func check(_ manifest: Manifest, against caps: Capabilities, requestedStates layouts: [String: Set<MemoryState>]) -> [Diagnostic] {
        var problems: [Diagnostic] = []
        let spec = manifest.spec
        let vmType = spec.vm.type
        guard let vm = caps.vmType(vmType) else {
            let offered = caps.vmTypes.map(\.vmType.rawValue).joined(separator: ", ")
            problems.append(manifest.diagnostic(
                at: "spec.vm.type",
                summary: "VM type \(vmType.rawValue) is not offered by \(caps.name)",
                detail: "KVM_CAP_VM_TYPES is 0x\(String(caps.vmTypesMask, radix: 16)) (\(offered)); \(vmTypeFeature(vmType))"))
            return problems
        }
        for (index, block) in spec.blocks.enumerated() {
            let path = "spec.blocks[\(index)]"
            let states = layouts[block.name] ?? []
            if !vm.guestMemfd {
                problems.append(manifest.diagnostic(
                    at: path, summary: "block \(block.name) needs a guest_memfd, which \(caps.name) does not allow on \(vmType.rawValue) VMs",
                    detail: "KVM_CAP_GUEST_MEMFD is 0 on this VM type; guest_memfd for VMs without private memory needs Linux 6.18 (CONFIG_KVM_GUEST_MEMFD)"))
                continue
            }
            let resolved = BackendResolver.resolve(block, vm: vm, layout: nil)
            let needsPrivate = states.contains(.private)
            switch resolved.backend {
            case .inPlace:
                problems += checkInPlace(manifest, block: block, path: path, vm: vm, caps: caps, needsPrivate: needsPrivate)
            case .legacy(let shared):
                if needsPrivate && !vm.conversion.canConvert {
                    problems.append(manifest.diagnostic(
                        at: path + ".backend", summary: "block \(block.name) has private memory, but \(caps.name) cannot make memory private on \(vmType.rawValue) VMs",
                        detail: "KVM_CAP_MEMORY_ATTRIBUTES is 0x\(String(vm.memoryAttributes, radix: 16)) (PRIVATE = 0x8 missing); per-VM private attributes need Linux 6.8+ with a VM type that has private memory (sw-protected, sev-snp, tdx)"))
                }
                if shared.source == .hugetlb, let pageSize = shared.pageSize {
                    problems += checkHugetlb(manifest, block: block, path: path, pageSize: pageSize, caps: caps)
                }
            }
        }
        let slots = spec.mappings.count
        if slots > caps.maxMemslots {
            problems.append(manifest.diagnostic(
                at: "spec.mappings", summary: "\(slots) mappings exceed the host's \(caps.maxMemslots) memslots",
                detail: "KVM_CAP_NR_MEMSLOTS is \(caps.maxMemslots); merge adjacent mappings"))
        }
        return problems
    }

    private static func checkInPlace(_ manifest: Manifest, block: Block, path: String, vm: VMTypeCapabilities,
                                     caps: Capabilities, needsPrivate: Bool) -> [Diagnostic] {
        let vmType = vm.vmType.rawValue
        if needsPrivate && !vm.conversion.convertsInPlace {
            return [manifest.diagnostic(
                at: path + ".backend.type",
                summary: "in-place block \(block.name) has private memory, but \(caps.name) cannot convert a guest_memfd in place on \(vmType) VMs",
                detail: "conversion on this host is \(vm.conversion.rawValue); in-place conversion needs KVM_CAP_GMEM_CONVERSION (2025 POC, profile gmem-convert-poc) or KVM_CAP_GUEST_MEMFD_MEMORY_ATTRIBUTES (2026 series, profile gmem-attributes2); or use backend legacy")]
        }
        let wanted = BackendResolver.creation(backend: .inPlace, vm: vm, layout: nil).0
        let missing = wanted & ~vm.guestMemfdFlags
        if missing != 0 {
            let requested = KVMConstants.describeGuestMemfdFlags(wanted, in: caps.guestMemfdFlagSet)
            let supported = KVMConstants.describeGuestMemfdFlags(vm.guestMemfdFlags, in: caps.guestMemfdFlagSet)
            return [manifest.diagnostic(
                at: path + ".backend.type",
                summary: "in-place block \(block.name) needs guest_memfd flags the host does not accept on \(vmType) VMs",
                detail: "requested flags \(requested), supported \(supported) (KVM_CAP_GUEST_MEMFD_FLAGS); an mmap-able shared guest_memfd needs Linux 6.18, and INIT_SHARED is offered only to VMs without private memory")]
        }
        return []
    }

    private static func checkHugetlb(_ manifest: Manifest, block: Block, path: String, pageSize: UInt64, caps: Capabilities) -> [Diagnostic] {
        guard caps.hugePageSizes.contains(pageSize) else {
            let offered = caps.hugePageSizes.map { formatSize($0) }.joined(separator: ", ")
            return [manifest.diagnostic(
                at: path + ".backend.shared.pageSize", summary: "hugetlb page size \(formatSize(pageSize)) is not offered by \(caps.name)",
                detail: "offered sizes: \(offered.isEmpty ? "none" : offered)")]
        }
        guard let free = caps.hugePagesFree?[pageSize] else { return [] }
        let needed = block.size / pageSize
        guard needed > free else { return [] }
        let knob = "/sys/kernel/mm/hugepages/hugepages-\(pageSize / 1024)kB/nr_hugepages"
        return [manifest.diagnostic(
            at: path + ".backend.shared", summary: "block \(block.name) needs \(needed) free \(formatSize(pageSize)) huge pages, the pool has \(free)",
            detail: "raise \(knob) by at least \(needed - free) before applying")]
    }

    /// The states each block's mapped memory is asked to be in (conflicts are reported by validation).
    static func requestedStates(_ manifest: Manifest) -> [String: Set<MemoryState>] {
        let addressMap = AddressMap(mappings: manifest.spec.mappings)
        guard let layouts = try? DesiredState.blockLayouts(manifest: manifest, addressMap: addressMap) else { return [:] }
        return layouts.mapValues { Set($0.runs.map(\.value)) }
    }

    private static func vmTypeFeature(_ type: VMType) -> String {
        switch type {
        case .default: return "every KVM host offers default VMs"
        case .swProtected: return "sw-protected VMs need CONFIG_KVM_SW_PROTECTED_VM (Linux 6.8+, EXPERT) and the TDP MMU"
        case .sevSnp: return "SEV-SNP VMs need an AMD SEV-SNP host with kvm-amd (Linux 6.11+)"
        case .tdx: return "TDX VMs need an Intel TDX host with kvm-intel (Linux 6.16+)"
        }
    }
}
