import Config

/// A live block that a plan tears down (and builds again when the manifest still has it): why, and what is
/// lost. guest_memfd memslots are immutable and a guest_memfd cannot be resized, so any change to a block's
/// objects or mappings replaces it, and its memory contents go with it.
public struct BlockReplacement: Sendable, Hashable, Codable {
    public enum Reason: String, Sendable, Hashable, Codable {
        /// Size, backend, guest_memfd flags or mappings differ from the manifest.
        case changed
        /// An earlier apply stopped before the block had every object.
        case incomplete
        /// The manifest no longer has the block.
        case removed
    }

    public var block: String
    public var reason: Reason
    /// What differs, one line each ("size 64 MiB -> 128 MiB", "mapping - offset 0x0 size 64 MiB at gpa 0x0").
    public var changes: [String]
    /// Whether memory the guest may have written is discarded (false only for a half-built block).
    public var destroysData: Bool
    /// What goes away, for people: the block's bytes and memslots.
    public var lost: String

    public init(block: String, reason: Reason, changes: [String], destroysData: Bool, lost: String) {
        self.block = block
        self.reason = reason
        self.changes = changes
        self.destroysData = destroysData
        self.lost = lost
    }

    /// The replacement of `live` that reaching the desired state needs, or nil when the block is kept.
    public static func needed(live: LiveBlock, observed: LiveState, desired: DesiredState) -> BlockReplacement? {
        let wanted = desired.block(named: live.name)
        let wantedMappings = desired.mappings.filter { $0.block == live.name }
        let slots = observed.memslots.filter { $0.mapping.block == live.name }
        let liveMappings = slots.map(\.mapping)
        let keep =
            wanted.map { Planner.sameObjects(live: live, desired: $0, conversion: desired.conversion) } == true
            && Set(wantedMappings) == Set(liveMappings)
        guard !keep else { return nil }
        let slotList = slots.map(\.slot).sorted().map(String.init)
        let lost =
            "\(formatSize(live.size)) of memory contents"
            + (slotList.isEmpty ? "" : ", memslot\(slotList.count == 1 ? "" : "s") \(slotList.joined(separator: ", "))")
        guard let wanted else {
            return BlockReplacement(
                block: live.name, reason: .removed, changes: ["not in the manifest"], destroysData: true, lost: lost)
        }
        var changes: [String] = []
        if live.size != wanted.size { changes.append("size \(formatSize(live.size)) -> \(formatSize(wanted.size))") }
        if live.backend != wanted.backend { changes.append("backend \(live.backend.name) -> \(wanted.backend.name)") }
        let ignored = desired.conversion == .gmemAttributes2 ? KVMConstants.gmemFlagInitShared : 0
        if live.guestMemfdFlags & ~ignored != wanted.guestMemfdFlags & ~ignored, live.backend == wanted.backend {
            changes.append("guest_memfd flags \(hex(live.guestMemfdFlags)) -> \(hex(wanted.guestMemfdFlags))")
        }
        let wantedSet = Set(wantedMappings), liveSet = Set(liveMappings)
        for mapping in liveMappings where !wantedSet.contains(mapping) {
            changes.append("mapping - " + describe(mapping))
        }
        for mapping in wantedMappings where !liveSet.contains(mapping) {
            changes.append("mapping + " + describe(mapping))
        }
        if !Planner.isComplete(live) {
            return BlockReplacement(
                block: live.name, reason: .incomplete,
                changes: ["an earlier apply stopped before the block was complete"] + changes,
                destroysData: false, lost: lost)
        }
        return BlockReplacement(block: live.name, reason: .changed, changes: changes, destroysData: true, lost: lost)
    }

    static func describe(_ mapping: Mapping) -> String {
        "offset \(hex(mapping.offset)) size \(formatSize(mapping.size)) at gpa \(hex(mapping.gpa))"
    }
}
