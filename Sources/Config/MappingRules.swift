/// Rules of `spec.mappings`: alignment, inside the block, known block, no block offset mapped twice,
/// no two mappings at the same guest addresses.
extension ManifestValidator {
    mutating func checkMappings() {
        let blockNames = spec.blocks.map(\.name).filter { !$0.isEmpty }
        var blockIndexByName: [String: Int] = [:]
        for (index, block) in spec.blocks.enumerated() where blockIndexByName[block.name] == nil {
            blockIndexByName[block.name] = index
        }
        var checkable: [Int] = []
        for (index, mapping) in spec.mappings.enumerated() {
            let path = "spec.mappings[\(index)]"
            guard !isTainted(path) else { continue }
            checkShape(mapping, path: path)
            if !mapping.offset.addingReportingOverflow(mapping.size).overflow,
                !mapping.gpa.addingReportingOverflow(mapping.size).overflow
            {
                checkable.append(index)
            }
            guard let blockIndex = blockIndexByName[mapping.block] else {
                let hint = Suggestion.didYouMean(mapping.block, in: blockNames)
                error(
                    "\(path).block", "unknown block `\(NameRule.printable(mapping.block))`\(hint)",
                    blockNames.isEmpty ? "spec.blocks defines no block" : "defined blocks: \(Self.list(blockNames))")
                continue
            }
            let block = spec.blocks[blockIndex]
            let blockPath = "spec.blocks[\(blockIndex)]"
            if !isTainted(blockPath) {
                checkInsideBlock(mapping, block, path: path)
                if let hugePage = hugePageSize(of: block, path: blockPath, reporting: false) {
                    let unitName = "the \(formatSize(hugePage)) hugetlb page size of block `\(block.name)`"
                    checkAligned(mapping.offset, to: hugePage, at: "\(path).offset", what: "offset", unitName: unitName)
                    checkAligned(
                        mapping.size, to: hugePage, at: "\(path).size", what: "mapping size", unitName: unitName)
                }
            }
        }
        checkOverlaps(checkable)
    }

    /// Names joined for a message, at most 10 of them ("..., and 31 more").
    static func list(_ names: [String]) -> String {
        names.count <= 10
            ? names.joined(separator: ", ")
            : names.prefix(10).joined(separator: ", ") + ", and \(names.count - 10) more"
    }

    private mutating func checkShape(_ mapping: Mapping, path: String) {
        if mapping.size == 0 {
            error("\(path).size", "mapping size is 0", "a mapping covers at least one page (\(formatSize(pageSize)))")
        } else {
            checkAligned(mapping.size, to: pageSize, at: "\(path).size", what: "mapping size", unitName: pageSizeName)
        }
        checkAligned(mapping.offset, to: pageSize, at: "\(path).offset", what: "offset", unitName: pageSizeName)
        checkAligned(
            mapping.gpa, to: pageSize, at: "\(path).gpa", what: "guest physical address", unitName: pageSizeName)
        let (end, overflow) = mapping.gpa.addingReportingOverflow(mapping.size)
        if overflow {
            error(
                "\(path).size", "mapping runs past the end of the 64-bit guest address space",
                "gpa \(formatHex(mapping.gpa)) + size \(formatHex(mapping.size)) exceeds 0xFFFFFFFFFFFFFFFF")
        } else if end > Manifest.guestAddressLimit {
            error(
                "\(path).size",
                "mapping ends at \(formatHex(end)), past the \(Manifest.guestAddressLimitName) guest-physical limit",
                "guest-physical addresses end at or below \(formatHex(Manifest.guestAddressLimit)) (57 bits, the widest KVM guest)"
            )
        }
    }

    private mutating func checkInsideBlock(_ mapping: Mapping, _ block: Block, path: String) {
        let (end, overflow) = mapping.offset.addingReportingOverflow(mapping.size)
        guard overflow || end > block.size else { return }
        if mapping.offset >= block.size {
            error(
                "\(path).offset", "offset \(formatSize(mapping.offset)) is outside block `\(block.name)`",
                "block `\(block.name)` is \(formatSize(block.size)); offsets run from 0 to \(formatHex(block.size &- 1))"
            )
        } else {
            error(
                "\(path).size", "mapping exceeds its block `\(block.name)`",
                "offset \(formatSize(mapping.offset)) + size \(formatSize(mapping.size)) ends past the block's \(formatSize(block.size)); "
                    + "at this offset the size can be at most \(formatSize(block.size - mapping.offset))")
        }
    }

    /// Block offsets mapped twice and guest ranges used twice, found by one sort and sweep each (no pairwise
    /// comparison). Each overlapping pair is reported on the later mapping, naming the earlier one.
    private mutating func checkOverlaps(_ indices: [Int]) {
        let mappings = spec.mappings
        for (later, earlier) in overlappingPairs(indices.map { (range: mappings[$0].gpaRange, key: $0) }) {
            let mapping = mappings[later], other = mappings[earlier]
            let otherPath = "spec.mappings[\(earlier)]"
            let shared = mapping.gpaRange.clamped(to: other.gpaRange)
            error(
                "spec.mappings[\(later)].gpa",
                "guest range \(formatRange(mapping.gpaRange)) overlaps \(otherPath) at \(formatRange(shared))",
                "mappings occupy distinct guest addresses (\(whereIs(otherPath)) covers \(formatRange(other.gpaRange)))"
            )
        }
        // Offsets are compared within a block: group by block, then sweep each group.
        var byBlock: [String: [(range: Range<UInt64>, key: Int)]] = [:]
        for index in indices {
            byBlock[mappings[index].block, default: []].append((mappings[index].offsetRange, index))
        }
        for group in byBlock.values where group.count > 1 {
            for (later, earlier) in overlappingPairs(group) {
                let mapping = mappings[later], other = mappings[earlier]
                let otherPath = "spec.mappings[\(earlier)]"
                let shared = mapping.offsetRange.clamped(to: other.offsetRange)
                error(
                    "spec.mappings[\(later)].offset",
                    "offsets \(formatRange(shared)) of block `\(mapping.block)` are already mapped by \(otherPath)",
                    "a block offset is mapped at one guest address only (\(whereIs(otherPath))); use offsets past \(formatHex(other.offsetRange.upperBound))"
                )
            }
        }
    }
}

/// Pairs of overlapping ranges, as (later key, earlier key), from one sort and sweep: each range is compared
/// with the one reaching furthest among those starting before it. Every range that overlaps another is in
/// at least one pair, and each key is reported as the later party at most once. Empty ranges overlap nothing.
func overlappingPairs(_ items: [(range: Range<UInt64>, key: Int)]) -> [(later: Int, earlier: Int)] {
    let sorted = items.filter { !$0.range.isEmpty }.sorted {
        $0.range.lowerBound != $1.range.lowerBound ? $0.range.lowerBound < $1.range.lowerBound : $0.key < $1.key
    }
    var pairs: [(later: Int, earlier: Int)] = []
    var reported: Set<Int> = []
    var reach: (end: UInt64, key: Int)?
    for item in sorted {
        if let holder = reach, item.range.lowerBound < holder.end {
            let pair = item.key > holder.key ? (item.key, holder.key) : (holder.key, item.key)
            if reported.insert(pair.0).inserted { pairs.append(pair) }
        }
        if reach.map({ item.range.upperBound > $0.end }) ?? true {
            reach = (item.range.upperBound, item.key)
        }
    }
    return pairs
}
