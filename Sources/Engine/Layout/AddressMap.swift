import Config

/// Translation between guest-physical addresses and (block, offset) through a manifest's mappings.
///
/// One block may be mapped at several GPAs, and one offset range may even be visible at two GPAs. Lookups
/// binary-search mappings sorted by GPA and, per block, by offset.
public struct AddressMap: Sendable, Hashable {
    public let mappings: [Mapping]
    private let byGPA: SortedWindows
    private let byBlock: [String: SortedWindows]

    public init(mappings: [Mapping]) {
        self.mappings = mappings
        byGPA = SortedWindows(mappings.enumerated().map { (index: $0.offset, range: $0.element.gpaRange) })
        var perBlock: [String: [(index: Int, range: Range<UInt64>)]] = [:]
        for (index, mapping) in mappings.enumerated() {
            perBlock[mapping.block, default: []].append((index: index, range: mapping.offsetRange))
        }
        byBlock = perBlock.mapValues(SortedWindows.init)
    }

    /// The mapped pieces of a GPA range, ascending by GPA; unmapped holes are skipped.
    public func blockRanges(forGPA range: Range<UInt64>) -> [BlockSlice] {
        var slices: [BlockSlice] = []
        byGPA.forEachWindow(intersecting: range) { index, window in
            let mapping = mappings[index]
            let gpa = max(window.lowerBound, range.lowerBound)..<min(window.upperBound, range.upperBound)
            let offset = mapping.offset + (gpa.lowerBound - mapping.gpa)
            slices.append(
                BlockSlice(
                    block: mapping.block, offsets: offset..<(offset + gpa.byteCount),
                    gpaRange: gpa, mappingIndex: index))
        }
        return slices
    }

    /// The parts of a GPA range that no mapping covers, ascending.
    public func unmappedParts(ofGPA range: Range<UInt64>) -> [Range<UInt64>] {
        var holes: [Range<UInt64>] = []
        var cursor = range.lowerBound
        byGPA.forEachWindow(intersecting: range) { _, window in
            if cursor < window.lowerBound { holes.append(cursor..<window.lowerBound) }
            cursor = max(cursor, window.upperBound)
        }
        if cursor < range.upperBound { holes.append(cursor..<range.upperBound) }
        return holes
    }

    /// Every GPA window where (parts of) `offsets` of `block` are visible, ascending by GPA.
    public func gpaRanges(block: String, offsets: Range<UInt64>) -> [BlockSlice] {
        var slices: [BlockSlice] = []
        byBlock[block]?.forEachWindow(intersecting: offsets) { index, window in
            let mapping = mappings[index]
            let piece = max(window.lowerBound, offsets.lowerBound)..<min(window.upperBound, offsets.upperBound)
            let gpa = mapping.gpa + (piece.lowerBound - mapping.offset)
            slices.append(
                BlockSlice(
                    block: block, offsets: piece, gpaRange: gpa..<(gpa + piece.byteCount),
                    mappingIndex: index))
        }
        return slices.sorted { ($0.gpaRange.lowerBound, $0.mappingIndex) < ($1.gpaRange.lowerBound, $1.mappingIndex) }
    }
}

// MARK: - Whole-layout conversions

