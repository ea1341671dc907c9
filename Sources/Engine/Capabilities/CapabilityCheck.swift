import Config

/// Checks a manifest against a host's capabilities (a probed kernel or a named profile) and says, for each
/// thing the host lacks, which capability is missing and which kernel feature provides it.
public enum CapabilityCheck {
    public static func check(_ manifest: Manifest, against caps: Capabilities) -> [Diagnostic] {
        check(manifest, against: caps, requestedStates: requestedStates(manifest))
    }

    /// As `check`, with the states each block is asked to be in already known (planning computes them anyway).
    static func check(
        _ manifest: Manifest, against caps: Capabilities, requestedStates layouts: [String: Set<MemoryState>]
    ) -> [Diagnostic] {
        var problems: [Diagnostic] = []
        let spec = manifest.spec
        let vmType = spec.vm.type
        guard let vm = caps.vmType(vmType) else {
            let offered = caps.vmTypes.map(\.vmType.rawValue).joined(separator: ", ")
            problems.append(
                manifest.diagnostic(
                    at: "spec.vm.type",
                    summary: "VM type \(vmType.rawValue) is not offered by \(caps.name)",
                    detail:
                        "KVM_CAP_VM_TYPES is 0x\(String(caps.vmTypesMask, radix: 16)) (\(offered)); \(vmTypeFeature(vmType))"
                ))
            return problems
        }
        for (index, block) in spec.blocks.enumerated() {
            let path = "spec.blocks[\(index)]"
            let states = layouts[block.name] ?? []
            if !vm.guestMemfd {
                problems.append(
                    manifest.diagnostic(
                        at: path,
                        summary:
                            "block \(block.name) needs a guest_memfd, which \(caps.name) does not allow on \(vmType.rawValue) VMs",
                        detail:
                            "KVM_CAP_GUEST_MEMFD is 0 on this VM type; guest_memfd for VMs without private memory needs Linux 6.18 (CONFIG_KVM_GUEST_MEMFD)"
                    ))
                continue
            }
            let resolved = BackendResolver.resolve(block, vm: vm, inPlaceMode: caps.inPlaceMode, layout: nil)
            let needsPrivate = states.contains(.private)
            switch resolved.backend {
            case .inPlace:
                problems += checkInPlace(
                    manifest, block: block, path: path, vm: vm, caps: caps, needsPrivate: needsPrivate)
            case .legacy(let shared):
                // kvm_gmem_prepare_memory_region sets KVM_MEMSLOT_GMEM_ONLY on every guest_memfd slot in this
                // mode, whatever the VM type, and a legacy block always binds its guest_memfd.
                if caps.inPlaceMode {
                    problems.append(
                        manifest.diagnostic(
                            at: path + ".backend.type",
                            summary:
                                "legacy block \(block.name) cannot work on \(caps.name): kvm.gmem_in_place_conversion=1 makes every guest_memfd memslot guest_memfd-only",
                            detail: legacyInPlaceModeDetail(vm)))
                } else if needsPrivate && !vm.conversion.canConvert {
                    problems.append(
                        manifest.diagnostic(
                            at: path + ".backend",
                            summary:
                                "block \(block.name) has private memory, but \(caps.name) cannot make memory private on \(vmType.rawValue) VMs",
                            detail:
                                "KVM_CAP_MEMORY_ATTRIBUTES is 0x\(String(vm.memoryAttributes, radix: 16)) (PRIVATE = 0x8 missing); per-VM private attributes need Linux 6.8+ with a VM type that has private memory (sw-protected, sev-snp, tdx)"
                        ))
                }
                if shared.source == .hugetlb, let pageSize = shared.pageSize {
                    problems += checkHugetlb(manifest, block: block, path: path, pageSize: pageSize, caps: caps)
                }
            }
        }
        problems += checkMemslots(manifest, caps: caps)
        problems += checkHugetlbAlignment(manifest, caps: caps)
        return problems
    }

