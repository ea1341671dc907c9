/// The kernel primitives gmemctl needs, with the kernel's own semantics: every call either succeeds or throws
/// a `KernelError` carrying the errno the real kernel would return. Two implementations:
/// `KVMKernel` (the real `/dev/kvm`, through CKVM) and `SimulatedKernel` (a faithful model of the rules in
/// `docs/kernels.md`, per profile). Differential tests run the same call sequences on both and require
/// identical results, so nothing above this layer needs to know which one it talks to.
///
/// File descriptors are plain `Int32` (the simulator hands out its own numbers). Host virtual addresses are
/// `UInt64` (the simulator models its own address space).
public protocol KernelInterface: AnyObject {
    /// Host page size (4096 on x86-64).
    var pageSize: UInt64 { get }
    /// Whether calls may come from several threads at once. The real kernel's are syscalls on separate
    /// objects (true); the simulator keeps one in-memory state (false).
    var allowsConcurrentCalls: Bool { get }

    /// `KVM_CHECK_EXTENSION` on `/dev/kvm` (system scope, `vm == nil`) or on a VM fd. Unknown caps give 0.
    func checkExtension(_ capability: UInt32, vm: Int32?) throws(KernelError) -> Int64
    /// `KVM_CREATE_VM` with the given machine type.
    func createVM(type: UInt64) throws(KernelError) -> Int32
    /// `KVM_CREATE_GUEST_MEMFD` on a VM fd (issued on another fd kind gives the kernel's EINVAL/EBADF).
    func createGuestMemfd(vm: Int32, size: UInt64, flags: UInt64) throws(KernelError) -> Int32
    /// `memfd_create`, sized with `ftruncate`; `hugePageSize` non-nil selects `MFD_HUGETLB` with that size.
    func createMemfd(name: String, size: UInt64, hugePageSize: UInt64?) throws(KernelError) -> Int32
    /// `mmap(NULL, length, PROT_READ|PROT_WRITE, shared ? MAP_SHARED : MAP_PRIVATE, fd, offset)`;
    /// `fd == nil` maps anonymous memory (`MAP_ANONYMOUS`, plus `MAP_HUGETLB` when `hugePageSize` is set).
    func mmap(
        fd: Int32?, length: UInt64, offset: UInt64, shared: Bool, hugePageSize: UInt64?
    ) throws(KernelError) -> UInt64
    func munmap(address: UInt64, length: UInt64) throws(KernelError)
    /// `KVM_SET_USER_MEMORY_REGION2` on a VM fd.
    func setUserMemoryRegion2(vm: Int32, _ region: MemoryRegion2) throws(KernelError)
    /// `KVM_SET_MEMORY_ATTRIBUTES` on a VM fd (per-VM attributes, Linux 6.8+).
    func setMemoryAttributes(
        vm: Int32, address: UInt64, size: UInt64, attributes: UInt64, flags: UInt64) throws(KernelError)
    /// `KVM_GMEM_CONVERT_SHARED` / `KVM_GMEM_CONVERT_PRIVATE` on a guest_memfd (2025 POC ABI).
    /// On failure the error carries `errorOffset` as the kernel reported it.
    func gmemConvert(gmem: Int32, offset: UInt64, size: UInt64, toPrivate: Bool) throws(KernelError)
    /// `KVM_SET_MEMORY_ATTRIBUTES2` on a guest_memfd (2026 series). On failure the error carries `errorOffset`.
    func setMemoryAttributes2(
        gmem: Int32, offset: UInt64, size: UInt64, attributes: UInt64, flags: UInt64) throws(KernelError)
    /// `fallocate(fd, mode, offset, length)`; modes are the Linux `FALLOC_FL_*` bits.
    func fallocate(fd: Int32, mode: Int32, offset: UInt64, length: UInt64) throws(KernelError)
    /// `madvise(address, length, advice)`; advice values are Linux's (`MADV_DONTNEED` = 4, `MADV_POPULATE_WRITE` = 23, ...).
    func madvise(address: UInt64, length: UInt64, advice: Int32) throws(KernelError)
    /// Reads `count` bytes of host memory at `address`; throws `KernelError(.sigbus)` where the access would
    /// raise SIGBUS (private guest_memfd page, beyond EOF) and EFAULT where nothing is mapped.
    func read(address: UInt64, count: Int) throws(KernelError) -> [UInt8]
    /// Writes bytes to host memory at `address`, with the same fault rules as `read`.
    func write(address: UInt64, bytes: [UInt8]) throws(KernelError)
    /// `mincore` over a host mapping: how many of its pages are resident.
    func residentPages(address: UInt64, length: UInt64) throws(KernelError) -> UInt64
    /// How much of a host mapping is resident, read at a cost that grows with what is resident rather than
    /// with the mapping's length (`get`, `apply` and failure reports call it on TiB mappings).
    func residentBytes(address: UInt64, length: UInt64) throws(KernelError) -> ResidentReading
    /// `close(fd)`.
    func close(_ fd: Int32) throws(KernelError)
    /// The ability to run a probe guest on a VM, if this kernel has it (`nil` by default).
    var guestProber: GuestProber? { get }
}

