/// Semantic checks of a manifest: the rules that hold for every host (alignment, ranges inside their
/// blocks and inside mapped memory, no overlaps, unique names, private memory only on VM types that
/// have it). What a particular kernel supports is the Engine's business, not this file's.
///
/// Every problem is reported, in source order.
public func validate(_ manifest: Manifest, pageSize: UInt64 = 4096) -> [Diagnostic] {
    ManifestValidator(manifest: manifest, pageSize: pageSize, skipping: []).run()
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
    /// Field paths the loader could not read: items containing them are not checked again.
    let skipping: Set<String>
    /// Every proper ancestor of a path in `skipping` (`spec.mappings[3]`, `spec.mappings`, `spec`), so that
    /// "is something inside this path tainted" is one lookup, not a scan of every tainted path.
    let skippingAncestors: Set<String>
    var diagnostics: [Diagnostic] = []

    init(manifest: Manifest, pageSize: UInt64, skipping: Set<String>) {
        self.manifest = manifest
        self.pageSize = pageSize
        self.skipping = skipping
        var ancestors: Set<String> = []
        for path in skipping {
            var current = Substring(path)
            while let cut = Self.parentCut(current) {
                current = current[..<cut]
                // Siblings share ancestors: stop at the first one already recorded.
                guard ancestors.insert(String(current)).inserted else { break }
            }
        }
        self.skippingAncestors = ancestors
    }

    /// Where the last path component starts (`.` or `[`), if the path has a parent.
    static func parentCut(_ path: Substring) -> Substring.Index? {
        path.lastIndex { $0 == "." || $0 == "[" }
    }

    var spec: Spec { manifest.spec }

    consuming func run() -> [Diagnostic] {
        checkNames()
        checkBlocks()
        checkMappings()
        checkLayout()
        checkListeners()
        return sortedBySource(diagnostics)
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
        diagnostics.append(manifest.diagnostic(.error, at: path, summary: summary, detail: detail))
    }

    mutating func warning(_ path: String, _ summary: String, _ detail: String = "") {
        diagnostics.append(manifest.diagnostic(.warning, at: path, summary: summary, detail: detail))
    }

    /// Whether `path` or anything inside or above it failed to load.
    func isTainted(_ path: @autoclosure () -> String) -> Bool {
        guard !skipping.isEmpty else { return false }
        let path = path()
        if skipping.contains(path) || skippingAncestors.contains(path) { return true }
        var current = Substring(path)
        while let cut = Self.parentCut(current) {
            current = current[..<cut]
            if skipping.contains(String(current)) { return true }
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
        let path = path()
        let below = value - value % unit
        let (above, overflow) = below.addingReportingOverflow(unit)
        let options = overflow ? formatHex(below) : "\(formatHex(below)) or \(formatHex(above))"
        let summary = "\(what) \(formatHex(value)) is not aligned to \(unitName)"
        let detail = "use a multiple of \(formatSize(unit)) (\(formatHex(unit))), e.g. \(options)"
        diagnostics.append(manifest.diagnostic(severity, at: path, summary: summary, detail: detail))
    }

    var pageSizeName: String { "the \(formatSize(pageSize)) page size" }
}
