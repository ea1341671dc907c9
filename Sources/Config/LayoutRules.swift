/// Rules of `spec.layout`: private memory only on VM types that have it, ranges aligned and inside
/// mapped memory (not across holes), no range both shared and private.
extension ManifestValidator {
    mutating func checkLayout() {
        let vmType = spec.vm.type
        let vmTainted = isTainted("spec.vm")
        let fix = "a default VM never has private memory; use vm.type sw-protected, sev-snp or tdx"
        if !vmTainted && !vmType.hasPrivateMemory && spec.layout.defaultState == .private
            && !isTainted("spec.layout.default")
        {
            error("spec.layout.default", "private layout on a `default` VM", fix + ", or set layout.default: shared")
        }
        let holes = MappedMemory(
            spec.mappings.enumerated().filter { !isTainted("spec.mappings[\($0.offset)]") }
                .map { (range: $0.element.gpaRange, index: $0.offset) },
            complete: spec.mappings.indices.allSatisfy { !isTainted("spec.mappings[\($0)]") }
                && !isTainted("spec.mappings"))
        for (list, ranges) in [("shared", spec.layout.shared), ("private", spec.layout.private)] {
            for (index, range) in ranges.enumerated() {
                // A path is a string only for a range with a problem: 100,000 valid ranges build none.
                func path() -> String { "spec.layout.\(list)[\(index)]" }
                guard !isTainted(path()) else { continue }
                if list == "private" && !vmTainted && !vmType.hasPrivateMemory {
                    // Reported with its other faults (alignment, holes), so one edit fixes the range.
                    error(path(), "private range \(formatRange(range.range)) on a `default` VM", fix)
                }
                checkRange(range, path: path(), mapped: holes)
            }
        }
        if vmTainted || vmType.hasPrivateMemory { checkSharedAndPrivate() }
    }

    private mutating func checkRange(
        _ range: GuestRange, path makePath: @autoclosure () -> String,
        mapped: MappedMemory
    ) {
        // `{gpa, size}` ranges point at the field, `"START-END"` ones at the range.
        let manifest = self.manifest
        func path() -> String { makePath() }
        func fieldPath(_ field: String) -> String {
            let path = makePath()
            return manifest.sourceMap.recorded("\(path).gpa") != nil ? "\(path).\(field)" : path
        }
        func gpaPath() -> String { fieldPath("gpa") }
        func sizePath() -> String { fieldPath("size") }
        if range.size == 0 {
            error(
                sizePath(), "layout range at \(formatHex(range.gpa)) has size 0",
                "a range covers at least one page (\(formatSize(pageSize)))")
            return
        }
        let (end, overflow) = range.gpa.addingReportingOverflow(range.size)
        if overflow {
            error(sizePath(), "layout range runs past the end of the 64-bit guest address space")
            return
        }
        if end > Manifest.guestAddressLimit {
            error(
                sizePath(),
                "layout range ends at \(formatHex(end)), past the \(Manifest.guestAddressLimitName) guest-physical limit",
                "guest-physical addresses end at or below \(formatHex(Manifest.guestAddressLimit))")
            return
        }
        checkAligned(range.gpa, to: pageSize, at: gpaPath(), what: "range start", unitName: pageSizeName)
        checkAligned(range.size, to: pageSize, at: sizePath(), what: "range size", unitName: pageSizeName)
        guard mapped.complete, let gap = mapped.firstGap(in: range.range) else { return }
        let text = formatRange(range.range)
        switch (gap.before, gap.after) {
        case let (before?, after?):
            error(
                path(),
                "range \(text) crosses the unmapped hole \(formatRange(gap.hole)) between \(before) and \(after)",
                "layout ranges lie inside mapped memory; split the range at the hole")
        case let (before?, nil):
            error(
                path(),
                "range \(text) runs past mapped memory at \(formatHex(gap.hole.lowerBound)) (the end of \(before))",
                "layout ranges lie inside mapped memory; mapped: \(mapped.summary)")
        case let (nil, after?):
            error(
                path(),
                "range \(text) starts below mapped memory (\(after) starts at \(formatHex(gap.hole.upperBound)))",
                "layout ranges lie inside mapped memory; mapped: \(mapped.summary)")
        case (nil, nil):
            error(
                path(), "range \(text) is outside mapped memory",
                "layout ranges lie inside mapped memory; mapped: \(mapped.summary)")
        }
    }

