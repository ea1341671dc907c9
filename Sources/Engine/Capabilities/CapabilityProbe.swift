import Config

#if canImport(Glibc)
import Glibc
#endif

/// Facts about the host that no ioctl answers: read from sysfs and procfs by `read()`, empty for a simulator.
public struct HostFacts: Sendable, Hashable {
    /// `/sys/module/kvm/parameters/gmem_in_place_conversion` (Y/N); nil where the parameter does not exist.
    public var gmemInPlaceConversion: Bool?
    /// "address sizes: N bits physical" of `/proc/cpuinfo` (CPUID 0x80000008 EAX[7:0]).
    public var physicalAddressBits: Int?
    /// `uname -r`: which generation to prefer when the capabilities fit several profiles equally well.
    public var kernelRelease: String?

    public init(gmemInPlaceConversion: Bool? = nil, physicalAddressBits: Int? = nil, kernelRelease: String? = nil) {
        self.gmemInPlaceConversion = gmemInPlaceConversion
        self.physicalAddressBits = physicalAddressBits
        self.kernelRelease = kernelRelease
    }

    public static func read(
        parameter: String = KVMConstants.gmemInPlaceConversionParameter,
        cpuinfo: String = "/proc/cpuinfo"
    ) -> HostFacts {
        var facts = HostFacts(kernelRelease: runningRelease())
        if let text = HostFiles.firstLine(parameter, containing: nil) {
            facts.gmemInPlaceConversion = text.hasPrefix("Y") || text.hasPrefix("1")
        }
        if let line = HostFiles.firstLine(cpuinfo, containing: "address sizes") {
            facts.physicalAddressBits = parsePhysicalBits(line)
        }
        return facts
    }

    /// The running kernel's release (`uname(2)`), e.g. "6.18.44-fc-v1272".
    static func runningRelease() -> String? {
        var names = utsname()
        guard uname(&names) == 0 else { return nil }
        let release = withUnsafeBytes(of: names.release) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
        return release.isEmpty ? nil : release
    }

    /// "address sizes\t: 48 bits physical, 48 bits virtual" -> 48.
    static func parsePhysicalBits(_ line: String) -> Int? {
        guard let colon = line.firstIndex(of: ":") else { return nil }
        let words = line[line.index(after: colon)...].split(separator: " ")
        guard let index = words.firstIndex(where: { $0.hasPrefix("physical") }), index >= 2, words[index - 1] == "bits"
        else {
            return nil
        }
        return Int(words[index - 2])
    }
}