extension AddressMap {
    /// A GPA layout seen in each block's offset space (only blocks some mapping shows appear as keys).
    /// Where two windows show the same offset, a value set in only one of them wins; set in both with
    /// different values is a conflict, and all conflicts are thrown together.
    /// Linear in runs when a block's windows do not overlap in offsets.
    public func blockLayouts(fromGPALayout gpaLayout: Layout) throws(LayoutConflictError) -> [String: Layout] {
        var layouts: [String: Layout] = [:]
        var conflicts: [LayoutConflictError.Conflict] = []
        for (block, windows) in byBlock {
            var layout = Layout()
            // Offsets at or beyond `covered` have not been written by an earlier window of this block.
            var covered: UInt64 = 0
            windows.forEachWindow(intersecting: 0..<UInt64.max) { index, window in
                let mapping = mappings[index]
                gpaLayout.forEachRun(in: mapping.gpaRange) { run in
                    let start = run.range.lowerBound - mapping.gpa + mapping.offset
                    let offsets = start..<(start + run.range.byteCount)
                    if offsets.lowerBound < covered {
                        let overlap = offsets.lowerBound..<min(offsets.upperBound, covered)
                        layout.forEachRun(in: overlap) { existing in
                            if existing.value != run.value {
                                record(
                                    &conflicts, block: block, offsets: existing.range,
                                    values: [existing.value, run.value])
                            }
                        }
                        // Keep the first window's values; fill only what it left unset.
                        for gap in layout.gaps(in: overlap) { layout.assign(run.value, to: gap) }
                        if offsets.upperBound > covered {
                            layout.assignOrAppend(run.value, to: covered..<offsets.upperBound)
                        }
                    } else {
                        layout.assignOrAppend(run.value, to: offsets)
                    }
                }
                covered = max(covered, window.upperBound)
            }
            layouts[block] = layout
        }
        guard conflicts.isEmpty else {
            throw LayoutConflictError(
                conflicts: conflicts.map { conflict in
                    var located = conflict
                    located.gpaRanges = gpaRanges(block: conflict.block, offsets: conflict.offsets).map(\.gpaRange)
                    return located
                }.sorted { ($0.block, $0.offsets.lowerBound) < ($1.block, $1.offsets.lowerBound) })
        }
        return layouts
    }

    /// Each block's offset layout shown at every GPA window of its mappings.
    /// Linear in runs when mappings do not overlap in GPA (validated manifests).
    public func gpaLayout(fromBlockLayouts blockLayouts: [String: Layout]) -> Layout {
        var layout = Layout()
        byGPA.forEachWindow(intersecting: 0..<UInt64.max) { index, _ in
            let mapping = mappings[index]
            blockLayouts[mapping.block]?.forEachRun(in: mapping.offsetRange) { run in
                let start = run.range.lowerBound - mapping.offset + mapping.gpa
                layout.assignOrAppend(run.value, to: start..<(start + run.range.byteCount))
            }
        }
        return layout
    }

    /// Appends a conflict, coalescing it with the previous one when they touch with the same values.
    private func record(
        _ conflicts: inout [LayoutConflictError.Conflict], block: String,
        offsets: Range<UInt64>, values: [MemoryState]
    ) {
        if let last = conflicts.last, last.block == block, last.values == values,
            last.offsets.upperBound == offsets.lowerBound
        {
            conflicts[conflicts.count - 1].offsets = last.offsets.lowerBound..<offsets.upperBound
        } else {
            conflicts.append(
                LayoutConflictError.Conflict(block: block, offsets: offsets, gpaRanges: [], values: values))
        }
    }
}

/// The same block offsets are visible at several GPAs and the GPA layout gives them different states.
public struct LayoutConflictError: Error, Sendable, Hashable, CustomStringConvertible {
    public struct Conflict: Sendable, Hashable, CustomStringConvertible {
        public var block: String
        public var offsets: Range<UInt64>
        /// Every GPA window showing (part of) these offsets.
        public var gpaRanges: [Range<UInt64>]
        /// The differing states, in the order the windows were read.
        public var values: [MemoryState]

        public var description: String {
            let windows = gpaRanges.map {
                "0x\(String($0.lowerBound, radix: 16))..<0x\(String($0.upperBound, radix: 16))"
            }
            return
                "block \(block) offsets 0x\(String(offsets.lowerBound, radix: 16))..<0x\(String(offsets.upperBound, radix: 16))"
                + " are \(values.map(\.rawValue).joined(separator: " and ")) at gpa \(windows.joined(separator: ", "))"
        }
    }

    public var conflicts: [Conflict]

    public var description: String { conflicts.map(\.description).joined(separator: "; ") }
}
