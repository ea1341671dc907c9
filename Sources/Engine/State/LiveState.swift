import Config

/// Which host memory of a block an operation touches.
public enum HostMemory: String, Sendable, Hashable, Codable {
    case guestMemfd = "guest_memfd"
    case sharedBacking = "shared"
}

/// A block as it exists on a host: its kernel objects and the private/shared state gmemctl tracks for it
/// (the kernel has no read-back ioctl for attributes in any generation, so, like QEMU, we mirror it).
public struct LiveBlock: Sendable, Hashable, Codable {
    public var name: String
    public var size: UInt64
    public var backend: ResolvedBackend
    public var guestMemfdFlags: UInt64
    public var guestMemfd: Int32?
    /// Host mapping of the guest_memfd (in-place blocks).
    public var guestMemfdAddress: UInt64?
    /// Shared backing of a legacy block: a memfd (nil for anonymous memory) and its host mapping.
    public var sharedFD: Int32?
    public var sharedAddress: UInt64?
    /// Tracked state per block offset, over the offsets some memslot makes visible.
    public var layout: Layout

    public init(
        name: String, size: UInt64, backend: ResolvedBackend, guestMemfdFlags: UInt64, layout: Layout = Layout()
    ) {
        self.name = name
        self.size = size
        self.backend = backend
        self.guestMemfdFlags = guestMemfdFlags
        self.layout = layout
    }

    /// The host address through which the guest's shared view of this block is reached.
    public var hostAddress: UInt64? { backend.isInPlace ? guestMemfdAddress : sharedAddress }
}

/// A memslot as bound on a host.
public struct LiveMemslot: Sendable, Hashable, Codable {
    public var slot: UInt32
    public var mapping: Mapping
    public var flags: UInt32
    public var userspaceAddress: UInt64

    public init(slot: UInt32, mapping: Mapping, flags: UInt32, userspaceAddress: UInt64) {
        self.slot = slot
        self.mapping = mapping
        self.flags = flags
        self.userspaceAddress = userspaceAddress
    }
}

public enum ListenerEventKind: String, Sendable, Hashable, Codable {
    /// The range became shared: a device may DMA-map it now (sent after conversion).
    case map
    /// The range is about to become private: a device must DMA-unmap it now (sent before conversion).
    case unmap
}

/// One notification to a listener, in guest-physical terms.
public struct ListenerEvent: Sendable, Hashable, Codable {
    public var sequence: UInt64
    public var listener: String
    public var kind: ListenerEventKind
    public var gpa: UInt64
    public var size: UInt64

    public init(sequence: UInt64, listener: String, kind: ListenerEventKind, gpa: UInt64, size: UInt64) {
        self.sequence = sequence
        self.listener = listener
        self.kind = kind
        self.gpa = gpa
        self.size = size
    }
}

/// What a host holds for one guest right now.
public struct LiveState: Sendable, Hashable, Codable {
    public var name: String
    public var vmType: VMType?
    public var vmFD: Int32?
    public var blocks: [LiveBlock]
    public var memslots: [LiveMemslot]
    public var listeners: [String]
    /// The most recent listener events, oldest first: at most `recentEventLimit`, so a state file, a `get`
    /// and an `apply` answer stay small however long a guest lives (the agent keeps a longer ring).
    public var events: [ListenerEvent]
    /// The number of the last event handed out, also to one a listener rejected: numbers are never reused.
    /// Absent in state files written before it was kept (then the last recorded event's number counts).
    public var lastEventSequence: UInt64?
    /// The outcome of the last apply or conversion, when it did not finish (for `get`).
    public var lastFailure: String?

    public init(name: String) {
        self.name = name
        self.blocks = []
        self.memslots = []
        self.listeners = []
        self.events = []
    }

    public var exists: Bool { vmFD != nil }

    public static let recentEventLimit = 64

    /// The number the next listener event gets.
    public var nextEventSequence: UInt64 { max(lastEventSequence ?? 0, events.last?.sequence ?? 0) + 1 }

    public func block(named name: String) -> LiveBlock? { blocks.first { $0.name == name } }

    public mutating func updateBlock(_ name: String, _ change: (inout LiveBlock) -> Void) {
        guard let index = blocks.firstIndex(where: { $0.name == name }) else { return }
        change(&blocks[index])
    }

    /// The lowest memslot id not in use.
    public var nextFreeSlot: UInt32 {
        let used = Set(memslots.map(\.slot))
        var slot: UInt32 = 0
        while used.contains(slot) { slot += 1 }
        return slot
    }

    public var addressMap: AddressMap { AddressMap(mappings: memslots.map(\.mapping)) }
}
