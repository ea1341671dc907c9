import Config
import GmemCore

/// `KVM_SET_USER_MEMORY_REGION2`, checked in the kernel's order (`kvm_set_memory_region`, then
/// `kvm_arch_prepare_memory_region`; docs/kernels.md), so that where two errors apply the simulator returns
/// the one the kernel returns.
extension SimulatedKernelState {
    /// `KVM_MEM_MAX_NR_PAGES` on x86 (pages per memslot).
    static let maxPagesPerSlot: UInt64 = KVMConstants.maxPagesPerMemslot
    /// `kvm_arch_nr_memslot_as_ids`: the development machines have no SMM address space.
    static let addressSpaces: UInt32 = 1

    mutating func setUserMemoryRegion2(vm fd: Int32, _ region: MemoryRegion2) throws(KernelError) {
        var vm = try vmForIoctl(fd)
        let type = typeCapabilities(of: vm)
        let page = pageSize
        let size = region.memorySize
        let wantsGuestMemfd = region.flags & KVMConstants.memGuestMemfd != 0

        // 1. Flags valid for this VM.
        try checkRegionFlags(region.flags, type: type)
        // 3. Alignment of size, GPA and userspace address; the address range must be a user range.
        guard SimMath.isAligned(size, page), SimMath.isAligned(region.guestPhysAddr, page) else {
            throw .simulated(SimErrno.einval)
        }
        guard SimMath.isAligned(region.userspaceAddr, page), let userEnd = SimMath.end(region.userspaceAddr, size),
            userEnd < SimMath.taskSizeMax
        else { throw .simulated(SimErrno.einval) }
        // 4. guest_memfd offset aligned and not wrapping.
        if wantsGuestMemfd {
            guard SimMath.isAligned(region.guestMemfdOffset, page), SimMath.end(region.guestMemfdOffset, size) != nil
            else {
                throw .simulated(SimErrno.einval)
            }
        }
        // 5. Address space and slot id.
        let addressSpace = region.slot >> 16
        let id = region.slot & 0xffff
        guard addressSpace < Self.addressSpaces, Int(id) < capabilities.maxMemslots else {
            throw .simulated(SimErrno.einval)
        }
        // 6. GPA wrap, too many pages.
        guard SimMath.end(region.guestPhysAddr, size) != nil, size / page <= Self.maxPagesPerSlot else {
            throw .simulated(SimErrno.einval)
        }

        // 7. Delete.
        if size == 0 {
            guard let old = vm.slots[region.slot] else { throw .simulated(SimErrno.einval) }
            unbind(old)
            vm.slots[region.slot] = nil
            vms[vm.id] = vm
            return
        }

        if let old = vm.slots[region.slot] {
            try modify(&vm, old: old, region)
            vms[vm.id] = vm
            return
        }

        // 9. A new slot must not overlap another one.
        let gpaRange = region.guestPhysAddr..<region.guestPhysAddr + size
        guard !overlapsAnotherSlot(vm, gpaRange, except: region.slot) else { throw .simulated(SimErrno.eexist) }
        var slot = SimMemslot(
            slot: region.slot, flags: region.flags, guestPhysAddr: region.guestPhysAddr, memorySize: size,
            userspaceAddr: region.userspaceAddr,
            guestMemfdOffset: wantsGuestMemfd ? region.guestMemfdOffset : 0,
            guestMemfdFile: nil, guestMemfdDescriptor: wantsGuestMemfd ? region.guestMemfd : 0)
        // 10. Bind the guest_memfd range (a non-zero fd without the flag is ignored: step 11).
        if wantsGuestMemfd {
            slot.guestMemfdFile = try bind(vm: vm, slot: slot, fd: region.guestMemfd)
        }
        // 12. kvm_arch_prepare_memory_region: the last GFN must not exceed kvm_mmu_max_gfn (the bind is undone).
        guard gpaRange.upperBound <= capabilities.gpaLimit else {
            unbind(slot)
            throw .simulated(SimErrno.einval)
        }
        vm.slots[region.slot] = slot
        vms[vm.id] = vm
    }

