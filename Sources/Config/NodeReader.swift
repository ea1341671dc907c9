/// Reads typed values out of YAML nodes, reporting schema errors (wrong type, unknown or duplicate key,
/// missing field, bad enum value) without stopping.
///
/// Field paths are taken as autoclosures: they are strings only for the few fields that have a problem,
/// not for each of a manifest's nodes. Source positions stay in the YAML tree (see `SourceMap`).
struct NodeReader {
    let file: String
    var diagnostics: [Diagnostic] = []
    /// Key indexes of the large mappings read, by mapping path, for `SourceMap` lookups.
    var keyIndex: [String: [String: Int]] = [:]
    /// Field paths whose value could not be read; semantic checks skip the items containing them,
    /// so one mistake is reported once, not again as a consequence.
    var tainted: Set<String> = []

    init(file: String) {
        self.file = file
    }

    func sourceMap(_ root: YAMLNode) -> SourceMap {
        SourceMap(file: file, root: root, keyIndex: keyIndex)
    }

    /// Diagnostics past this many are counted, not built: a 4 MiB file can hold 350,000 mistakes, and
    /// `capped` lists 1,000 of them anyway.
    static let maxBuilt = 1_000
    /// Errors found and not built (see `maxBuilt`).
    var unbuilt = 0

    mutating func error(
        _ summary: @autoclosure () -> String, detail: @autoclosure () -> String = "", path: String, node: YAMLNode,
        taint: Bool = true
    ) {
        if taint { tainted.insert(path) }
        guard diagnostics.count < Self.maxBuilt else {
            unbuilt += 1
            return
        }
        diagnostics.append(
            Diagnostic(.error, summary: summary(), detail: detail(), path: path, range: node.range(in: file)))
    }

    /// The fields of a mapping node by key. Reports unknown keys (with the nearest known one),
    /// duplicate keys and missing required keys.
    mutating func fields(
        _ node: YAMLNode, path makePath: @autoclosure () -> String, known: [String], required: [String],
        what: String
    ) -> [String: YAMLNode]? {
        guard case .mapping(let pairs) = node.content else {
            error(
                "\(what) must be a mapping, found \(node.kindDescription)",
                detail: "expected keys: \(known.joined(separator: ", "))", path: makePath(), node: node)
            return nil
        }
        var result: [String: YAMLNode] = [:]
        var suggested: Set<String> = []
        var lowered: [[UInt8]]??
        var firstPair: [String: Int] = [:]
        for (index, pair) in pairs.enumerated() {
            guard let key = pair.key.scalar?.value else {
                error(
                    "keys must be plain strings, found \(pair.key.kindDescription)", path: makePath(), node: pair.key,
                    taint: false)
                continue
            }
            guard known.contains(key) else {
                let path = makePath()
                let fieldPath = path.isEmpty ? key : "\(path).\(key)"
                // The hint is needed even when the diagnostic is not built: it decides what is tainted.
                if lowered == nil { lowered = known.mapAsciiLowercased() }
                let hint = Suggestion.nearest(to: key, in: known, lowered: lowered ?? nil)
                if let hint { suggested.insert(hint) }
                error(
                    "unknown key `\(key)`" + (hint.map { "; did you mean `\($0)`?" } ?? ""),
                    detail: "\(what) accepts: \(known.joined(separator: ", "))", path: fieldPath, node: pair.key,
                    taint: false)
                // The misspelt field is as good as unreadable: checks that need it stand down.
                if let hint { tainted.insert(path.isEmpty ? hint : "\(path).\(hint)") }
                continue
            }
            if result[key] != nil {
                let path = makePath()
                error(
                    "duplicate key `\(key)`", detail: "each key may appear once; remove one of them",
                    path: path.isEmpty ? key : "\(path).\(key)", node: pair.key)
                continue
            }
            result[key] = pair.value
            if pairs.count > SourceMap.indexedMappingSize { firstPair[key] = index }
        }
        if pairs.count > SourceMap.indexedMappingSize {
            // Only the schema's keys are looked up; an absent one is -1, so that no lookup scans the mapping.
            for key in known where firstPair[key] == nil { firstPair[key] = -1 }
            keyIndex[makePath()] = firstPair
        }
        for key in required where result[key] == nil {
            let path = makePath()
            let fieldPath = path.isEmpty ? key : "\(path).\(key)"
            // A misspelt key already said "did you mean"; do not report the same mistake twice.
            if suggested.contains(key) {
                tainted.insert(fieldPath)
                continue
            }
            tainted.insert(fieldPath)
            guard diagnostics.count < Self.maxBuilt else {
                unbuilt += 1
                continue
            }
            let at = node.start
            diagnostics.append(
                Diagnostic(
                    .error, summary: "missing required field `\(key)`",
                    detail: "\(what) requires: \(required.joined(separator: ", "))", path: fieldPath,
                    range: SourceRange(file: file, start: at, end: at)))
        }
        return result
    }

    mutating func sequence(_ node: YAMLNode, path: @autoclosure () -> String, what: String) -> [YAMLNode]? {
        if case .scalar(let scalar) = node.content, scalar.isNull { return [] }
        guard case .sequence(let items) = node.content else {
            error(
                "\(what) must be a list, found \(node.kindDescription)", detail: "write `- item` lines or `[]`",
                path: path(), node: node)
            return nil
        }
        return items
    }

    mutating func string(_ node: YAMLNode, path: @autoclosure () -> String, what: String) -> String? {
        guard let scalar = node.scalar, !scalar.isNull else {
            error("\(what) must be a string, found \(node.kindDescription)", path: path(), node: node)
            return nil
        }
        guard !scalar.value.isEmpty else {
            error("\(what) must not be empty", path: path(), node: node)
            return nil
        }
        return scalar.value
    }

    mutating func bool(_ node: YAMLNode, path: @autoclosure () -> String, what: String) -> Bool? {
        guard let value = node.scalar?.boolValue else {
            error("\(what) must be true or false, found \(node.kindDescription)", path: path(), node: node)
            return nil
        }
        return value
    }

    mutating func size(_ node: YAMLNode, path: @autoclosure () -> String, what: String) -> UInt64? {
        guard let scalar = node.scalar, !scalar.isNull, scalar.boolValue == nil else {
            error(
                "\(what) must be a size, found \(node.kindDescription)",
                detail: "write a byte count (4096), hex (0x1000) or a binary unit (2MiB, 1 GiB)", path: path(),
                node: node)
            return nil
        }
        do {
            return try parseSize(scalar.value)
        } catch {
            self.error("invalid \(what): \(error.summary)", detail: error.detail, path: path(), node: node)
            return nil
        }
    }

    mutating func choice<E: RawRepresentable & CaseIterable>(
        _ node: YAMLNode, path: @autoclosure () -> String, what: String, as type: E.Type
    ) -> E? where E.RawValue == String {
        guard let scalar = node.scalar, !scalar.isNull else {
            let valid = E.allCases.map(\.rawValue)
            error(
                "\(what) must be one of \(valid.joined(separator: ", ")), found \(node.kindDescription)", path: path(),
                node: node)
            return nil
        }
        if let value = E(rawValue: scalar.value) { return value }
        // The suggestion is worked out only for a diagnostic that is built (the detail is an autoclosure).
        func detail() -> String {
            let valid = E.allCases.map(\.rawValue)
            let hint = Suggestion.nearest(to: scalar.value, in: valid).map { "did you mean `\($0)`? " } ?? ""
            return "\(hint)valid values: \(valid.joined(separator: ", "))"
        }
        error("unsupported \(what) `\(scalar.value)`", detail: detail(), path: path(), node: node)
        return nil
    }
}
