import Config
#if canImport(Glibc)
import Glibc
#endif

/// Reads a kernel's capabilities through `KernelInterface`: `KVM_CHECK_EXTENSION` at system scope and on a
/// VM of every type the kernel accepts, plus behavioural probes of guest_memfd ioctls. Works the same on
/// the real kernel and on the simulator.
///
/// Capability numbers of unmerged ABIs collide with released ones (the POC's 240-242 are ARM capabilities
/// upstream), so those ABIs are looked for only when the caller opts in, and then confirmed by behaviour:
/// an ioctl on a guest_memfd answers ENOTTY where no such ioctl exists.
public enum CapabilityProbe {
    public static func probe(_ kernel: KernelInterface, optIn: ConversionABI? = nil,
                             hugepageDirectory: String? = nil) throws(KernelError) -> Capabilities {
        let extensionNumbers: [UInt32] = [
            KVMConstants.capNrMemslots, KVMConstants.capUserMemory2, KVMConstants.capMemoryFaultInfo,
            KVMConstants.capMemoryAttributes, KVMConstants.capGuestMemfd, KVMConstants.capVMTypes,
            KVMConstants.capPreFaultMemory, KVMConstants.capGuestMemfdFlags,
        ]
        var system: [UInt32: Int64] = [:]
        for number in extensionNumbers {
            system[number] = try kernel.checkExtension(number, vm: nil)
        }
        let typesMask = system[KVMConstants.capVMTypes] ?? 0
        let flagSet: GuestMemfdFlagSet = optIn == .gmemConvertPOC ? .poc2025 : (system[KVMConstants.capGuestMemfdFlags] ?? 0) != 0 ? .upstream : .none
        var types: [VMTypeCapabilities] = []
        for type in VMType.allCases {
            let offered = typesMask == 0 ? type == .default : typesMask & (1 << Int64(type.kvmValue)) != 0
            guard offered else { continue }
            types.append(try probeVMType(type, kernel: kernel, optIn: optIn, flagSet: flagSet))
        }
        var hugeSizes: [UInt64] = []
        var hugeFree: [UInt64: UInt64]?
        if let hugepageDirectory {
            let pools = HugepagePools.read(directory: hugepageDirectory)
            hugeSizes = pools.keys.sorted()
            hugeFree = pools
        }
        let slots = Int(system[KVMConstants.capNrMemslots] ?? 0)
        return Capabilities(
            name: "kvm", summary: "probed from the running kernel", pageSize: kernel.pageSize, guestMemfdFlagSet: flagSet,
            vmTypes: types, systemExtensions: system, hugePageSizes: hugeSizes, hugePagesFree: hugeFree,
            maxMemslots: slots > 0 ? slots : 32764, preFault: (system[KVMConstants.capPreFaultMemory] ?? 0) != 0)
    }

    private static func probeVMType(_ type: VMType, kernel: KernelInterface, optIn: ConversionABI?,
                                    flagSet: GuestMemfdFlagSet) throws(KernelError) -> VMTypeCapabilities {
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
        if guestMemfd, let optIn, optIn.convertsInPlace,
           try hasGuestMemfdConversion(optIn, kernel: kernel, vm: vm) {
            conversion = optIn
            if optIn == .gmemConvertPOC {
                acceptedFlags = KVMConstants.pocGmemFlagSupportShared | KVMConstants.pocGmemFlagInitPrivate
                // KVM_CAP_GMEM_HUGETLB (242, read only under this opt-in) offers the HUGETLB flag.
                if try kernel.checkExtension(KVMConstants.capPOCGmemHugetlb, vm: vm) != 0 {
                    acceptedFlags |= KVMConstants.pocGmemFlagHugetlb
                }
            }
        }
        return VMTypeCapabilities(vmType: type, guestMemfdFlags: acceptedFlags, guestMemfd: guestMemfd,
                                  memoryAttributes: attributes, conversion: conversion)
    }

    /// Whether the opted-in conversion ioctl exists and converts on this VM: capability first, then behaviour.
    private static func hasGuestMemfdConversion(_ abi: ConversionABI, kernel: KernelInterface, vm: Int32) throws(KernelError) -> Bool {
        switch abi {
        case .gmemConvertPOC:
            let shared = try kernel.checkExtension(KVMConstants.capPOCGmemSharedMem, vm: vm)
            let convert = try kernel.checkExtension(KVMConstants.capPOCGmemConversion, vm: vm)
            guard shared != 0, convert != 0 else { return false }
            guard let gmem = try? kernel.createGuestMemfd(
                vm: vm, size: kernel.pageSize,
                flags: KVMConstants.pocGmemFlagSupportShared | KVMConstants.pocGmemFlagInitPrivate) else { return false }
            defer { try? kernel.close(gmem) }
            // A size-0 conversion is a no-op where the ioctl exists, ENOTTY where it does not.
            do {
                try kernel.gmemConvert(gmem: gmem, offset: 0, size: 0, toPrivate: false)
                return true
            } catch {
                return error.errno != .enotty
            }
        case .gmemAttributes2:
            let value = try kernel.checkExtension(KVMConstants.capGuestMemfdMemoryAttributes, vm: vm)
            guard UInt64(max(0, value)) & KVMConstants.memoryAttributePrivate != 0 else { return false }
            guard let gmem = try? kernel.createGuestMemfd(vm: vm, size: kernel.pageSize, flags: KVMConstants.gmemFlagMmap) else { return false }
            defer { try? kernel.close(gmem) }
            do {
                // Already private: a no-op where the ioctl works.
                try kernel.setMemoryAttributes2(gmem: gmem, offset: 0, size: kernel.pageSize,
                                                attributes: KVMConstants.memoryAttributePrivate, flags: 0)
                return true
            } catch {
                return error.errno != .enotty
            }
        default:
            return false
        }
    }

    /// The built-in profile whose kernel-visible capabilities equal `caps`, if any.
    public static func matchingProfile(_ caps: Capabilities) -> Capabilities? {
        let compared: [UInt32] = [
            KVMConstants.capUserMemory2, KVMConstants.capMemoryAttributes, KVMConstants.capGuestMemfd,
            KVMConstants.capVMTypes, KVMConstants.capPreFaultMemory, KVMConstants.capGuestMemfdFlags,
        ]
        return Profiles.all.first { profile in
            profile.vmTypes == caps.vmTypes && profile.guestMemfdFlagSet == caps.guestMemfdFlagSet
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
                  let kib = UInt64(name.dropFirst("hugepages-".count).dropLast(2)) else { continue }
            let free = readNumber("\(directory)/\(name)/free_hugepages") ?? 0
            pools[kib * 1024] = free
        }
        return pools
    }

    private static func readNumber(_ path: String) -> UInt64? {
        guard let file = fopen(path, "r") else { return nil }
        defer { fclose(file) }
        var buffer = [CChar](repeating: 0, count: 64)
        guard fgets(&buffer, Int32(buffer.count), file) != nil else { return nil }
        let text = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return UInt64(text.filter { $0.isNumber })
    }
}