extension KernelInterface {
    /// No guest prober unless the kernel offers one.
    public var guestProber: GuestProber? { nil }
    public var allowsConcurrentCalls: Bool { false }
}

/// A host-resident figure and where it comes from (shown by `get`).
public struct ResidentReading: Sendable, Hashable, Codable {
    public var bytes: UInt64
    public var source: ResidencySource

    public init(bytes: UInt64, source: ResidencySource) {
        self.bytes = bytes
        self.source = source
    }
}

public enum ResidencySource: String, Sendable, Hashable, Codable {
    /// `PAGEMAP_SCAN` on `/proc/self/pagemap`: pages present in this process's page tables.
    case pagemapScan = "pagemap-scan"
    /// `mincore`: pages in the page cache of the mapped file (the simulator's model, whose cost is per run).
    case mincore
    /// The kernel offers no cheap reading (no `PAGEMAP_SCAN`): the figure is not taken rather than
    /// walking the mapping page by page.
    case unavailable

    public var explanation: String {
        switch self {
        case .pagemapScan:
            "PAGEMAP_SCAN: pages present in the host page tables; guest_memfd pages the host never touched do not count"
        case .mincore: "mincore: pages in the mapped file's page cache"
        case .unavailable: "not read: this kernel has no PAGEMAP_SCAN, and mincore would visit every page"
        }
    }
}

extension KernelInterface {
    /// `mincore`, for kernels whose `mincore` costs per run (the simulator).
    public func residentBytes(address: UInt64, length: UInt64) throws(KernelError) -> ResidentReading {
        ResidentReading(bytes: try residentPages(address: address, length: length) * pageSize, source: .mincore)
    }
}

/// `struct kvm_userspace_memory_region2`, the fields gmemctl sets (pads are zero).
public struct MemoryRegion2: Sendable, Hashable, Codable {
    /// Bits 15..0: slot id; bits 31..16: address space.
    public var slot: UInt32
    public var flags: UInt32
    public var guestPhysAddr: UInt64
    public var memorySize: UInt64
    public var userspaceAddr: UInt64
    public var guestMemfdOffset: UInt64
    public var guestMemfd: UInt32

    public init(
        slot: UInt32, flags: UInt32, guestPhysAddr: UInt64, memorySize: UInt64,
        userspaceAddr: UInt64, guestMemfdOffset: UInt64 = 0, guestMemfd: UInt32 = 0
    ) {
        self.slot = slot
        self.flags = flags
        self.guestPhysAddr = guestPhysAddr
        self.memorySize = memorySize
        self.userspaceAddr = userspaceAddr
        self.guestMemfdOffset = guestMemfdOffset
        self.guestMemfd = guestMemfd
    }
}

/// A failed kernel call: which call, with which arguments, and the errno (or SIGBUS for a faulting access).
public struct KernelError: Error, Sendable, Hashable, Codable, CustomStringConvertible {
    public enum Failure: Sendable, Hashable, Codable {
        case errno(Errno)
        /// The access raised SIGBUS (e.g. a private guest_memfd page, or beyond EOF of the file).
        case sigbus
    }

    public var call: String
    public var arguments: String
    public var failure: Failure
    /// For conversion ioctls: the `error_offset` the kernel wrote back.
    public var errorOffset: UInt64?

    public init(call: String, arguments: String = "", errno: Errno, errorOffset: UInt64? = nil) {
        self.call = call
        self.arguments = arguments
        self.failure = .errno(errno)
        self.errorOffset = errorOffset
    }

    public init(call: String, arguments: String = "", failure: Failure, errorOffset: UInt64? = nil) {
        self.call = call
        self.arguments = arguments
        self.failure = failure
        self.errorOffset = errorOffset
    }

    public var errno: Errno? {
        if case .errno(let value) = failure { return value }
        return nil
    }

    public var description: String {
        var text = "\(call)(\(arguments)) failed: "
        switch failure {
        case .errno(let value): text += "\(value.name) (\(value.message))"
        case .sigbus: text += "SIGBUS (the page is not accessible to the host)"
        }
        if let errorOffset { text += ", error_offset 0x\(String(errorOffset, radix: 16))" }
        return text
    }
}