    /// Ranges listed both shared and private, by one sort and sweep: each private range is reported once,
    /// against the shared range reaching furthest among those starting below its end.
    private mutating func checkSharedAndPrivate() {
        let shared = spec.layout.shared.enumerated()
            .filter { $0.element.size > 0 && !isTainted("spec.layout.shared[\($0.offset)]") }
            .map { (range: $0.element.range, index: $0.offset) }
            .sorted { $0.range.lowerBound < $1.range.lowerBound }
        guard !shared.isEmpty else { return }
        // reach[k]: the shared range with the highest end among shared[0...k].
        var reach: [Int] = []
        reach.reserveCapacity(shared.count)
        for k in shared.indices {
            reach.append(
                k > 0 && shared[reach[k - 1]].range.upperBound >= shared[k].range.upperBound ? reach[k - 1] : k)
        }
        for (index, range) in spec.layout.private.enumerated()
        where range.size > 0 && !isTainted("spec.layout.private[\(index)]") {
            // The last shared range starting below this one's end.
            var low = 0, high = shared.count
            while low < high {
                let middle = (low + high) / 2
                if shared[middle].range.lowerBound < range.range.upperBound { low = middle + 1 } else { high = middle }
            }
            guard low > 0 else { continue }
            let candidate = shared[reach[low - 1]]
            guard candidate.range.overlaps(range.range) else { continue }
            let sharedPath = "spec.layout.shared[\(candidate.index)]"
            error(
                "spec.layout.private[\(index)]",
                "range \(formatRange(range.range.clamped(to: candidate.range))) is listed both private and shared (\(sharedPath))",
                "a guest range has one state; remove it from one list (\(whereIs(sharedPath)))")
        }
    }
}

/// The guest ranges covered by mappings, to find where a layout range leaves mapped memory: mappings merged
/// into disjoint covered stretches once, then each query is a binary search.
struct MappedMemory {
    struct Gap {
        var hole: Range<UInt64>
        /// The mapping ending where the hole starts, and the one starting where it ends.
        var before: String?
        var after: String?
    }

    /// A maximal stretch of covered addresses, with the mapping starting it and the one reaching its end.
    struct Stretch {
        var range: Range<UInt64>
        var first: Int
        var last: Int
    }

    let stretches: [Stretch]
    /// False when some mapping could not be read: coverage is then unknown and not checked.
    let complete: Bool

    init(_ spans: [(range: Range<UInt64>, index: Int)], complete: Bool) {
        let sorted = spans.filter { !$0.range.isEmpty }.sorted {
            $0.range.lowerBound != $1.range.lowerBound ? $0.range.lowerBound < $1.range.lowerBound : $0.index < $1.index
        }
        var stretches: [Stretch] = []
        for span in sorted {
            if let last = stretches.last, span.range.lowerBound <= last.range.upperBound {
                if span.range.upperBound > last.range.upperBound {
                    stretches[stretches.count - 1].range = last.range.lowerBound..<span.range.upperBound
                    stretches[stretches.count - 1].last = span.index
                }
            } else {
                stretches.append(Stretch(range: span.range, first: span.index, last: span.index))
            }
        }
        self.stretches = stretches
        self.complete = complete
    }

    /// The covered stretches for a message, at most 8 of them.
    var summary: String {
        guard !stretches.isEmpty else { return "nothing" }
        let shown = stretches.prefix(8).map { formatRange($0.range) }.joined(separator: ", ")
        return stretches.count > 8 ? shown + ", and \(stretches.count - 8) more" : shown
    }

    /// Index of the first stretch whose start is above `address`.
    private func firstStarting(above address: UInt64) -> Int {
        var low = 0, high = stretches.count
        while low < high {
            let middle = (low + high) / 2
            if stretches[middle].range.lowerBound <= address { low = middle + 1 } else { high = middle }
        }
        return low
    }

    /// The unmapped hole holding the first point of `range` that no mapping covers, with the
    /// mappings on either side of the hole.
    func firstGap(in range: Range<UInt64>) -> Gap? {
        var next = firstStarting(above: range.lowerBound)
        var cursor = range.lowerBound
        if next > 0, stretches[next - 1].range.contains(cursor) {
            cursor = stretches[next - 1].range.upperBound
        }
        guard cursor < range.upperBound else { return nil }
        // Stretches are disjoint and not adjacent, so the one before the cursor ends below it or at it.
        next = firstStarting(above: cursor)
        let before = next > 0 ? stretches[next - 1] : nil
        let after = next < stretches.count ? stretches[next] : nil
        let hole = (before?.range.upperBound ?? 0)..<(after?.range.lowerBound ?? range.upperBound)
        return Gap(
            hole: hole, before: before.map { "spec.mappings[\($0.last)]" },
            after: after.map { "spec.mappings[\($0.first)]" })
    }
}
