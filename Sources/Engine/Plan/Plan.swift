import Config

/// The ordered operations that bring a host's state for one guest to the desired state.
public struct Plan: Sendable, Hashable, Codable {
    public var guest: String
    public var operations: [PlanOperation]
    /// How each block's backend was resolved (always said, so `auto` is never a surprise).
    public var resolutions: [String: String]
    /// Things a reader must know: replaced blocks, values only apply can know, skipped work.
    public var notes: [String]
    /// The layout transitions the plan performs, per block (for people: "ram 0x0-0x1fffff private -> shared").
    public var transitions: [BlockTransition]
    /// The listeners registered once the plan has run (nil: unchanged).
    public var listeners: [String]?
    /// Live blocks the plan tears down (and rebuilds): shown first, and refused by apply unless allowed.
    public var replacements: [BlockReplacement] = []

    public init(
        guest: String, operations: [PlanOperation] = [], resolutions: [String: String] = [:],
        notes: [String] = [], transitions: [BlockTransition] = [], listeners: [String]? = nil
    ) {
        self.guest = guest
        self.listeners = listeners
        self.operations = operations
        self.resolutions = resolutions
        self.notes = notes
        self.transitions = transitions
    }

    public var hasChanges: Bool { !operations.isEmpty }

    /// The replacements that discard memory contents (what apply asks before running).
    public var destructiveReplacements: [BlockReplacement] { replacements.filter(\.destroysData) }
}

/// A maximal range of one block whose state changes.
public struct BlockTransition: Sendable, Hashable, Codable {
    public var block: String
    public var offset: UInt64
    public var size: UInt64
    public var from: MemoryState?
    public var to: MemoryState
    /// The guest-physical windows where this range is visible.
    public var gpaRanges: [Range<UInt64>]

    public init(
        block: String, offset: UInt64, size: UInt64, from: MemoryState?, to: MemoryState, gpaRanges: [Range<UInt64>]
    ) {
        self.block = block
        self.offset = offset
        self.size = size
        self.from = from
        self.to = to
        self.gpaRanges = gpaRanges
    }
}

/// Why a plan cannot be made.
public struct PlanError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public var hint: String

    public init(_ message: String, hint: String = "") {
        self.message = message
        self.hint = hint
    }

    public var description: String { hint.isEmpty ? message : "\(message) (\(hint))" }
}