/// Reads a kernel's capabilities through `KernelInterface`: `KVM_CHECK_EXTENSION` at system scope and on a
/// VM of every type the kernel accepts, plus behavioural probes of guest_memfd ioctls. Works the same on
/// the real kernel and on the simulator.
///
/// Behaviour first: the in-place ABI of Linux 7.4 is found by calling `KVM_SET_MEMORY_ATTRIBUTES2` on a
/// guest_memfd of every VM type with private memory (ENOTTY: absent; EINVAL: no private memory on that VM);
/// `kvm.gmem_in_place_conversion` and capability 250 (unconfirmed, and wanted by PowerPC too) only confirm.
/// The 2025 POC's capability numbers collide with released ARM ones, so it is looked for only on opt-in.
/// `evidence` records what each answer rests on.
public enum CapabilityProbe {
    public static func probe(
        _ kernel: KernelInterface, optIn: ConversionABI? = nil,
        hugepageDirectory: String? = nil, hostFacts: HostFacts = HostFacts()
    ) throws(KernelError) -> Capabilities {
        let extensionNumbers: [UInt32] = [
            KVMConstants.capNrMemslots, KVMConstants.capUserMemory2, KVMConstants.capMemoryFaultInfo,
            KVMConstants.capMemoryAttributes, KVMConstants.capGuestMemfd, KVMConstants.capVMTypes,
            KVMConstants.capPreFaultMemory, KVMConstants.capGuestMemfdFlags,
        ]
        var system: [UInt32: Int64] = [:]
        for number in extensionNumbers {
            system[number] = try kernel.checkExtension(number, vm: nil)
        }
        var evidence: [String] = []
        let typesMask = system[KVMConstants.capVMTypes] ?? 0
        let flagSet: GuestMemfdFlagSet =
            optIn == .gmemConvertPOC
            ? .poc2025 : (system[KVMConstants.capGuestMemfdFlags] ?? 0) != 0 ? .upstream : .none
        var types: [VMTypeCapabilities] = []
        for type in VMType.allCases {
            let offered = typesMask == 0 ? type == .default : typesMask & (1 << Int64(type.kvmValue)) != 0
            guard offered else { continue }
            types.append(try probeVMType(type, kernel: kernel, optIn: optIn, flagSet: flagSet, evidence: &evidence))
        }
        if types.contains(where: { $0.conversion == .gmemAttributes2 }) {  // capability 233 confirms the mode
            let cap = system[KVMConstants.capMemoryAttributes] ?? 0
            evidence.append(
                "per-VM attributes (capability 233) report \(cap) at system scope\(cap == 0 ? ", as the in-place mode says" : "")"
            )
        }
        var hugeSizes: [UInt64] = []
        var hugeFree: [UInt64: UInt64]?
        if let hugepageDirectory {
            let pools = HugepagePools.read(directory: hugepageDirectory)
            hugeSizes = pools.keys.sorted()
            hugeFree = pools
        }
        let convertsByAttributes2 = types.contains { $0.conversion == .gmemAttributes2 }
        var inPlaceMode = hostFacts.gmemInPlaceConversion
        switch inPlaceMode {
        case .some(let value):
            evidence.append(
                "kvm.gmem_in_place_conversion = \(value ? "Y" : "N") (\(KVMConstants.gmemInPlaceConversionParameter))")
            if value != convertsByAttributes2 {
                evidence.append("the parameter and the ioctl disagree; the ioctl's answer decides how memory converts")
            }
        case nil where convertsByAttributes2:
            // The ioctl only works in the in-place mode, so its success proves the mode.
            inPlaceMode = true
            evidence.append(
                "kvm.gmem_in_place_conversion: parameter unreadable; in-place mode deduced from KVM_SET_MEMORY_ATTRIBUTES2"
            )
        case nil:
            evidence.append("kvm.gmem_in_place_conversion: no such parameter (before Linux 7.4, or no private memory)")
        }
        let preFault = (system[KVMConstants.capPreFaultMemory] ?? 0) != 0
        let bits = physicalAddressBits(kernel: kernel, facts: hostFacts, evidence: &evidence)
        let slots = Int(system[KVMConstants.capNrMemslots] ?? 0)
        if let release = hostFacts.kernelRelease { evidence.append("kernel release: \(release) (uname)") }
        return Capabilities(
            name: "kvm", summary: "probed from the running kernel", pageSize: kernel.pageSize,
            guestMemfdFlagSet: flagSet,
            vmTypes: types, systemExtensions: system, hugePageSizes: hugeSizes, hugePagesFree: hugeFree,
            maxMemslots: slots > 0 ? slots : 32764, preFault: preFault,
            gmemInPlaceConversion: inPlaceMode, physicalAddressBits: bits, kernelRelease: hostFacts.kernelRelease,
            evidence: evidence)
    }

    /// `kvm_mmu_max_gfn`, asked of the kernel: a one-page memslot (no guest_memfd) whose last page is just
    /// below `2^bits` binds exactly when `bits` is within the limit (the MMU's physical-address width with
    /// TDP, 52 with shadow paging). Falls back to the CPU's width ("address sizes") if no slot binds.
    static func physicalAddressBits(kernel: KernelInterface, facts: HostFacts, evidence: inout [String]) -> Int {
        let page = kernel.pageSize
        if let vm = try? kernel.createVM(type: VMType.default.kvmValue) {
            defer { try? kernel.close(vm) }
            if let memory = try? kernel.mmap(fd: nil, length: page, offset: 0, shared: false, hugePageSize: nil) {
                defer { try? kernel.munmap(address: memory, length: page) }
                for bits in stride(from: 52, through: 32, by: -1) {
                    var region = MemoryRegion2(
                        slot: 0, flags: 0, guestPhysAddr: (1 << UInt64(bits)) - page, memorySize: page,
                        userspaceAddr: memory)
                    guard (try? kernel.setUserMemoryRegion2(vm: vm, region)) != nil else { continue }
                    region.memorySize = 0
                    try? kernel.setUserMemoryRegion2(vm: vm, region)
                    evidence.append(
                        "guest-physical limit: \(bits) bits (a one-page memslot ending at 2^\(bits) binds\(bits < 52 ? ", one bit higher is EINVAL" : ""))"
                    )
                    return bits
                }
            }
        }
        guard let cpu = facts.physicalAddressBits else {
            evidence.append("guest-physical limit: 52 bits (no memslot probe possible, no CPU address width known)")
            return 52
        }
        evidence.append(
            "guest-physical limit: \(cpu) bits (/proc/cpuinfo \"address sizes\"; no memslot probe possible)")
        return cpu
    }