    /// `check_memory_region_flags`: LOG_DIRTY_PAGES always, GUEST_MEMFD where the VM type may bind one
    /// (6.8: only VMs with private memory) and then without LOG_DIRTY_PAGES, READONLY only without
    /// GUEST_MEMFD and only where the VM has no protected state (SEV-ES/SNP and TDX have none).
    private func checkRegionFlags(_ flags: UInt32, type: VMTypeCapabilities) throws(KernelError) {
        let wantsGuestMemfd = flags & KVMConstants.memGuestMemfd != 0
        var valid = KVMConstants.memLogDirtyPages
        if type.guestMemfd { valid |= KVMConstants.memGuestMemfd }
        if wantsGuestMemfd { valid &= ~KVMConstants.memLogDirtyPages }
        let hasReadonlyMemory = type.vmType == .default || type.vmType == .swProtected
        if hasReadonlyMemory && !wantsGuestMemfd { valid |= KVMConstants.memReadonly }
        guard flags & ~valid == 0 else { throw .simulated(SimErrno.einval) }
    }

    /// 8. An existing slot: guest_memfd slots are immutable (EINVAL even for identical values; the same is
    /// assumed when the new flags drop GUEST_MEMFD, [U]); others may move (overlap -> EEXIST) or change
    /// flags, but not their size, userspace address or READONLY.
    private func modify(_ vm: inout SimVM, old: SimMemslot, _ region: MemoryRegion2) throws(KernelError) {
        guard region.flags & KVMConstants.memGuestMemfd == 0, !old.isGuestMemfd else {
            throw .simulated(SimErrno.einval)
        }
        guard region.userspaceAddr == old.userspaceAddr, region.memorySize == old.memorySize,
            (region.flags ^ old.flags) & KVMConstants.memReadonly == 0
        else { throw .simulated(SimErrno.einval) }
        if region.guestPhysAddr != old.guestPhysAddr {
            let moved = region.guestPhysAddr..<region.guestPhysAddr + region.memorySize
            guard !overlapsAnotherSlot(vm, moved, except: region.slot) else { throw .simulated(SimErrno.eexist) }
            vm.slots[region.slot]?.guestPhysAddr = region.guestPhysAddr
        }
        vm.slots[region.slot]?.flags = region.flags
    }

    private func overlapsAnotherSlot(_ vm: SimVM, _ range: Range<UInt64>, except slot: UInt32) -> Bool {
        vm.slots.values.contains { other in
            other.slot != slot && other.slot >> 16 == slot >> 16 && other.gpaRange.overlaps(range)
        }
    }

    /// `kvm_gmem_bind`: EBADF for no such fd; EINVAL for a non-gmem fd, another VM's gmem, a range past the
    /// file size, or a range already bound to another slot.
    private mutating func bind(vm: SimVM, slot: SimMemslot, fd rawFd: UInt32) throws(KernelError) -> UInt64 {
        guard let descriptor = descriptors[Int32(bitPattern: rawFd)] else { throw .simulated(SimErrno.ebadf) }
        guard case .file(let id) = descriptor, var file = files[id], var gmem = file.gmem, gmem.vm == vm.id else {
            throw .simulated(SimErrno.einval)
        }
        let range = slot.gmemRange
        guard slot.guestMemfdOffset <= UInt64(Int64.max), range.upperBound <= file.size else {
            throw .simulated(SimErrno.einval)
        }
        if !gmem.bindings.runs(in: range).isEmpty {
            // Linux 7.4 moved the check to kvm_gmem_commit_memory_region, after kvm_arch_prepare_memory_region,
            // and made it EEXIST; before, kvm_gmem_bind said EINVAL.
            guard Self.bindsAtCommit(capabilities) else { throw .simulated(SimErrno.einval) }
            guard slot.gpaRange.upperBound <= capabilities.gpaLimit else { throw .simulated(SimErrno.einval) }
            throw .simulated(SimErrno.eexist)
        }
        gmem.bindings.assign(slot.slot, to: range)
        file.gmem = gmem
        files[id] = file
        return id
    }

    /// Kernels with the in-place series (7.4: the `gmem_in_place_conversion` parameter exists) bind a
    /// guest_memfd range in two steps, prepare and commit.
    static func bindsAtCommit(_ capabilities: Capabilities) -> Bool { capabilities.gmemInPlaceConversion != nil }

    private mutating func unbind(_ slot: SimMemslot) {
        guard let id = slot.guestMemfdFile else { return }
        files[id]?.gmem?.bindings.remove(slot.gmemRange)
    }
}
