/// Rules of `spec.mappings`: alignment, inside the block, known block, no block offset mapped twice,
/// no two mappings at the same guest addresses.
extension ManifestValidator {
    mutating func checkMappings() {
        let blockNames = spec.blocks.map(\.name).filter { !$0.isEmpty }
        for (index, mapping) in spec.mappings.enumerated() {
            let path = "spec.mappings[\(index)]"
            guard !isTainted(path) else { continue }
            checkShape(mapping, path: path)
            guard let blockIndex = spec.blocks.firstIndex(where: { $0.name == mapping.block }) else {
                let hint = Suggestion.didYouMean(mapping.block, in: blockNames)
                error("\(path).block", "unknown block `\(mapping.block)`\(hint)",
                      blockNames.isEmpty ? "spec.blocks defines no block" : "defined blocks: \(blockNames.joined(separator: ", "))")
                continue
            }
            let block = spec.blocks[blockIndex]
            let blockPath = "spec.blocks[\(blockIndex)]"
            if !isTainted(blockPath) {
                checkInsideBlock(mapping, block, path: path)
                if let hugePage = hugePageSize(of: block, path: blockPath, reporting: false) {
                    let unitName = "the \(formatSize(hugePage)) hugetlb page size of block `\(block.name)`"
                    checkAligned(mapping.offset, to: hugePage, at: "\(path).offset", what: "offset", unitName: unitName)
                    checkAligned(mapping.size, to: hugePage, at: "\(path).size", what: "mapping size", unitName: unitName)
                }
            }
            checkOverlaps(mapping, index: index, path: path)
        }
    }

    private mutating func checkShape(_ mapping: Mapping, path: String) {
        if mapping.size == 0 {
            error("\(path).size", "mapping size is 0", "a mapping covers at least one page (\(formatSize(pageSize)))")
        } else {
            checkAligned(mapping.size, to: pageSize, at: "\(path).size", what: "mapping size", unitName: pageSizeName)
        }
        checkAligned(mapping.offset, to: pageSize, at: "\(path).offset", what: "offset", unitName: pageSizeName)
        checkAligned(mapping.gpa, to: pageSize, at: "\(path).gpa", what: "guest physical address", unitName: pageSizeName)
        if mapping.gpa.addingReportingOverflow(mapping.size).overflow {
            error("\(path).size", "mapping runs past the end of the 64-bit guest address space",
                  "gpa \(formatHex(mapping.gpa)) + size \(formatHex(mapping.size)) exceeds 0xFFFFFFFFFFFFFFFF")
        }
    }

    private mutating func checkInsideBlock(_ mapping: Mapping, _ block: Block, path: String) {
        let (end, overflow) = mapping.offset.addingReportingOverflow(mapping.size)
        guard overflow || end > block.size else { return }
        if mapping.offset >= block.size {
            error("\(path).offset", "offset \(formatSize(mapping.offset)) is outside block `\(block.name)`",
                  "block `\(block.name)` is \(formatSize(block.size)); offsets run from 0 to \(formatHex(block.size &- 1))")
        } else {
            error("\(path).size", "mapping exceeds its block `\(block.name)`",
                  "offset \(formatSize(mapping.offset)) + size \(formatSize(mapping.size)) ends past the block's \(formatSize(block.size)); "
                  + "at this offset the size can be at most \(formatSize(block.size - mapping.offset))")
        }
    }

    private mutating func checkOverlaps(_ mapping: Mapping, index: Int, path: String) {
        guard !mapping.offset.addingReportingOverflow(mapping.size).overflow,
              !mapping.gpa.addingReportingOverflow(mapping.size).overflow else { return }
        for (otherIndex, other) in spec.mappings.enumerated().prefix(index) {
            let otherPath = "spec.mappings[\(otherIndex)]"
            guard !isTainted(otherPath), !other.offset.addingReportingOverflow(other.size).overflow,
                  !other.gpa.addingReportingOverflow(other.size).overflow else { continue }
            if other.block == mapping.block, mapping.offsetRange.overlaps(other.offsetRange) {
                let shared = mapping.offsetRange.clamped(to: other.offsetRange)
                error("\(path).offset", "offsets \(formatRange(shared)) of block `\(mapping.block)` are already mapped by \(otherPath)",
                      "a block offset is mapped at one guest address only (\(whereIs(otherPath))); use offsets past \(formatHex(other.offset + other.size))")
            }
            if mapping.gpaRange.overlaps(other.gpaRange) {
                let shared = mapping.gpaRange.clamped(to: other.gpaRange)
                error("\(path).gpa", "guest range \(formatRange(mapping.gpaRange)) overlaps \(otherPath) at \(formatRange(shared))",
                      "mappings occupy distinct guest addresses (\(whereIs(otherPath)) covers \(formatRange(other.gpaRange)))")
            }
        }
    }
}
