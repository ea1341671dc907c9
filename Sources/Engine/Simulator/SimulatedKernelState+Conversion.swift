import Config
import GmemCore

/// Private/shared conversion in its three generations: per-VM attributes (`KVM_SET_MEMORY_ATTRIBUTES`,
/// 6.8+), the 2025 POC (`KVM_GMEM_CONVERT_*` on the guest_memfd) and the 2026 series
/// (`KVM_SET_MEMORY_ATTRIBUTES2` on the guest_memfd, Linux 7.4 in-place mode). Rules and sources: docs/kernels.md.
///
/// Partial progress: both guest_memfd ABIs check every folio's refcount before their point of no return
/// ("steps after the point of no return cannot fail"; the POC rolls back on ENOMEM), so a conversion that
/// fails with EAGAIN converts nothing, and `error_offset` names the first pinned page of the range.
extension SimulatedKernelState {
    /// The per-VM attributes ioctl is compiled in (`CONFIG_KVM_GENERIC_MEMORY_ATTRIBUTES`) when some VM type
    /// or the system scope reports attributes; otherwise the VM ioctl falls through to ENOTTY (the PVM host).
    var hasVMAttributes: Bool {
        capabilities.systemExtension(KVMConstants.capMemoryAttributes) != 0
            || capabilities.vmTypes.contains(where: \.hasVMAttributes)
    }

    func hasConversionABI(_ abi: ConversionABI) -> Bool { capabilities.vmTypes.contains { $0.conversion == abi } }

    mutating func setMemoryAttributes(
        vm fd: Int32, address: UInt64, size: UInt64, attributes: UInt64,
        flags: UInt64
    ) throws(KernelError) {
        var vm = try vmForIoctl(fd)
        guard hasVMAttributes else { throw .simulated(SimErrno.enotty) }
        guard flags == 0, attributes & ~typeCapabilities(of: vm).memoryAttributes == 0 else {
            throw .simulated(SimErrno.einval)
        }
        guard size != 0, let end = SimMath.end(address, size) else { throw .simulated(SimErrno.einval) }
        guard SimMath.isAligned(address, pageSize), SimMath.isAligned(size, pageSize) else {
            throw .simulated(SimErrno.einval)
        }
        if attributes == 0 {
            vm.attributes.remove(address..<end)
        } else {
            vm.attributes.assign(attributes, to: address..<end)
        }
        vms[vm.id] = vm
    }

    /// 2025 POC. Without the POC ABI the gmem fd has no ioctls (ENOTTY). A gmem created without
    /// SUPPORT_SHARED tracks no shareability, so it is refused with EINVAL ([U]: not in the stored material).
    mutating func gmemConvert(
        gmem fd: Int32, offset: UInt64, size: UInt64, toPrivate: Bool,
        errorOffset: UInt64 = 0
    ) throws(KernelError) {
        let file = try guestMemfdForIoctl(fd)
        guard hasConversionABI(.gmemConvertPOC) else { throw .simulated(SimErrno.enotty) }
        guard errorOffset == 0 else { throw .simulated(SimErrno.einval) }
        guard let gmem = file.gmem, gmem.flags & KVMConstants.pocGmemFlagSupportShared != 0 else {
            throw .simulated(SimErrno.einval)
        }
        if size == 0 { return }
        guard let end = SimMath.end(offset, size), offset <= file.size, end <= file.size else {
            throw .simulated(SimErrno.einval)
        }
        guard SimMath.isAligned(offset, pageSize), SimMath.isAligned(size, pageSize) else {
            throw .simulated(SimErrno.einval)
        }
        try convert(file, offset..<end, to: toPrivate ? .private : .shared)
    }

    /// `struct kvm_memory_attributes2` has 11 reserved words after offset, size, attributes, flags and
    /// error_offset (128 bytes).
    static let attributes2ReservedWords = 11

