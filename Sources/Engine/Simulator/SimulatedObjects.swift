import Config
import GmemCore

/// What an open file descriptor of the simulated process refers to.
enum SimDescriptor: Sendable, Hashable, Codable {
    /// `/dev/kvm`: system-scope ioctls answer here; VM ioctls issued on it give EINVAL.
    case kvmDevice
    case vm(UInt64)
    case file(UInt64)
}

/// One memslot of a VM (`struct kvm_memory_slot`, as far as userspace can tell).
struct SimMemslot: Sendable, Hashable, Codable {
    /// The raw `slot` field: bits 15..0 id, bits 31..16 address space.
    var slot: UInt32
    var flags: UInt32
    var guestPhysAddr: UInt64
    var memorySize: UInt64
    var userspaceAddr: UInt64
    var guestMemfdOffset: UInt64
    /// The bound guest_memfd file; nil once that file was released (the slot stays, unbound).
    var guestMemfdFile: UInt64?
    /// The fd number passed at bind time, for inspection only.
    var guestMemfdDescriptor: UInt32

    var isGuestMemfd: Bool { flags & KVMConstants.memGuestMemfd != 0 }
    var gpaRange: Range<UInt64> { guestPhysAddr..<guestPhysAddr + memorySize }
    var gmemRange: Range<UInt64> { guestMemfdOffset..<guestMemfdOffset + memorySize }
}

struct SimVM: Sendable, Hashable, Codable {
    var id: UInt64
    var type: VMType
    /// Keyed by the raw `slot` field.
    var slots: [UInt32: SimMemslot] = [:]
    /// Per-VM memory attributes by GPA (`KVM_SET_MEMORY_ATTRIBUTES`); unset = 0 (shared), the initial state.
    var attributes = IntervalMap<UInt64>()
}

/// The guest_memfd part of a file.
struct SimGuestMemfd: Sendable, Hashable, Codable {
    var vm: UInt64
    var flags: UInt64
    /// Private/shared state of every byte offset in `[0, size)`. Fixed at creation unless an in-place ABI
    /// converts it (6.18: INIT_SHARED means shared, else private).
    var state: IntervalMap<MemoryState>
    /// Which ranges are bound to which memslot (raw slot field), like the kernel's per-file xarray.
    var bindings = IntervalMap<UInt32>()
    /// Page offsets with an elevated refcount (a long-term host pin): to-private conversion gives EAGAIN.
    var pinned: Set<UInt64> = []
    /// The host may `mmap` it (6.18 `MMAP`, POC `SUPPORT_SHARED`).
    var mappable: Bool
}

struct SimFile: Sendable, Hashable, Codable {
    enum Kind: String, Sendable, Hashable, Codable {
        case guestMemfd
        case memfd
        /// Memory of an anonymous mapping (`MAP_ANONYMOUS`; shmem-backed when shared).
        case anonymous
    }

    var id: UInt64
    var kind: Kind
    var name: String
    var size: UInt64
    /// Hugetlb page size (hugetlb memfd, `MAP_HUGETLB`, POC `HUGETLB` gmem); nil for base pages.
    var hugePageSize: UInt64?
    /// Whether an anonymous object came from `MAP_SHARED`.
    var sharedAnonymous = false
    /// Allocated byte ranges: page cache for files, faulted pages for anonymous memory.
    var allocated = IntervalMap<Bool>()
    /// The part of `allocated` whose pages are up to date, i.e. were faulted in or written, which is what
    /// `mincore` reports. `fallocate` allocates without it: shmem and guest_memfd leave fallocated folios
    /// !uptodate until the first fault zeroes them (checked on the real kernel: mincore stays 0 after a
    /// KEEP_SIZE fallocate of a guest_memfd or a memfd). nil: nothing was touched yet.
    var uptodate: IntervalMap<Bool>?
    var contents = PageStore()
    var gmem: SimGuestMemfd?
    /// Hugetlb reservations of the file's shared mappings (byte ranges); nil when none were made.
    var hugeReserved: IntervalMap<Bool>?

    /// Allocation unit: a fault or an allocation always covers whole units.
    func granule(pageSize: UInt64) -> UInt64 { hugePageSize ?? pageSize }
}

/// One host mapping in the simulated address space.
struct SimMapping: Sendable, Hashable, Codable {
    var address: UInt64
    var length: UInt64
    var file: UInt64
    var fileOffset: UInt64
    var shared: Bool
    /// `MAP_PRIVATE` of a file: written pages become private copies (byte ranges in file offsets).
    var copyOnWrite: Bool
    var privateCopied = IntervalMap<Bool>()
    var privateContents = PageStore()
    var hugePageSize: UInt64?
    /// Huge pages a private hugetlb mapping reserved for itself (released with the mapping).
    var hugeReservedPages: UInt64?

    var end: UInt64 { address + length }
    var range: Range<UInt64> { address..<end }

    func fileOffset(of address: UInt64) -> UInt64 { fileOffset + (address - self.address) }
}

/// A fault waiting to fire, with how many matching calls remain until it does.
struct PendingFault: Sendable, Hashable, Codable {
    var fault: SimulatedFault
    var remaining: Int
}