    /// Memslots the host must hold: a mapping larger than one memslot is split (as QEMU's
    /// kvm_max_slot_size), so the count is of pieces; every piece must end below the MMU's maximum GFN.
    private static func checkMemslots(_ manifest: Manifest, caps: Capabilities) -> [Diagnostic] {
        var problems: [Diagnostic] = []
        var slots = 0
        for (index, mapping) in manifest.spec.mappings.enumerated() where mapping.size > 0 {
            slots += MemslotSplit.pieceCount(size: mapping.size, maxSize: caps.maxMemslotSize)
            let (end, overflow) = mapping.gpa.addingReportingOverflow(mapping.size)
            if overflow || end > caps.gpaLimit {
                problems.append(
                    manifest.diagnostic(
                        at: "spec.mappings[\(index)]",
                        summary:
                            "mapping \(formatHex(mapping.gpa))+\(formatSize(mapping.size)) ends beyond the highest guest-physical address of \(caps.name) (\(formatHex(caps.gpaLimit - 1)))",
                        detail:
                            "the MMU maps \(caps.physicalAddressBits)-bit guest-physical addresses (kvm_mmu_max_gfn; CPUID 0x80000008, /proc/cpuinfo \"address sizes\"): KVM_SET_USER_MEMORY_REGION2 is EINVAL; move the mapping below \(formatHex(caps.gpaLimit))"
                    ))
            }
        }
        if slots > caps.maxMemslots {
            problems.append(
                manifest.diagnostic(
                    at: "spec.mappings",
                    summary: "the mappings need \(slots) memslots, the host has \(caps.maxMemslots)",
                    detail:
                        "KVM_CAP_NR_MEMSLOTS is \(caps.maxMemslots); a memslot holds at most \(caps.maxMemslotDescription) (KVM_MEM_MAX_NR_PAGES), so a larger mapping takes one memslot per \(formatSize(MemslotSplit.pieceSize(maxSize: caps.maxMemslotSize))); merge adjacent mappings"
                ))
        }
        return problems
    }

    /// A hugetlb shared backing mapped at a GPA not aligned to its page size is mapped by KVM with 4 KiB
    /// pages only (the host page and the guest page must line up for a huge mapping).
    private static func checkHugetlbAlignment(_ manifest: Manifest, caps: Capabilities) -> [Diagnostic] {
        var problems: [Diagnostic] = []
        for (index, mapping) in manifest.spec.mappings.enumerated() {
            guard let block = manifest.spec.blocks.first(where: { $0.name == mapping.block }),
                block.backend.type != .inPlace, block.backend.shared.source == .hugetlb,
                let pageSize = block.backend.shared.pageSize, pageSize > caps.pageSize
            else { continue }
            // KVM maps a huge page only where the GPA and the host address agree modulo its size, level by
            // level (2 MiB, 1 GiB: x86's `kvm_alloc_memslot_metadata`); a hugetlb mapping starts huge-page
            // aligned, so the host address follows the file offset. The largest level that still agrees is
            // what the guest gets.
            func agrees(_ size: UInt64) -> Bool { mapping.gpa % size == mapping.offset % size }
            guard !agrees(pageSize) else { continue }
            let levels: [UInt64] = [1 << 30, 2 << 20].filter { $0 < pageSize }
            let mapped = levels.first(where: agrees) ?? caps.pageSize
            problems.append(
                manifest.diagnostic(
                    .warning, at: "spec.mappings[\(index)].gpa",
                    summary:
                        "mapping of hugetlb block \(block.name) at \(formatHex(mapping.gpa)) is not aligned to its \(formatSize(pageSize)) pages",
                    detail:
                        "KVM can then map it with \(formatSize(mapped)) pages only: \(pageSize / mapped) times the page-table entries and TLB misses of \(formatSize(pageSize)) pages; align gpa (and offset) to \(formatSize(pageSize))"
                ))
        }
        return problems
    }

    /// Why a legacy block fails in in-place mode, for its VM type.
    private static func legacyInPlaceModeDetail(_ vm: VMTypeCapabilities) -> String {
        let common =
            "guest faults, shared or private, are served from the guest_memfd, so the separate shared backing "
            + "(what the host and devices write) is never what the guest sees"
        if vm.vmType.hasPrivateMemory {
            return common + ", and per-VM attributes report 0; use backend: in-place (or auto)"
        }
        // A flags-0 guest_memfd starts private, and a VM without private memory cannot convert it (EINVAL).
        return common + "; the block's guest_memfd (flags 0) starts private and a \(vm.vmType.rawValue) VM cannot "
            + "convert it (KVM_SET_MEMORY_ATTRIBUTES2 is EINVAL without private memory); use backend: in-place "
            + "(or auto), a shared MMAP|INIT_SHARED guest_memfd"
    }

