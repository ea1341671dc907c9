/// Reads typed values out of YAML nodes, recording each field's source range and reporting schema
/// errors (wrong type, unknown or duplicate key, missing field, bad enum value) without stopping.
struct NodeReader {
    let file: String
    var diagnostics: [Diagnostic] = []
    var sourceMap: SourceMap
    /// Field paths whose value could not be read; semantic checks skip the items containing them,
    /// so one mistake is reported once, not again as a consequence.
    var tainted: Set<String> = []

    init(file: String) {
        self.file = file
        self.sourceMap = SourceMap(file: file)
    }

    mutating func error(_ summary: String, detail: String = "", path: String, node: YAMLNode, taint: Bool = true) {
        diagnostics.append(Diagnostic(.error, summary: summary, detail: detail, path: path, range: node.range(in: file)))
        if taint { tainted.insert(path) }
    }

    mutating func record(_ path: String, _ node: YAMLNode) {
        sourceMap.ranges[path] = node.range(in: file)
    }

    /// The fields of a mapping node by key. Reports unknown keys (with the nearest known one),
    /// duplicate keys and missing required keys.
    mutating func fields(_ node: YAMLNode, path: String, known: [String], required: [String], what: String) -> [String: YAMLNode]? {
        record(path, node)
        guard case .mapping(let pairs) = node.content else {
            error("\(what) must be a mapping, found \(node.kindDescription)",
                  detail: "expected keys: \(known.joined(separator: ", "))", path: path, node: node)
            return nil
        }
        var result: [String: YAMLNode] = [:]
        var suggested: Set<String> = []
        for pair in pairs {
            guard let key = pair.key.scalar?.value else {
                error("keys must be plain strings, found \(pair.key.kindDescription)", path: path, node: pair.key, taint: false)
                continue
            }
            let fieldPath = path.isEmpty ? key : "\(path).\(key)"
            guard known.contains(key) else {
                let hint = Suggestion.nearest(to: key, in: known)
                if let hint { suggested.insert(hint) }
                error("unknown key `\(key)`" + (hint.map { "; did you mean `\($0)`?" } ?? ""),
                      detail: "\(what) accepts: \(known.joined(separator: ", "))", path: fieldPath, node: pair.key, taint: false)
                // The misspelt field is as good as unreadable: checks that need it stand down.
                if let hint { tainted.insert(path.isEmpty ? hint : "\(path).\(hint)") }
                continue
            }
            if result[key] != nil {
                error("duplicate key `\(key)`", detail: "each key may appear once; remove one of them", path: fieldPath, node: pair.key)
                continue
            }
            result[key] = pair.value
            record(fieldPath, pair.value)
        }
        for key in required where result[key] == nil {
            let fieldPath = path.isEmpty ? key : "\(path).\(key)"
            // A misspelt key already said "did you mean"; do not report the same mistake twice.
            if suggested.contains(key) {
                tainted.insert(fieldPath)
                continue
            }
            let at = node.start
            diagnostics.append(Diagnostic(.error, summary: "missing required field `\(key)`",
                                          detail: "\(what) requires: \(required.joined(separator: ", "))", path: fieldPath,
                                          range: SourceRange(file: file, start: at, end: at)))
            tainted.insert(fieldPath)
        }
        return result
    }

    mutating func sequence(_ node: YAMLNode, path: String, what: String) -> [YAMLNode]? {
        if case .scalar(let scalar) = node.content, scalar.isNull { return [] }
        guard case .sequence(let items) = node.content else {
            error("\(what) must be a list, found \(node.kindDescription)", detail: "write `- item` lines or `[]`", path: path, node: node)
            return nil
        }
        return items
    }

    mutating func string(_ node: YAMLNode, path: String, what: String) -> String? {
        guard let scalar = node.scalar, !scalar.isNull else {
            error("\(what) must be a string, found \(node.kindDescription)", path: path, node: node)
            return nil
        }
        guard !scalar.value.isEmpty else {
            error("\(what) must not be empty", path: path, node: node)
            return nil
        }
        return scalar.value
    }

    mutating func bool(_ node: YAMLNode, path: String, what: String) -> Bool? {
        guard let value = node.scalar?.boolValue else {
            error("\(what) must be true or false, found \(node.kindDescription)", path: path, node: node)
            return nil
        }
        return value
    }

    mutating func size(_ node: YAMLNode, path: String, what: String) -> UInt64? {
        guard let scalar = node.scalar, !scalar.isNull, scalar.boolValue == nil else {
            error("\(what) must be a size, found \(node.kindDescription)",
                  detail: "write a byte count (4096), hex (0x1000) or a binary unit (2MiB, 1 GiB)", path: path, node: node)
            return nil
        }
        do {
            return try parseSize(scalar.value)
        } catch {
            self.error("invalid \(what): \(error.summary)", detail: error.detail, path: path, node: node)
            return nil
        }
    }

    mutating func choice<E: RawRepresentable & CaseIterable>(_ node: YAMLNode, path: String, what: String, as type: E.Type) -> E? where E.RawValue == String {
        let valid = E.allCases.map(\.rawValue)
        guard let scalar = node.scalar, !scalar.isNull else {
            error("\(what) must be one of \(valid.joined(separator: ", ")), found \(node.kindDescription)", path: path, node: node)
            return nil
        }
        if let value = E(rawValue: scalar.value) { return value }
        let hint = Suggestion.nearest(to: scalar.value, in: valid).map { "did you mean `\($0)`? " } ?? ""
        error("unsupported \(what) `\(scalar.value)`", detail: "\(hint)valid values: \(valid.joined(separator: ", "))", path: path, node: node)
        return nil
    }
}
