import Config
import GmemCore

/// Everything the simulated kernel holds: the process's fd table, VMs, files, the address space and pending
/// injected faults. A plain `Codable` value, so a CLI can save it between invocations and a running
/// simulated VM survives as long as its state file does. Mapping addresses are part of it, so they stay
/// stable across save and load. The kernel rules live in extensions of this type (one file per area).
public struct SimulatedKernelState: Sendable, Hashable, Codable {
    /// File format of the encoded state, bumped on incompatible changes.
    public static let currentFormatVersion = 1
    public var formatVersion = SimulatedKernelState.currentFormatVersion

    /// The kernel this state simulates.
    public internal(set) var capabilities: Capabilities
    /// The `/dev/kvm` descriptor opened at creation.
    public internal(set) var deviceDescriptor: Int32

    var descriptors: [Int32: SimDescriptor] = [:]
    /// fds are handed out increasing and never reused, so a stale fd stays EBADF (the real kernel reuses
    /// the lowest free number; the simulator prefers catching use-after-close).
    var nextDescriptor: Int32
    var nextObjectID: UInt64 = 1
    var vms: [UInt64: SimVM] = [:]
    var files: [UInt64: SimFile] = [:]
    /// Sorted by address, non-overlapping.
    var mappings: [SimMapping] = []
    var faults: [PendingFault] = []
    /// Test hook: KVM_SET_MEMORY_ATTRIBUTES2 preallocations left to fail (nil: none).
    var attributePreallocationFailures: Int?

    /// Where the simulated `mmap` starts placing mappings (first fit from here up to `TASK_SIZE_MAX`): the
    /// x86-64 kernel's bottom-up base, `TASK_UNMAPPED_BASE` = PAGE_ALIGN(TASK_SIZE / 3). It leaves 85 TiB, as
    /// the real 128 TiB address space has room for several 16 TiB guest_memfd mappings; the old base
    /// (0x7000_0000_0000) left 16 TiB - 4 KiB, so a 16 TiB guest could never be mapped.
    static let mmapBase: UInt64 = 0x2AAA_AAAA_B000
    static let firstDescriptor: Int32 = 1000

    public init(capabilities: Capabilities) {
        self.capabilities = capabilities
        self.deviceDescriptor = Self.firstDescriptor
        self.nextDescriptor = Self.firstDescriptor + 1
        descriptors[Self.firstDescriptor] = .kvmDevice
    }

    var pageSize: UInt64 { capabilities.pageSize }

    // MARK: - Allocation of numbers

    mutating func newObjectID() -> UInt64 {
        defer { nextObjectID += 1 }
        return nextObjectID
    }

    mutating func install(_ descriptor: SimDescriptor) -> Int32 {
        let fd = nextDescriptor
        nextDescriptor += 1
        descriptors[fd] = descriptor
        return fd
    }

    // MARK: - Resolving descriptors

    func descriptor(_ fd: Int32) throws(KernelError) -> SimDescriptor {
        guard let descriptor = descriptors[fd] else { throw .simulated(SimErrno.ebadf) }
        return descriptor
    }

    /// The errno of an ioctl issued on an object that does not implement it: `/dev/kvm` answers unknown
    /// ioctls with EINVAL (`kvm_arch_dev_ioctl`), VM fds and files with ENOTTY.
    static func unsupportedIoctl(on descriptor: SimDescriptor) -> KernelError {
        if case .kvmDevice = descriptor { return .simulated(SimErrno.einval) }
        return .simulated(SimErrno.enotty)
    }

    /// The VM behind `fd` for a VM ioctl.
    func vmForIoctl(_ fd: Int32) throws(KernelError) -> SimVM {
        let descriptor = try descriptor(fd)
        guard case .vm(let id) = descriptor, let vm = vms[id] else { throw Self.unsupportedIoctl(on: descriptor) }
        return vm
    }

    /// The guest_memfd file behind `fd` for a guest_memfd ioctl.
    func guestMemfdForIoctl(_ fd: Int32) throws(KernelError) -> SimFile {
        let descriptor = try descriptor(fd)
        guard case .file(let id) = descriptor, let file = files[id], file.gmem != nil else {
            throw Self.unsupportedIoctl(on: descriptor)
        }
        return file
    }

    func typeCapabilities(of vm: SimVM) -> VMTypeCapabilities {
        capabilities.vmType(vm.type)
            ?? VMTypeCapabilities(
                vmType: vm.type, guestMemfdFlags: 0, guestMemfd: false, memoryAttributes: 0, conversion: .none)
    }

    // MARK: - Lifetimes

    /// Drops every object nothing refers to any more, as the kernel does on the last `fput`: a file lives
    /// while an fd or a mapping refers to it; a VM while its fd or one of its guest_memfds does. Releasing a
    /// guest_memfd invalidates its bindings but leaves the memslots in place (docs/kernels.md).
    mutating func collectGarbage() {
        var liveFiles = Set(mappings.map(\.file))
        var liveVMs: Set<UInt64> = []
        for descriptor in descriptors.values {
            switch descriptor {
            case .file(let id): liveFiles.insert(id)
            case .vm(let id): liveVMs.insert(id)
            case .kvmDevice: break
            }
        }
        for (id, file) in files where !liveFiles.contains(id) {
            if let gmem = file.gmem, var vm = vms[gmem.vm] {
                for (key, slot) in vm.slots where slot.guestMemfdFile == id { vm.slots[key]?.guestMemfdFile = nil }
                vms[gmem.vm] = vm
            }
            files[id] = nil
        }
        for file in files.values { if let gmem = file.gmem { liveVMs.insert(gmem.vm) } }
        for id in vms.keys where !liveVMs.contains(id) { vms[id] = nil }
    }
}
