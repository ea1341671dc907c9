import Config

/// One difference between the manifest and a host's live state.
public struct DiffEntry: Sendable, Hashable, Codable {
    public enum Change: String, Sendable, Hashable, Codable {
        /// In the manifest, not on the host.
        case missing
        /// On the host, not in the manifest.
        case extra
        /// On both, different.
        case changed
    }

    public var change: Change
    /// What the entry is about.
    public enum Kind: String, Sendable, Hashable, Codable {
        case vm, block, mapping, range, listener
    }

    public var kind: Kind
    public var name: String
    public var expected: String?
    public var actual: String?
    /// For ranges: guest-physical windows where the difference is visible.
    public var gpaRanges: [String]

    public init(
        change: Change, kind: Kind, name: String, expected: String? = nil, actual: String? = nil,
        gpaRanges: [String] = []
    ) {
        self.change = change
        self.kind = kind
        self.name = name
        self.expected = expected
        self.actual = actual
        self.gpaRanges = gpaRanges
    }
}

/// Desired vs observed, per VM, block, mapping, range and listener.
public struct StateDiff: Sendable, Hashable, Codable {
    public var guest: String
    public var entries: [DiffEntry]
    /// Live blocks that converging would tear down, as the plan would (shown first: they lose data).
    public var replacements: [BlockReplacement] = []

    public var hasChanges: Bool { !entries.isEmpty }

    public init(desired: DesiredState, observed: LiveState) {
        guest = desired.name
        entries = []
        guard observed.exists else {
            entries.append(
                DiffEntry(change: .missing, kind: .vm, name: desired.name, expected: desired.vmType.rawValue))
            for block in desired.blocks {
                entries.append(DiffEntry(change: .missing, kind: .block, name: block.name, expected: describe(block)))
            }
            return
        }
        replacements = observed.blocks.compactMap {
            BlockReplacement.needed(live: $0, observed: observed, desired: desired)
        }
        if let type = observed.vmType, type != desired.vmType {
            entries.append(
                DiffEntry(
                    change: .changed, kind: .vm, name: desired.name, expected: desired.vmType.rawValue,
                    actual: type.rawValue))
        }
        let addressMap = observed.addressMap
        for block in desired.blocks {
            guard let live = observed.block(named: block.name) else {
                entries.append(DiffEntry(change: .missing, kind: .block, name: block.name, expected: describe(block)))
                continue
            }
            if !Planner.sameObjects(live: live, desired: block, conversion: desired.conversion) {
                entries.append(
                    DiffEntry(
                        change: .changed, kind: .block, name: block.name, expected: describe(block),
                        actual: describe(live)))
                continue
            }
            let wanted = Set(desired.mappings.filter { $0.block == block.name })
            let present = Set(observed.memslots.map(\.mapping).filter { $0.block == block.name })
            for mapping in desired.mappings where mapping.block == block.name && !present.contains(mapping) {
                entries.append(
                    DiffEntry(change: .missing, kind: .mapping, name: block.name, expected: describe(mapping)))
            }
            for memslot in observed.memslots
            where memslot.mapping.block == block.name && !wanted.contains(memslot.mapping) {
                entries.append(
                    DiffEntry(
                        change: .extra, kind: .mapping, name: block.name,
                        actual: "slot \(memslot.slot): " + describe(memslot.mapping)))
            }
            guard wanted == present, let target = desired.blockLayouts[block.name] else { continue }
            for transition in Layout.transitions(from: live.layout, to: target) {
                let windows = addressMap.gpaRanges(block: block.name, offsets: transition.range)
                    .map { "\(hex($0.gpaRange.lowerBound))-\(hex($0.gpaRange.upperBound - 1))" }
                entries.append(
                    DiffEntry(
                        change: .changed, kind: .range,
                        name:
                            "\(block.name)[\(hex(transition.range.lowerBound))-\(hex(transition.range.upperBound - 1))]",
                        expected: transition.to?.rawValue ?? "unmapped",
                        actual: transition.from?.rawValue ?? "unmapped",
                        gpaRanges: windows))
            }
        }
        let desiredNames = Set(desired.blocks.map(\.name))
        for block in observed.blocks where !desiredNames.contains(block.name) {
            entries.append(DiffEntry(change: .extra, kind: .block, name: block.name, actual: describe(block)))
        }
        for listener in desired.listeners where !observed.listeners.contains(listener) {
            entries.append(DiffEntry(change: .missing, kind: .listener, name: listener))
        }
        for listener in observed.listeners where !desired.listeners.contains(listener) {
            entries.append(DiffEntry(change: .extra, kind: .listener, name: listener))
        }
    }

    private func describe(_ block: DesiredBlock) -> String {
        "\(block.backend.name), \(formatSize(block.size)), gmem flags \(hex(block.guestMemfdFlags))"
    }

    private func describe(_ block: LiveBlock) -> String {
        var text = "\(block.backend.name), \(formatSize(block.size)), gmem flags \(hex(block.guestMemfdFlags))"
        if block.guestMemfd == nil {
            text += " (incomplete: no guest_memfd)"
        } else if block.hostAddress == nil {
            text += " (incomplete: no host mapping)"
        }
        return text
    }

    private func describe(_ mapping: Mapping) -> String {
        "offset \(hex(mapping.offset)) size \(formatSize(mapping.size)) at gpa \(hex(mapping.gpa))"
    }
}