    private static func checkInPlace(
        _ manifest: Manifest, block: Block, path: String, vm: VMTypeCapabilities,
        caps: Capabilities, needsPrivate: Bool
    ) -> [Diagnostic] {
        let vmType = vm.vmType.rawValue
        if needsPrivate && !vm.conversion.convertsInPlace {
            return [
                manifest.diagnostic(
                    at: path + ".backend.type",
                    summary:
                        "in-place block \(block.name) has private memory, but \(caps.name) cannot convert a guest_memfd in place on \(vmType) VMs",
                    detail:
                        "conversion on this host is \(vm.conversion.rawValue); in-place conversion needs KVM_CAP_GMEM_CONVERSION (2025 POC, profile gmem-convert-poc) or KVM_CAP_GUEST_MEMFD_MEMORY_ATTRIBUTES (Linux 7.4 with kvm.gmem_in_place_conversion=1, profile linux-7.4-in-place); or use backend legacy"
                )
            ]
        }
        let wanted = BackendResolver.creation(backend: .inPlace, vm: vm, layout: nil).0
        let missing = wanted & ~vm.guestMemfdFlags
        if missing != 0 {
            let requested = KVMConstants.describeGuestMemfdFlags(wanted, in: caps.guestMemfdFlagSet)
            let supported = KVMConstants.describeGuestMemfdFlags(vm.guestMemfdFlags, in: caps.guestMemfdFlagSet)
            return [
                manifest.diagnostic(
                    at: path + ".backend.type",
                    summary:
                        "in-place block \(block.name) needs guest_memfd flags the host does not accept on \(vmType) VMs",
                    detail:
                        "requested flags \(requested), supported \(supported) (KVM_CAP_GUEST_MEMFD_FLAGS); an mmap-able shared guest_memfd needs Linux 6.18, and INIT_SHARED is offered only to VMs without private memory"
                )
            ]
        }
        return []
    }

    private static func checkHugetlb(
        _ manifest: Manifest, block: Block, path: String, pageSize: UInt64, caps: Capabilities
    ) -> [Diagnostic] {
        guard caps.hugePageSizes.contains(pageSize) else {
            let offered = caps.hugePageSizes.map { formatSize($0) }.joined(separator: ", ")
            return [
                manifest.diagnostic(
                    at: path + ".backend.shared.pageSize",
                    summary: "hugetlb page size \(formatSize(pageSize)) is not offered by \(caps.name)",
                    detail: "offered sizes: \(offered.isEmpty ? "none" : offered)")
            ]
        }
        guard let free = caps.hugePagesFree?[pageSize] else { return [] }
        let needed = block.size / pageSize
        guard needed > free else { return [] }
        let knob = "/sys/kernel/mm/hugepages/hugepages-\(pageSize / 1024)kB/nr_hugepages"
        return [
            manifest.diagnostic(
                at: path + ".backend.shared",
                summary:
                    "block \(block.name) needs \(needed) free \(formatSize(pageSize)) huge pages, the pool has \(free)",
                detail: "raise \(knob) by at least \(needed - free) before applying")
        ]
    }

    /// The states each block's mapped memory is asked to be in (conflicts are reported by validation).
    static func requestedStates(_ manifest: Manifest) -> [String: Set<MemoryState>] {
        let addressMap = AddressMap(mappings: manifest.spec.mappings)
        guard let layouts = try? DesiredState.blockLayouts(manifest: manifest, addressMap: addressMap) else {
            return [:]
        }
        return layouts.mapValues { Set($0.runs.map(\.value)) }
    }

    private static func vmTypeFeature(_ type: VMType) -> String {
        switch type {
        case .default: return "every KVM host offers default VMs"
        case .swProtected:
            return "sw-protected VMs need CONFIG_KVM_SW_PROTECTED_VM (Linux 6.8+, EXPERT) and the TDP MMU"
        case .sevSnp: return "SEV-SNP VMs need an AMD SEV-SNP host with kvm-amd (Linux 6.11+)"
        case .tdx: return "TDX VMs need an Intel TDX host with kvm-intel (Linux 6.16+)"
        }
    }
}