    private static func probeVMType(
        _ type: VMType, kernel: KernelInterface, optIn: ConversionABI?,
        flagSet: GuestMemfdFlagSet, evidence: inout [String]
    ) throws(KernelError) -> VMTypeCapabilities {
        let vm = try kernel.createVM(type: type.kvmValue)
        defer { try? kernel.close(vm) }
        let flags = UInt64(max(0, try kernel.checkExtension(KVMConstants.capGuestMemfdFlags, vm: vm)))
        let attributes = UInt64(max(0, try kernel.checkExtension(KVMConstants.capMemoryAttributes, vm: vm)))
        // 6.18 reports CAP_GUEST_MEMFD=1 everywhere; 6.8-6.17 only on VMs with private memory. Confirm by
        // creating one: the answer that matters is whether the kernel takes it.
        var guestMemfd = try kernel.checkExtension(KVMConstants.capGuestMemfd, vm: vm) != 0
        if guestMemfd {
            if let fd = try? kernel.createGuestMemfd(vm: vm, size: kernel.pageSize, flags: 0) {
                try? kernel.close(fd)
            } else {
                guestMemfd = false
            }
        }
        var conversion: ConversionABI
        if attributes & KVMConstants.memoryAttributePrivate != 0 {
            conversion = .vmAttributes
        } else if flags & KVMConstants.gmemFlagInitShared != 0 {
            conversion = .sharedOnly
        } else {
            conversion = .none
        }
        var acceptedFlags = flags
        if guestMemfd, type.hasPrivateMemory, optIn != .gmemConvertPOC,
            try hasAttributes2(kernel: kernel, vm: vm, type: type, evidence: &evidence)
        {
            conversion = .gmemAttributes2
        } else if guestMemfd, optIn == .gmemConvertPOC, try hasPOCConversion(kernel: kernel, vm: vm) {
            conversion = .gmemConvertPOC
            acceptedFlags = KVMConstants.pocGmemFlagSupportShared | KVMConstants.pocGmemFlagInitPrivate
            // KVM_CAP_GMEM_HUGETLB (242, read only under this opt-in) offers the HUGETLB flag.
            if try kernel.checkExtension(KVMConstants.capPOCGmemHugetlb, vm: vm) != 0 {
                acceptedFlags |= KVMConstants.pocGmemFlagHugetlb
            }
            evidence.append(
                "\(type.rawValue): KVM_GMEM_CONVERT_SHARED of size 0 on a guest_memfd works (opted in; capabilities 240-241 set)"
            )
        }
        return VMTypeCapabilities(
            vmType: type, guestMemfdFlags: acceptedFlags, guestMemfd: guestMemfd,
            memoryAttributes: attributes, conversion: conversion)
    }

    /// KVM_SET_MEMORY_ATTRIBUTES2 to PRIVATE on a fresh (private) guest_memfd page: a no-op where the ioctl
    /// works; ENOTTY where it does not exist; EINVAL where the VM has no private memory.
    private static func hasAttributes2(
        kernel: KernelInterface, vm: Int32, type: VMType,
        evidence: inout [String]
    ) throws(KernelError) -> Bool {
        guard let gmem = try? kernel.createGuestMemfd(vm: vm, size: kernel.pageSize, flags: 0) else { return false }
        defer { try? kernel.close(gmem) }
        let cap = UInt64(max(0, try kernel.checkExtension(KVMConstants.capGuestMemfdMemoryAttributes, vm: vm)))
        let capPrivate = cap & KVMConstants.memoryAttributePrivate != 0
        // 250 may only confirm what the ioctl showed: it is not final, and PowerPC wants the number too.
        func capText(ioctlWorks: Bool) -> String {
            let named = capPrivate ? "PRIVATE" : "\(cap)"
            return capPrivate == ioctlWorks
                ? "capability 250 reports \(named), confirming"
                : "capability 250 reports \(named), which is not taken as evidence"
        }
        do {
            try kernel.setMemoryAttributes2(
                gmem: gmem, offset: 0, size: kernel.pageSize,
                attributes: KVMConstants.memoryAttributePrivate, flags: 0)
            evidence.append(
                "\(type.rawValue): KVM_SET_MEMORY_ATTRIBUTES2 on a guest_memfd works (in-place conversion); \(capText(ioctlWorks: true))"
            )
            return true
        } catch {
            let meaning =
                error.errno == .enotty
                ? "ENOTTY: no per-guest_memfd attributes"
                : error.errno == .einval
                    ? "EINVAL: this VM has no private memory in that ABI" : "\(error.errno ?? Errno(rawValue: 0))"
            evidence.append(
                "\(type.rawValue): KVM_SET_MEMORY_ATTRIBUTES2 on a guest_memfd: \(meaning); \(capText(ioctlWorks: false))"
            )
            return false
        }
    }

