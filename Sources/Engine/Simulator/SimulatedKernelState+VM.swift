import Config
import GmemCore

/// `KVM_CHECK_EXTENSION`, `KVM_CREATE_VM`, `KVM_CREATE_GUEST_MEMFD`, `memfd_create` and `close`
/// (docs/kernels.md, the generations table).
extension SimulatedKernelState {
    func checkExtension(_ capability: UInt32, vm fd: Int32?) throws(KernelError) -> Int64 {
        guard let fd else { return capabilities.systemExtension(capability) }
        let descriptor = try descriptor(fd)
        switch descriptor {
        case .kvmDevice: return capabilities.systemExtension(capability)
        case .file: throw Self.unsupportedIoctl(on: descriptor)
        case .vm:
            return vmExtension(capability, typeCapabilities(of: try vmForIoctl(fd)))
        }
    }

    /// VM scope: the per-type answers of the profile; everything else as at system scope.
    private func vmExtension(_ capability: UInt32, _ type: VMTypeCapabilities) -> Int64 {
        let system = capabilities.systemExtension(capability)
        switch capability {
        case KVMConstants.capMemoryAttributes:
            return Int64(type.memoryAttributes)
        case KVMConstants.capGuestMemfd:
            // [6.8] only VMs with private memory report it; 6.18: every VM.
            return system != 0 && type.guestMemfd ? 1 : 0
        case KVMConstants.capGuestMemfdFlags:
            return system != 0 ? Int64(type.guestMemfdFlags) : 0
        case KVMConstants.capGuestMemfdMemoryAttributes:
            return type.conversion == .gmemAttributes2 ? system : 0
        case KVMConstants.capPOCGmemSharedMem, KVMConstants.capPOCGmemConversion:
            guard capabilities.guestMemfdFlagSet == .poc2025 else { return system }
            return type.guestMemfdFlags & KVMConstants.pocGmemFlagSupportShared != 0 ? system : 0
        case KVMConstants.capPOCGmemHugetlb:
            guard capabilities.guestMemfdFlagSet == .poc2025 else { return system }
            return type.guestMemfdFlags & KVMConstants.pocGmemFlagHugetlb != 0 ? system : 0
        default:
            return system
        }
    }

    mutating func createVM(type: UInt64) throws(KernelError) -> Int32 {
        // `type >= 32 || !(supported_vm_types & BIT(type))` -> EINVAL.
        guard type < 32, let vmType = VMType(kvmValue: type), capabilities.vmType(vmType) != nil else {
            throw .simulated(SimErrno.einval)
        }
        let id = newObjectID()
        vms[id] = SimVM(id: id, type: vmType)
        return install(.vm(id))
    }

    /// Whether the kernel has guest_memfd at all (else the ioctl falls through to the arch: ENOTTY).
    var hasGuestMemfd: Bool {
        capabilities.systemExtension(KVMConstants.capGuestMemfd) != 0 || capabilities.vmTypes.contains { $0.guestMemfd }
    }

    mutating func createGuestMemfd(vm fd: Int32, size: UInt64, flags: UInt64) throws(KernelError) -> Int32 {
        let vm = try vmForIoctl(fd)
        guard hasGuestMemfd else { throw .simulated(SimErrno.enotty) }
        let type = typeCapabilities(of: vm)
        let hugePageSize = try checkGuestMemfdFlags(flags, supported: type.guestMemfdFlags)
        // `size <= 0 || !PAGE_ALIGNED(size)` (size is a signed loff_t).
        guard size > 0, size <= UInt64(Int64.max), SimMath.isAligned(size, pageSize) else {
            throw .simulated(SimErrno.einval)
        }
        if let hugePageSize, !SimMath.isAligned(size, hugePageSize) { throw .simulated(SimErrno.einval) }

        let initiallyShared: Bool
        let mappable: Bool
        switch capabilities.guestMemfdFlagSet {
        case .none:
            initiallyShared = false
            mappable = false
        case .upstream:
            initiallyShared = flags & KVMConstants.gmemFlagInitShared != 0
            mappable = flags & KVMConstants.gmemFlagMmap != 0
        case .poc2025:
            mappable = flags & KVMConstants.pocGmemFlagSupportShared != 0
            initiallyShared = mappable && flags & KVMConstants.pocGmemFlagInitPrivate == 0
        }
        let id = newObjectID()
        let gmem = SimGuestMemfd(
            vm: vm.id, flags: flags,
            state: .filled(0..<size, with: initiallyShared ? .shared : .private), mappable: mappable)
        files[id] = SimFile(
            id: id, kind: .guestMemfd, name: "anon_inode:[kvm-gmem]", size: size,
            hugePageSize: hugePageSize, gmem: gmem)
        return install(.file(id))
    }

    /// `flags & ~supported` -> EINVAL; the POC adds INIT_PRIVATE-needs-SUPPORT_SHARED and the hugetlb size
    /// code in bits 58..63. Returns the hugetlb page size the flags select, if any.
    private func checkGuestMemfdFlags(_ flags: UInt64, supported: UInt64) throws(KernelError) -> UInt64? {
        guard capabilities.guestMemfdFlagSet == .poc2025 else {
            guard flags & ~supported == 0 else { throw .simulated(SimErrno.einval) }
            return nil
        }
        let sizeCodeShift: UInt64 = 58
        let sizeCodeBits: UInt64 = 0x3f << sizeCodeShift
        let hugetlb = flags & KVMConstants.pocGmemFlagHugetlb != 0
        var accepted = supported
        if supported & KVMConstants.pocGmemFlagHugetlb != 0 { accepted |= sizeCodeBits }
        guard flags & ~accepted == 0 else { throw .simulated(SimErrno.einval) }
        if flags & KVMConstants.pocGmemFlagInitPrivate != 0 && flags & KVMConstants.pocGmemFlagSupportShared == 0 {
            throw .simulated(SimErrno.einval)
        }
        let sizeCode = (flags & sizeCodeBits) >> sizeCodeShift
        guard hugetlb else {
            guard sizeCode == 0 else { throw .simulated(SimErrno.einval) }
            return nil
        }
        let hugePageSize: UInt64 = 1 << sizeCode
        guard capabilities.hugePageSizes.contains(hugePageSize) else { throw .simulated(SimErrno.einval) }
        return hugePageSize
    }

    /// `memfd_create` + `ftruncate`. An unknown hugetlb size has no hstate (ENODEV); hugetlbfs refuses a size
    /// that is not a multiple of its page size (EINVAL); names are limited to 249 bytes (EINVAL).
    mutating func createMemfd(name: String, size: UInt64, hugePageSize: UInt64?) throws(KernelError) -> Int32 {
        guard name.utf8.count <= 249 else { throw .simulated(SimErrno.einval) }
        if let hugePageSize {
            guard hugePageSize.nonzeroBitCount == 1, hugePageSize > pageSize else { throw .simulated(SimErrno.einval) }
            guard capabilities.hugePageSizes.contains(hugePageSize) else { throw .simulated(SimErrno.enodev) }
            guard SimMath.isAligned(size, hugePageSize) else { throw .simulated(SimErrno.einval) }
        }
        guard size <= UInt64(Int64.max) else { throw .simulated(SimErrno.einval) }
        let id = newObjectID()
        files[id] = SimFile(id: id, kind: .memfd, name: "memfd:" + name, size: size, hugePageSize: hugePageSize)
        return install(.file(id))
    }

    mutating func close(_ fd: Int32) throws(KernelError) {
        guard descriptors.removeValue(forKey: fd) != nil else { throw .simulated(SimErrno.ebadf) }
        collectGarbage()
    }
}