    /// Linux 7.4 in-place mode, in the order `kvm_gmem_set_attributes` checks: ENOTTY without the mode;
    /// EINVAL for flags, any reserved word, a VM without private memory, attributes other than 0/PRIVATE,
    /// size 0, wrap, misalignment, or a range beyond the file. Already in state: 0. A failed preallocation:
    /// ENOMEM with error_offset = offset. `error_offset` is not read on input (only the 2025 POC did).
    mutating func setMemoryAttributes2(
        gmem fd: Int32, offset: UInt64, size: UInt64, attributes: UInt64,
        flags: UInt64, reserved: [UInt64]
    ) throws(KernelError) {
        let file = try guestMemfdForIoctl(fd)
        guard hasConversionABI(.gmemAttributes2) else { throw .simulated(SimErrno.enotty) }
        guard flags == 0, reserved.allSatisfy({ $0 == 0 }) else { throw .simulated(SimErrno.einval) }
        guard let gmem = file.gmem, let vm = vms[gmem.vm], typeCapabilities(of: vm).conversion == .gmemAttributes2
        else {
            throw .simulated(SimErrno.einval)
        }
        guard attributes & ~KVMConstants.memoryAttributePrivate == 0 else { throw .simulated(SimErrno.einval) }
        guard size != 0, let end = SimMath.end(offset, size) else { throw .simulated(SimErrno.einval) }
        guard SimMath.isAligned(offset, pageSize), SimMath.isAligned(size, pageSize) else {
            throw .simulated(SimErrno.einval)
        }
        guard offset < file.size, end <= file.size else { throw .simulated(SimErrno.einval) }
        let target: MemoryState = attributes == 0 ? .shared : .private
        if gmem.state.isUniform(offset..<end, value: target) { return }
        if let failures = attributePreallocationFailures, failures > 0 {
            attributePreallocationFailures = failures > 1 ? failures - 1 : nil
            throw .simulated(SimErrno.enomem, errorOffset: offset)
        }
        try convert(file, offset..<end, to: target)
    }

    /// The shared part of both in-place ABIs: early success when already in state, EAGAIN on a pinned page
    /// for to-private, then the state change. Contents survive on VM types whose memory is not encrypted
    /// (SW_PROTECTED); on SNP/TDX they are unspecified, modelled as lost (pages read zeros afterwards).
    private mutating func convert(_ file: SimFile, _ range: Range<UInt64>, to target: MemoryState) throws(KernelError) {
        guard var gmem = file.gmem else { return }
        if gmem.state.isUniform(range, value: target) { return }
        if target == .private, let pinned = gmem.pinned.filter({ range.contains($0) }).min() {
            throw .simulated(SimErrno.eagain, errorOffset: pinned)
        }
        gmem.state.assign(target, to: range)
        var updated = file
        updated.gmem = gmem
        if let vm = vms[gmem.vm], vm.type != .default, vm.type != .swProtected {
            updated.contents.remove(range.lowerBound / pageSize..<range.upperBound / pageSize)
        }
        files[file.id] = updated
    }

    // MARK: - Pins (test hook: an elevated folio refcount, as a long-term GUP or IOMMU pin holds)

    private func pinnableGuestMemfd(_ fd: Int32, offset: UInt64) throws(SimulatedHookError) -> SimFile {
        guard let descriptor = descriptors[fd] else { throw .unknownDescriptor(fd) }
        guard case .file(let id) = descriptor, let file = files[id], file.gmem != nil else { throw .notAGuestMemfd(fd) }
        guard SimMath.isAligned(offset, pageSize) else { throw .unalignedOffset(offset) }
        guard offset < file.size else { throw .beyondEndOfFile(offset: offset, size: file.size) }
        return file
    }

    /// Pins the shared page at `offset` (faulting it in, as GUP does).
    mutating func pin(gmem fd: Int32, offset: UInt64) throws(SimulatedHookError) {
        var file = try pinnableGuestMemfd(fd, offset: offset)
        guard file.gmem?.state.value(at: offset) == .shared else { throw .pagePrivate(offset) }
        file.gmem?.pinned.insert(offset)
        let granule = file.granule(pageSize: pageSize)
        let start = SimMath.roundDown(offset, granule)
        touch(&file, start..<start + granule)
        files[file.id] = file
    }

    mutating func unpin(gmem fd: Int32, offset: UInt64) throws(SimulatedHookError) {
        var file = try pinnableGuestMemfd(fd, offset: offset)
        guard file.gmem?.pinned.remove(offset) != nil else { throw .notPinned(offset) }
        files[file.id] = file
    }
}
