/// Rules of `spec.layout`: private memory only on VM types that have it, ranges aligned and inside
/// mapped memory (not across holes), no range both shared and private.
extension ManifestValidator {
    mutating func checkLayout() {
        let vmType = spec.vm.type
        let vmTainted = isTainted("spec.vm")
        let fix = "a default VM never has private memory; use vm.type sw-protected, sev-snp or tdx"
        if !vmTainted && !vmType.hasPrivateMemory && spec.layout.defaultState == .private && !isTainted("spec.layout.default") {
            error("spec.layout.default", "private layout on a `default` VM", fix + ", or set layout.default: shared")
        }
        let holes = MappedMemory(spec.mappings.enumerated().filter { !isTainted("spec.mappings[\($0.offset)]") }
                                     .map { (range: $0.element.gpaRange, path: "spec.mappings[\($0.offset)]") },
                                 complete: spec.mappings.indices.allSatisfy { !isTainted("spec.mappings[\($0)]") } && !isTainted("spec.mappings"))
        for (list, ranges) in [("shared", spec.layout.shared), ("private", spec.layout.private)] {
            for (index, range) in ranges.enumerated() {
                let path = "spec.layout.\(list)[\(index)]"
                guard !isTainted(path) else { continue }
                if list == "private" && !vmTainted && !vmType.hasPrivateMemory {
                    // Reported with its other faults (alignment, holes), so one edit fixes the range.
                    error(path, "private range \(formatRange(range.range)) on a `default` VM", fix)
                }
                checkRange(range, path: path, mapped: holes)
            }
        }
        if vmTainted || vmType.hasPrivateMemory { checkSharedAndPrivate() }
    }

    private mutating func checkRange(_ range: GuestRange, path: String, mapped: MappedMemory) {
        let hasFields = manifest.sourceMap.ranges["\(path).gpa"] != nil
        let gpaPath = hasFields ? "\(path).gpa" : path
        let sizePath = hasFields ? "\(path).size" : path
        if range.size == 0 {
            error(sizePath, "layout range at \(formatHex(range.gpa)) has size 0", "a range covers at least one page (\(formatSize(pageSize)))")
            return
        }
        if range.gpa.addingReportingOverflow(range.size).overflow {
            error(sizePath, "layout range runs past the end of the 64-bit guest address space")
            return
        }
        checkAligned(range.gpa, to: pageSize, at: gpaPath, what: "range start", unitName: pageSizeName)
        checkAligned(range.size, to: pageSize, at: sizePath, what: "range size", unitName: pageSizeName)
        guard mapped.complete, let gap = mapped.firstGap(in: range.range) else { return }
        let text = formatRange(range.range)
        switch (gap.before, gap.after) {
        case let (before?, after?):
            error(path, "range \(text) crosses the unmapped hole \(formatRange(gap.hole)) between \(before) and \(after)",
                  "layout ranges lie inside mapped memory; split the range at the hole")
        case let (before?, nil):
            error(path, "range \(text) runs past mapped memory at \(formatHex(gap.hole.lowerBound)) (the end of \(before))",
                  "layout ranges lie inside mapped memory; mapped: \(mapped.summary)")
        case let (nil, after?):
            error(path, "range \(text) starts below mapped memory (\(after) starts at \(formatHex(gap.hole.upperBound)))",
                  "layout ranges lie inside mapped memory; mapped: \(mapped.summary)")
        case (nil, nil):
            error(path, "range \(text) is outside mapped memory", "layout ranges lie inside mapped memory; mapped: \(mapped.summary)")
        }
    }

    private mutating func checkSharedAndPrivate() {
        for (index, range) in spec.layout.private.enumerated() where !isTainted("spec.layout.private[\(index)]") && range.size > 0 {
            for (sharedIndex, shared) in spec.layout.shared.enumerated() where !isTainted("spec.layout.shared[\(sharedIndex)]") {
                guard shared.size > 0, range.range.overlaps(shared.range) else { continue }
                let sharedPath = "spec.layout.shared[\(sharedIndex)]"
                error("spec.layout.private[\(index)]",
                      "range \(formatRange(range.range.clamped(to: shared.range))) is listed both private and shared (\(sharedPath))",
                      "a guest range has one state; remove it from one list (\(whereIs(sharedPath)))")
            }
        }
    }
}

/// The guest ranges covered by mappings, to find where a layout range leaves mapped memory.
struct MappedMemory {
    struct Gap {
        var hole: Range<UInt64>
        /// The mapping ending where the hole starts, and the one starting where it ends.
        var before: String?
        var after: String?
    }

    let spans: [(range: Range<UInt64>, path: String)]
    /// False when some mapping could not be read: coverage is then unknown and not checked.
    let complete: Bool

    init(_ spans: [(range: Range<UInt64>, path: String)], complete: Bool) {
        self.spans = spans.filter { !$0.range.isEmpty }.sorted { $0.range.lowerBound < $1.range.lowerBound }
        self.complete = complete
    }

    var summary: String {
        spans.isEmpty ? "nothing" : spans.map { formatRange($0.range) }.joined(separator: ", ")
    }

    /// The unmapped hole holding the first point of `range` that no mapping covers, with the
    /// mappings on either side of the hole.
    func firstGap(in range: Range<UInt64>) -> Gap? {
        var cursor = range.lowerBound
        // Walk along mappings that cover the cursor (adjacent ones chain) until a point is uncovered.
        var moved = true
        while moved {
            moved = false
            for span in spans where span.range.contains(cursor) {
                cursor = span.range.upperBound
                moved = true
            }
        }
        guard cursor < range.upperBound else { return nil }
        let before = spans.filter { $0.range.upperBound <= cursor }.max { $0.range.upperBound < $1.range.upperBound }
        let after = spans.filter { $0.range.lowerBound > cursor }.min { $0.range.lowerBound < $1.range.lowerBound }
        let hole = (before?.range.upperBound ?? 0)..<(after?.range.lowerBound ?? range.upperBound)
        return Gap(hole: hole, before: before?.path, after: after?.path)
    }
}
