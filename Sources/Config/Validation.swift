/// Semantic checks of a manifest: the rules that hold for every host (alignment, ranges inside their
/// blocks and inside mapped memory, no overlaps, unique names, private memory only on VM types that
/// have it). What a particular kernel supports is the Engine's business, not this file's.
///
/// Every problem is reported, in source order.
public func validate(_ manifest: Manifest, pageSize: UInt64 = 4096) -> [Diagnostic] {
    let found = ManifestValidator(manifest: manifest, pageSize: pageSize, skipping: []).run()
    return capped(found.diagnostics, unbuiltErrors: found.unbuiltErrors, unbuiltWarnings: found.unbuiltWarnings)
}

extension Manifest {
    /// Semantic diagnostics of this manifest (see `validate(_:pageSize:)`).
    public func validate(pageSize: UInt64 = 4096) -> [Diagnostic] {
        Config.validate(self, pageSize: pageSize)
    }
}

struct ManifestValidator {
    let manifest: Manifest
    let pageSize: UInt64
    /// Field paths the loader could not read: items containing them are not checked again. Kept as
    /// substrings, so that looking up a path's ancestors allocates nothing.
    let skipping: Set<Substring>
    /// Every proper ancestor of a path in `skipping` (`spec.mappings[3]`, `spec.mappings`, `spec`), so that
    /// "is something inside this path tainted" is one lookup, not a scan of every tainted path.
    let skippingAncestors: Set<Substring>
    var diagnostics: [Diagnostic] = []
    /// Problems found past `buildLimit`: counted, never built (a position lookup and messages each), so a
    /// hostile file with a problem every few bytes costs little more than a clean one.
    var unbuiltErrors = 0
    var unbuiltWarnings = 0
    static let buildLimit = 1_000

    init(manifest: Manifest, pageSize: UInt64, skipping: Set<String>) {
        self.manifest = manifest
        self.pageSize = pageSize
        self.skipping = Set(skipping.lazy.map { Substring($0) })
        var ancestors: Set<Substring> = []
        for path in skipping {
            var current = Substring(path)
            while let cut = Self.parentCut(current) {
                current = current[..<cut]
                // Siblings share ancestors: stop at the first one already recorded.
                guard ancestors.insert(current).inserted else { break }
            }
        }
        self.skippingAncestors = ancestors
    }

    /// Where the last path component starts (`.` or `[`), if the path has a parent. Searched as bytes: both
    /// are ASCII, and walking Characters backwards (grapheme breaking) cost an eighth of validating a file of
    /// 69,000 broken blocks.
    static func parentCut(_ path: Substring) -> Substring.Index? {
        path.utf8.lastIndex { $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "[") }
    }

    var spec: Spec { manifest.spec }

    /// Every problem, the first `buildLimit` found as diagnostics in source order, the rest counted.
    consuming func run() -> (diagnostics: [Diagnostic], unbuiltErrors: Int, unbuiltWarnings: Int) {
        checkNames()
        checkBlocks()
        checkMappings()
        checkLayout()
        checkListeners()
        return (sortedBySource(diagnostics), unbuiltErrors, unbuiltWarnings)
    }

    /// Guest, block and listener names follow `NameRule`.
    mutating func checkNames() {
        func check(_ name: String, at path: String, what: String) {
            guard !name.isEmpty, !isTainted(path), let problem = NameRule.problem(name) else { return }
            error(
                path, "invalid \(what) `\(NameRule.printable(name))`: \(problem)", "names are \(NameRule.description)")
        }
        check(manifest.metadata.name, at: "metadata.name", what: "guest name")
        for (index, block) in spec.blocks.enumerated() {
            check(block.name, at: "spec.blocks[\(index)].name", what: "block name")
        }
        for (index, listener) in spec.listeners.enumerated() {
            check(listener.name, at: "spec.listeners[\(index)].name", what: "listener name")
        }
    }

    // MARK: reporting

    mutating func error(_ path: String, _ summary: String, _ detail: String = "") {
        report(.error, path, summary, detail)
    }

    mutating func warning(_ path: String, _ summary: String, _ detail: String = "") {
        report(.warning, path, summary, detail)
    }

    /// Builds the diagnostic (its source position looked up) while fewer than `buildLimit` are built; counts
    /// it otherwise.
    mutating func report(_ severity: Severity, _ path: String, _ summary: String, _ detail: String) {
        guard diagnostics.count < Self.buildLimit else {
            if severity == .error { unbuiltErrors += 1 } else { unbuiltWarnings += 1 }
            return
        }
        diagnostics.append(manifest.diagnostic(severity, at: path, summary: summary, detail: detail))
    }

    /// Whether `path` or anything inside or above it failed to load.
    func isTainted(_ path: @autoclosure () -> String) -> Bool {
        guard !skipping.isEmpty else { return false }
        var current = Substring(path())
        if skipping.contains(current) || skippingAncestors.contains(current) { return true }
        while let cut = Self.parentCut(current) {
            current = current[..<cut]
            if skipping.contains(current) { return true }
        }
        return false
    }

    /// "line 7" of a path, for pointing from one diagnostic to the other party of a conflict.
    func whereIs(_ path: String) -> String {
        guard let range = manifest.sourceMap.range(for: path) else { return path }
        return "\(path), line \(range.start.line)"
    }

    /// Reports `value` at `path` unless it is a multiple of `unit`, naming the nearest valid values.
    mutating func checkAligned(
        _ value: UInt64, to unit: UInt64, at path: @autoclosure () -> String, what: String,
        unitName: String, severity: Severity = .error
    ) {
        guard unit > 0, value % unit != 0 else { return }
        let below = value - value % unit
        let (above, overflow) = below.addingReportingOverflow(unit)
        report(
            severity, path(), "\(what) \(formatHex(value)) is not aligned to \(unitName)",
            "use a multiple of \(formatSize(unit)) (\(formatHex(unit))), e.g. "
                + (overflow ? formatHex(below) : "\(formatHex(below)) or \(formatHex(above))"))
    }

    var pageSizeName: String { "the \(formatSize(pageSize)) page size" }
}
