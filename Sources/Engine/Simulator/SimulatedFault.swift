import GmemCore

/// The kernel calls the simulator answers, named as `KVMKernel` names them in its errors, so a log or an
/// injected fault reads the same for both kernels.
public enum SimulatedCall: String, Sendable, Hashable, Codable, CaseIterable {
    case checkExtension = "KVM_CHECK_EXTENSION"
    case createVM = "KVM_CREATE_VM"
    case createGuestMemfd = "KVM_CREATE_GUEST_MEMFD"
    case createMemfd = "memfd_create"
    case mmap
    case munmap
    case setUserMemoryRegion2 = "KVM_SET_USER_MEMORY_REGION2"
    case setMemoryAttributes = "KVM_SET_MEMORY_ATTRIBUTES"
    case gmemConvertShared = "KVM_GMEM_CONVERT_SHARED"
    case gmemConvertPrivate = "KVM_GMEM_CONVERT_PRIVATE"
    case setMemoryAttributes2 = "KVM_SET_MEMORY_ATTRIBUTES2"
    case fallocate
    case madvise
    case read
    case write
    case residentPages = "mincore"
    case close
}

/// A deterministic injected failure: "fail the `occurrence`-th call from now (of `call`, or of any call when
/// nil) with `failure`". The failing call has no effect, as if the kernel had refused it up front.
/// When several faults come due on the same call, the earliest injected fires; the others stay due and fire
/// on their next matching call.
public struct SimulatedFault: Sendable, Hashable, Codable {
    public var call: SimulatedCall?
    /// 1 = the next matching call.
    public var occurrence: Int
    public var failure: KernelError.Failure
    /// For conversion calls: the `error_offset` to report.
    public var errorOffset: UInt64?

    public init(call: SimulatedCall? = nil, occurrence: Int = 1, errno: Errno, errorOffset: UInt64? = nil) {
        self.call = call
        self.occurrence = max(1, occurrence)
        self.failure = .errno(errno)
        self.errorOffset = errorOffset
    }

    public init(
        call: SimulatedCall? = nil, occurrence: Int = 1, failure: KernelError.Failure, errorOffset: UInt64? = nil
    ) {
        self.call = call
        self.occurrence = max(1, occurrence)
        self.failure = failure
        self.errorOffset = errorOffset
    }

    func matches(_ candidate: SimulatedCall) -> Bool { call == nil || call == candidate }
}

/// One answered call, for tests and for explaining what a simulated run did.
public struct SimulatedCallRecord: Sendable, Hashable, Codable, CustomStringConvertible {
    public var call: SimulatedCall
    public var arguments: String
    /// nil on success.
    public var failure: KernelError.Failure?
    /// Whether the failure was injected rather than decided by the kernel rules.
    public var injected: Bool

    public var succeeded: Bool { failure == nil }

    public var description: String {
        let outcome: String
        switch failure {
        case nil: outcome = "ok"
        case .errno(let value)?: outcome = value.name + (injected ? " (injected)" : "")
        case .sigbus?: outcome = "SIGBUS" + (injected ? " (injected)" : "")
        }
        return "\(call.rawValue)(\(arguments)) -> \(outcome)"
    }
}

/// Misuse of the simulator's own hooks (not kernel calls, so not a `KernelError`).
public enum SimulatedHookError: Error, Sendable, Hashable, CustomStringConvertible {
    case unknownDescriptor(Int32)
    case notAGuestMemfd(Int32)
    case notAVM(Int32)
    case unalignedOffset(UInt64)
    case beyondEndOfFile(offset: UInt64, size: UInt64)
    /// Only a shared page can be pinned by the host (a private page cannot be mapped, so not GUP-pinned).
    case pagePrivate(UInt64)
    case notPinned(UInt64)

    public var description: String {
        switch self {
        case .unknownDescriptor(let fd): return "fd \(fd) is not open in the simulated kernel"
        case .notAGuestMemfd(let fd): return "fd \(fd) is not a guest_memfd"
        case .notAVM(let fd): return "fd \(fd) is not a VM"
        case .unalignedOffset(let offset): return "offset 0x\(String(offset, radix: 16)) is not page-aligned"
        case .beyondEndOfFile(let offset, let size):
            return "offset 0x\(String(offset, radix: 16)) is beyond the guest_memfd size 0x\(String(size, radix: 16))"
        case .pagePrivate(let offset):
            return "page at offset 0x\(String(offset, radix: 16)) is private and cannot be pinned"
        case .notPinned(let offset): return "page at offset 0x\(String(offset, radix: 16)) is not pinned"
        }
    }
}
