import Config

/// One step of a plan, at the level of kernel calls and listener notifications. Objects are named by block
/// (fds and host addresses exist only once apply has created them, and plans say so).
public enum PlanOperation: Sendable, Hashable, Codable {
    case createVM(type: VMType)
    /// `KVM_CREATE_GUEST_MEMFD`.
    case createGuestMemfd(block: String, size: UInt64, flags: UInt64, backend: ResolvedBackend)
    /// A legacy block's shared backing: `memfd_create` (+`MFD_HUGETLB`) and `ftruncate`, or anonymous memory.
    case createSharedBacking(block: String, backing: SharedBacking, size: UInt64)
    /// `mmap(MAP_SHARED)` of a block's guest_memfd or shared backing.
    case mapHostMemory(block: String, memory: HostMemory, size: UInt64)
    /// `KVM_SET_USER_MEMORY_REGION2` with `KVM_MEM_GUEST_MEMFD`; userspace_addr is the block's host mapping
    /// plus `mapping.offset`.
    case bindMemslot(slot: UInt32, mapping: Mapping, memory: HostMemory)
    /// `KVM_SET_USER_MEMORY_REGION2` with size 0.
    case deleteMemslot(slot: UInt32, mapping: Mapping)
    /// `KVM_SET_MEMORY_ATTRIBUTES` on the VM (per-VM attributes; guest-physical range).
    case setVMAttributes(gpa: UInt64, size: UInt64, to: MemoryState)
    /// In-place conversion on the guest_memfd: `KVM_GMEM_CONVERT_*` (POC) or `KVM_SET_MEMORY_ATTRIBUTES2`.
    case convertGuestMemfd(block: String, offset: UInt64, size: UInt64, to: MemoryState, abi: ConversionABI)
    /// Drop the copy a conversion made unused: punch a hole in the guest_memfd or memfd
    /// (`fallocate(PUNCH_HOLE|KEEP_SIZE)`), or `madvise(MADV_DONTNEED)` on anonymous memory.
    case discard(block: String, memory: HostMemory, offset: UInt64, size: UInt64, method: DiscardMethod)
    /// Populate memory up front: `fallocate` on a guest_memfd, `MADV_POPULATE_WRITE` on a shared backing.
    case populate(block: String, memory: HostMemory, offset: UInt64, size: UInt64)
    /// Tell a listener about a range (`unmap` before it turns private, `map` after it turns shared).
    case notify(listener: String, kind: ListenerEventKind, gpa: UInt64, size: UInt64)
    /// `munmap` and `close` of every object of a block.
    case destroyBlock(block: String)
    /// `close` of the VM fd.
    case destroyVM

    /// The kernel call (or gmemctl action) this step performs.
    public var call: String {
        switch self {
        case .createVM: return "KVM_CREATE_VM"
        case .createGuestMemfd: return "KVM_CREATE_GUEST_MEMFD"
        case .createSharedBacking(_, let backing, _):
            return backing.source == .anonymous ? "(anonymous memory)" : "memfd_create+ftruncate"
        case .mapHostMemory: return "mmap(MAP_SHARED)"
        case .bindMemslot, .deleteMemslot: return "KVM_SET_USER_MEMORY_REGION2"
        case .setVMAttributes: return "KVM_SET_MEMORY_ATTRIBUTES"
        case .convertGuestMemfd(_, _, _, let to, let abi):
            if abi == .gmemConvertPOC { return to == .private ? "KVM_GMEM_CONVERT_PRIVATE" : "KVM_GMEM_CONVERT_SHARED" }
            return "KVM_SET_MEMORY_ATTRIBUTES2"
        case .discard(_, _, _, _, let method): return method.rawValue
        case .populate(_, let memory, _, _):
            return memory == .guestMemfd ? "fallocate(KEEP_SIZE)" : "madvise(MADV_POPULATE_WRITE)"
        case .notify(_, let kind, _, _): return "notify \(kind.rawValue)"
        case .destroyBlock: return "munmap+close"
        case .destroyVM: return "close(vm)"
        }
    }

    /// Arguments, readable: hex addresses, sizes with units, flag names.
    public func arguments(flagSet: GuestMemfdFlagSet) -> String {
        switch self {
        case .createVM(let type):
            return "type=\(type.kvmValue) (\(type.rawValue))"
        case .createGuestMemfd(let block, let size, let flags, let backend):
            return
                "block=\(block) (\(backend.name)) size=\(hex(size)) flags=\(KVMConstants.describeGuestMemfdFlags(flags, in: flagSet))"
        case .createSharedBacking(let block, let backing, let size):
            var text = "block=\(block) source=\(backing.source.rawValue) size=\(hex(size))"
            if backing.source == .hugetlb, let pageSize = backing.pageSize {
                text += " MFD_HUGETLB page=\(formatSize(pageSize))"
            }
            if backing.prealloc { text += " prealloc" }
            return text
        case .mapHostMemory(let block, let memory, let size):
            return "block=\(block) memory=\(memory.rawValue) length=\(hex(size)) -> host address assigned at apply"
        case .bindMemslot(let slot, let mapping, let memory):
            return
                "slot=\(slot) gpa=\(hex(mapping.gpa)) size=\(hex(mapping.size)) flags=GUEST_MEMFD gmem=\(mapping.block) gmem_offset=\(hex(mapping.offset)) userspace_addr=<\(mapping.block) \(memory.rawValue) mapping>+\(hex(mapping.offset))"
        case .deleteMemslot(let slot, let mapping):
            return "slot=\(slot) gpa=\(hex(mapping.gpa)) size=0"
        case .setVMAttributes(let gpa, let size, let to):
            return "gpa=\(hex(gpa)) size=\(hex(size)) attributes=\(to == .private ? "PRIVATE" : "0 (shared)")"
        case .convertGuestMemfd(let block, let offset, let size, let to, _):
            return "gmem=\(block) offset=\(hex(offset)) size=\(hex(size)) to=\(to.rawValue)"
        case .discard(let block, let memory, let offset, let size, _):
            return "block=\(block) memory=\(memory.rawValue) offset=\(hex(offset)) size=\(hex(size))"
        case .populate(let block, let memory, let offset, let size):
            return "block=\(block) memory=\(memory.rawValue) offset=\(hex(offset)) size=\(hex(size))"
        case .notify(let listener, _, let gpa, let size):
            return "listener=\(listener) gpa=\(hex(gpa)) size=\(hex(size))"
        case .destroyBlock(let block):
            return "block=\(block)"
        case .destroyVM:
            return ""
        }
    }

    /// Whether this step changes guest-visible private/shared state (used for progress and reports).
    public var isConversion: Bool {
        switch self {
        case .setVMAttributes, .convertGuestMemfd: return true
        default: return false
        }
    }
}

/// How unused memory is given back.
public enum DiscardMethod: String, Sendable, Hashable, Codable {
    case punchHole = "fallocate(PUNCH_HOLE|KEEP_SIZE)"
    case madviseDontneed = "madvise(MADV_DONTNEED)"
}

func hex(_ value: UInt64) -> String { "0x" + String(value, radix: 16) }
