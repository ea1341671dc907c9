/// A YAML node as read from a manifest, with where it starts and ends (1-based line and column;
/// `end` is exclusive). Keys of a mapping keep their order so that diagnostics follow the source.
public struct YAMLNode: Sendable, Hashable {
    public enum Content: Sendable, Hashable {
        case scalar(YAMLScalar)
        case sequence([YAMLNode])
        case mapping([YAMLPair])
    }

    public var content: Content
    public var start: SourcePosition
    public var end: SourcePosition

    public init(_ content: Content, start: SourcePosition, end: SourcePosition) {
        self.content = content
        self.start = start
        self.end = end
    }

    public func range(in file: String) -> SourceRange {
        SourceRange(file: file, start: start, end: end)
    }

    public var scalar: YAMLScalar? {
        if case .scalar(let value) = content { return value }
        return nil
    }

    /// How the node reads in a message: "a string", "a mapping", ...
    public var kindDescription: String {
        switch content {
        case .scalar(let scalar): return scalar.kindDescription
        case .sequence: return "a sequence"
        case .mapping: return "a mapping"
        }
    }
}

public struct YAMLPair: Sendable, Hashable {
    public var key: YAMLNode
    public var value: YAMLNode
    public init(key: YAMLNode, value: YAMLNode) {
        self.key = key
        self.value = value
    }
}

public struct YAMLScalar: Sendable, Hashable {
    public enum Style: Sendable, Hashable {
        case plain, singleQuoted, doubleQuoted, literal, folded
    }

    public var value: String
    /// An explicit tag (`!!str`), if the source had one.
    public var tag: String?
    public var style: Style

    public init(_ value: String, tag: String? = nil, style: Style = .plain) {
        self.value = value
        self.tag = tag
        self.style = style
    }

    /// Plain scalars are the only ones YAML resolves to null, booleans or numbers.
    public var isPlainUntagged: Bool { style == .plain && tag == nil }

    public var isNull: Bool {
        guard isPlainUntagged else { return false }
        switch value {
        case "", "~", "null", "Null", "NULL": return true
        default: return false
        }
    }

    public var boolValue: Bool? {
        guard isPlainUntagged else { return nil }
        switch value {
        case "true", "True", "TRUE": return true
        case "false", "False", "FALSE": return false
        default: return nil
        }
    }

    var kindDescription: String {
        if isNull { return "null" }
        if boolValue != nil { return "a boolean" }
        return "the string \"\(value.count > 40 ? String(value.prefix(40)) + "…" : value)\""
    }
}