    /// Whether the 2025 POC's conversion ioctl exists and converts on this VM: capability first (opt-in
    /// only), then a size-0 conversion, a no-op where the ioctl exists, ENOTTY where it does not.
    private static func hasPOCConversion(kernel: KernelInterface, vm: Int32) throws(KernelError) -> Bool {
        let shared = try kernel.checkExtension(KVMConstants.capPOCGmemSharedMem, vm: vm)
        let convert = try kernel.checkExtension(KVMConstants.capPOCGmemConversion, vm: vm)
        guard shared != 0, convert != 0 else { return false }
        guard
            let gmem = try? kernel.createGuestMemfd(
                vm: vm, size: kernel.pageSize,
                flags: KVMConstants.pocGmemFlagSupportShared | KVMConstants.pocGmemFlagInitPrivate)
        else { return false }
        defer { try? kernel.close(gmem) }
        do {
            try kernel.gmemConvert(gmem: gmem, offset: 0, size: 0, toPrivate: false)
            return true
        } catch {
            return error.errno != .enotty
        }
    }

    /// The built-in profile nearest to `caps` by `distance` (fewest deviations). A tie is broken by generation:
    /// the newest one not newer than the running kernel (`caps.kernelRelease`), else the oldest one newer than
    /// it; without a release, the newest. Profiles of one generation keep their list order; a profile without
    /// a generation (the 2025 POC) comes last.
    public static func nearestProfile(_ caps: Capabilities, distance: (Capabilities) -> Int) -> Capabilities? {
        let release = caps.kernelRelease.flatMap(KernelGeneration.init(release:))
        func rank(_ profile: Capabilities) -> (Int, Int) {
            guard let generation = Profiles.generation(of: profile) else { return (2, 0) }
            guard let release else { return (0, -generation.order) }
            return generation <= release ? (0, -generation.order) : (1, generation.order)
        }
        let ranked = Profiles.all.enumerated().map {
            (index: $0.offset, profile: $0.element, distance: distance($0.element))
        }
        return ranked.min { a, b in
            let (ra, rb) = (rank(a.profile), rank(b.profile))
            return (a.distance, ra.0, ra.1, a.index) < (b.distance, rb.0, rb.1, b.index)
        }?.profile
    }

    /// The built-in profile whose kernel-visible capabilities equal `caps`, if any.
    public static func matchingProfile(_ caps: Capabilities) -> Capabilities? {
        let compared: [UInt32] = [
            KVMConstants.capUserMemory2, KVMConstants.capMemoryAttributes, KVMConstants.capGuestMemfd,
            KVMConstants.capVMTypes, KVMConstants.capPreFaultMemory, KVMConstants.capGuestMemfdFlags,
        ]
        return Profiles.all.first { profile in
            profile.vmTypes == caps.vmTypes && profile.guestMemfdFlagSet == caps.guestMemfdFlagSet
                && profile.gmemInPlaceConversion == caps.gmemInPlaceConversion
                && compared.allSatisfy { profile.systemExtension($0) == caps.systemExtension($0) }
        }
    }
}

/// The host's hugetlb pools: free pages per page size, from `/sys/kernel/mm/hugepages/hugepages-*kB`.
public enum HugepagePools {
    public static let defaultDirectory = "/sys/kernel/mm/hugepages"

    public static func read(directory: String) -> [UInt64: UInt64] {
        var pools: [UInt64: UInt64] = [:]
        guard let dir = opendir(directory) else { return pools }
        defer { closedir(dir) }
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            guard name.hasPrefix("hugepages-"), name.hasSuffix("kB"),
                let kib = UInt64(name.dropFirst("hugepages-".count).dropLast(2))
            else { continue }
            let free = readNumber("\(directory)/\(name)/free_hugepages") ?? 0
            pools[kib * 1024] = free
        }
        return pools
    }

    private static func readNumber(_ path: String) -> UInt64? {
        HostFiles.firstLine(path, containing: nil).flatMap { UInt64($0.filter { $0.isNumber }) }
    }
}

/// Small text files of procfs and sysfs.
enum HostFiles {
    /// The first line of `path` (containing `needle`, if given), without its newline; nil if unreadable.
    static func firstLine(_ path: String, containing needle: String?) -> String? {
        guard let file = fopen(path, "r") else { return nil }
        defer { fclose(file) }
        var buffer = [CChar](repeating: 0, count: 512)
        while fgets(&buffer, Int32(buffer.count), file) != nil {
            let line = String(
                decoding: buffer.prefix { $0 != 0 && $0 != 10 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            if needle.map({ line.contains($0) }) ?? true { return line }
        }
        return nil
    }
}
