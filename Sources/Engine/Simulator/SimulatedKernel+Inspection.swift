import Config
import GmemCore

/// Read-only views of the simulated state that the real kernel has no ioctl for (no GET of attributes,
/// no list of memslots): for tests, the executor's verification in simulation, and `gmemctl get`.
/// Where the simulated MMU takes the page of a guest access.
public enum GuestFaultSource: Sendable, Hashable {
    /// The guest_memfd, at this file offset.
    case guestMemfd(offset: UInt64)
    /// The shared backing mapped at this host address.
    case userspace(address: UInt64)
    /// No memslot covers the address (KVM_EXIT_MMIO for the guest).
    case none
}

extension SimulatedKernel {
    /// The memslots of a VM, ascending by slot; `guestMemfd` is the fd number given at bind time.
    public func memslots(vm fd: Int32) throws(SimulatedHookError) -> [MemoryRegion2] {
        let vm = try vmObject(fd)
        return vm.slots.values.sorted { $0.slot < $1.slot }.map {
            MemoryRegion2(
                slot: $0.slot, flags: $0.flags, guestPhysAddr: $0.guestPhysAddr, memorySize: $0.memorySize,
                userspaceAddr: $0.userspaceAddr, guestMemfdOffset: $0.guestMemfdOffset,
                guestMemfd: $0.guestMemfdDescriptor)
        }
    }

    /// Whether the guest_memfd binding of a slot is still live (closing the last gmem reference drops it).
    public func isBound(vm fd: Int32, slot: UInt32) throws(SimulatedHookError) -> Bool {
        try vmObject(fd).slots[slot]?.guestMemfdFile != nil
    }

    /// GPA ranges with the PRIVATE attribute in the VM's attribute map (`KVM_SET_MEMORY_ATTRIBUTES`).
    public func privateGPARanges(vm fd: Int32) throws(SimulatedHookError) -> [Range<UInt64>] {
        try vmObject(fd).attributes.runs.filter { $0.value & KVMConstants.memoryAttributePrivate != 0 }.map(\.range)
    }

    /// What a guest fault at `gpa` is served from. A guest_memfd memslot is guest_memfd-only (its
    /// `userspace_addr` ignored) when the guest_memfd is mmap-able (6.18+) or in the in-place mode of 7.4
    /// (`kvm_gmem_prepare_memory_region`); otherwise private GPAs (per-VM attributes) come from the
    /// guest_memfd and shared ones from the shared backing at `userspace_addr`.
    public func guestFaultSource(vm fd: Int32, gpa: UInt64) throws(SimulatedHookError) -> GuestFaultSource {
        let state = snapshot()
        let vm = try vmObject(fd)
        guard let slot = vm.slots.values.first(where: { $0.slot >> 16 == 0 && $0.gpaRange.contains(gpa) }) else {
            return .none
        }
        let offsetInSlot = gpa - slot.guestPhysAddr
        guard slot.isGuestMemfd else { return .userspace(address: slot.userspaceAddr + offsetInSlot) }
        let gmem = slot.guestMemfdFile.flatMap { state.files[$0]?.gmem }
        let gmemOnly =
            state.capabilities.inPlaceMode
            || (state.capabilities.guestMemfdFlagSet == .upstream && gmem?.mappable == true)
        let isPrivate = vm.attributes.value(at: gpa).map { $0 & KVMConstants.memoryAttributePrivate != 0 } ?? false
        if gmemOnly || isPrivate { return .guestMemfd(offset: slot.guestMemfdOffset + offsetInSlot) }
        return .userspace(address: slot.userspaceAddr + offsetInSlot)
    }

    /// The private/shared state of a guest_memfd, as maximal runs over `[0, size)`.
    public func guestMemfdState(gmem fd: Int32) throws(SimulatedHookError) -> IntervalMap<MemoryState> {
        guard let state = try fileObject(fd).gmem?.state else { throw .notAGuestMemfd(fd) }
        return state
    }

    /// Allocated byte ranges of a file (guest_memfd or memfd).
    public func allocatedRanges(fd: Int32) throws(SimulatedHookError) -> [Range<UInt64>] {
        try fileObject(fd).allocated.runs.map(\.range)
    }

    /// Open fds, ascending (the `/dev/kvm` fd included).
    public var openDescriptors: [Int32] { snapshot().descriptors.keys.sorted() }

    /// What the simulated kernel costs: live objects, stored pages, and runs across all interval maps.
    /// Stays small for a huge guest as long as few pages are written and few ranges differ.
    public var footprint: SimulatedFootprint {
        let state = snapshot()
        var footprint = SimulatedFootprint(
            vms: state.vms.count, files: state.files.count, mappings: state.mappings.count)
        for vm in state.vms.values { footprint.intervalRuns += vm.attributes.runCount }
        for file in state.files.values {
            footprint.storedPages += file.contents.count
            footprint.intervalRuns +=
                file.allocated.runCount + (file.uptodate?.runCount ?? 0)
                + (file.gmem.map { $0.state.runCount + $0.bindings.runCount } ?? 0)
        }
        for mapping in state.mappings {
            footprint.storedPages += mapping.privateContents.count
            footprint.intervalRuns += mapping.privateCopied.runCount
        }
        return footprint
    }

    private func vmObject(_ fd: Int32) throws(SimulatedHookError) -> SimVM {
        let state = snapshot()
        guard let descriptor = state.descriptors[fd] else { throw .unknownDescriptor(fd) }
        guard case .vm(let id) = descriptor, let vm = state.vms[id] else { throw .notAVM(fd) }
        return vm
    }

    private func fileObject(_ fd: Int32) throws(SimulatedHookError) -> SimFile {
        let state = snapshot()
        guard let descriptor = state.descriptors[fd] else { throw .unknownDescriptor(fd) }
        guard case .file(let id) = descriptor, let file = state.files[id] else { throw .notAGuestMemfd(fd) }
        return file
    }
}

/// Size of the simulated state (see `SimulatedKernel.footprint`).
public struct SimulatedFootprint: Sendable, Hashable, Codable {
    public var vms: Int
    public var files: Int
    public var mappings: Int
    public var storedPages = 0
    public var intervalRuns = 0
}
