import CYAML

/// Reads one YAML document into a `YAMLNode` tree with libyaml's event API.
///
/// The event API (not `yaml_parser_load`) lets us stop early: libyaml's document loader recurses on
/// nesting and expands nothing for us to count. Manifests are small and flat, so the limits below are
/// generous for real files and stop hostile ones (deep nesting, alias bombs, huge inputs) quickly.
public enum YAMLParser {
    public struct Limits: Sendable {
        /// Largest input accepted, in bytes (4 MiB; a manifest is a few KiB).
        public var maxBytes: Int = 4 << 20
        /// Deepest nesting of sequences and mappings (a manifest needs 5).
        public var maxDepth: Int = 64
        /// Most nodes in a document: room for 32,764 mappings (KVM's memslot limit, 9 nodes each) plus
        /// 100,000 `{gpa, size}` layout ranges (5 nodes each), with a margin.
        public var maxNodes: Int = 1_000_000
        public init() {}
    }

    /// The parsed document, or nil for an empty stream (no document at all).
    public static func parse(
        _ bytes: [UInt8], file: String, limits: Limits = Limits()
    ) throws(ManifestError) -> YAMLNode? {
        if bytes.count > limits.maxBytes {
            throw error(
                "file is too large: \(bytes.count) bytes",
                detail: "manifests are limited to \(limits.maxBytes) bytes (\(formatSize(UInt64(limits.maxBytes))))",
                at: SourcePosition(line: 1, column: 1), file: file)
        }
        if let bad = firstNonText(bytes) {
            throw error("file is not UTF-8 text", detail: bad.reason, at: bad.position, file: file)
        }
        var reader = EventReader(file: file, limits: limits)
        return try bytes.withUnsafeBufferPointer { buffer throws(ManifestError) in
            try reader.read(buffer)
        }
    }

    static func error(
        _ summary: String, detail: String = "", at position: SourcePosition, file: String
    ) -> ManifestError {
        ManifestError([
            Diagnostic(
                .error, summary: summary, detail: detail,
                range: SourceRange(file: file, start: position, end: position))
        ])
    }

    /// The first byte that makes the input not UTF-8 text (invalid sequence or NUL), with its position.
    static func firstNonText(_ bytes: [UInt8]) -> (position: SourcePosition, reason: String)? {
        var line = 1, column = 1, index = 0
        while index < bytes.count {
            let byte = bytes[index]
            let length: Int
            switch byte {
            case 0:
                return (
                    SourcePosition(line: line, column: column), "NUL byte at offset \(index); is this a binary file?"
                )
            case 0x01...0x7F: length = 1
            case 0xC2...0xDF: length = 2
            case 0xE0...0xEF: length = 3
            case 0xF0...0xF4: length = 4
            default:
                return (
                    SourcePosition(line: line, column: column),
                    "invalid UTF-8 byte 0x\(String(byte, radix: 16)) at offset \(index)"
                )
            }
            if index + length > bytes.count || !bytes[(index + 1)..<(index + length)].allSatisfy({ $0 & 0xC0 == 0x80 })
            {
                return (SourcePosition(line: line, column: column), "invalid UTF-8 sequence at offset \(index)")
            }
            if byte == 0x0A { line += 1; column = 1 } else { column += 1 }
            index += length
        }
        return nil
    }
}

/// Turns libyaml events into nodes with an explicit stack (no recursion, so depth costs no C stack).
private struct EventReader {
    let file: String
    let limits: YAMLParser.Limits

    /// An open sequence or mapping. Its children are appended in place (`stack[top].items.append`), so
    /// building a collection of n items costs O(n), not O(n^2) as copying the frame out and back would.
    private struct Frame {
        var isMapping: Bool
        var start: SourcePosition
        var items: [YAMLNode] = []
        var pairs: [YAMLPair] = []
        var pendingKey: YAMLNode?
    }

    private var stack: [Frame] = []
    private var nodeCount = 0
    private var document: YAMLNode?
    private var sawDocument = false

    init(file: String, limits: YAMLParser.Limits) {
        self.file = file
        self.limits = limits
    }

    mutating func read(_ input: UnsafeBufferPointer<UInt8>) throws(ManifestError) -> YAMLNode? {
        var parser = yaml_parser_t()
        guard yaml_parser_initialize(&parser) != 0 else {
            throw YAMLParser.error(
                "cannot initialise the YAML parser (out of memory)", at: position(line: 0, column: 0), file: file)
        }
        defer { yaml_parser_delete(&parser) }
        yaml_parser_set_input_string(&parser, input.baseAddress, input.count)

        while true {
            var event = yaml_event_t()
            guard yaml_parser_parse(&parser, &event) != 0 else { throw syntaxError(parser) }
            defer { yaml_event_delete(&event) }
            if event.type == YAML_STREAM_END_EVENT { break }
            try handle(event)
        }
        return document
    }

    private mutating func handle(_ event: yaml_event_t) throws(ManifestError) {
        let start = position(event.start_mark)
        let end = position(event.end_mark)
        switch event.type {
        case YAML_DOCUMENT_START_EVENT:
            if sawDocument {
                throw YAMLParser.error(
                    "a manifest file holds one YAML document; found a second one",
                    detail: "remove the `---` separator and what follows, or split the file", at: start, file: file)
            }
            sawDocument = true
        case YAML_ALIAS_EVENT:
            throw YAMLParser.error(
                "YAML aliases are not allowed in manifests",
                detail:
                    "write the value out instead of `*alias`; manifests have no need for aliases, and refusing them stops alias bombs",
                at: start, file: file)
        case YAML_SCALAR_EVENT:
            try count(at: start)
            let data = event.data.scalar
            let value = String(decoding: UnsafeBufferPointer(start: data.value, count: data.length), as: UTF8.self)
            let tag = data.tag.map { String(cString: $0) }
            let scalar = YAMLScalar(value, tag: tag, style: Self.style(data.style))
            attach(YAMLNode(.scalar(scalar), start: start, end: end))
        case YAML_SEQUENCE_START_EVENT:
            try push(Frame(isMapping: false, start: start), at: start)
        case YAML_MAPPING_START_EVENT:
            try push(Frame(isMapping: true, start: start), at: start)
        case YAML_SEQUENCE_END_EVENT, YAML_MAPPING_END_EVENT:
            guard let frame = stack.popLast() else { return }
            let content: YAMLNode.Content = frame.isMapping ? .mapping(frame.pairs) : .sequence(frame.items)
            attach(YAMLNode(content, start: frame.start, end: end))
        default:
            break  // stream start, document end: nothing to build
        }
    }

    /// Counts a node as soon as its first event arrives, so the limit stops a long collection after
    /// reading `maxNodes` nodes, not when the collection closes.
    private mutating func count(at start: SourcePosition) throws(ManifestError) {
        nodeCount += 1
        if nodeCount > limits.maxNodes {
            throw YAMLParser.error(
                "document has too many nodes (more than \(limits.maxNodes))",
                detail: "manifests are limited to \(limits.maxNodes) YAML nodes (scalars, lists and mappings)",
                at: start, file: file)
        }
    }

    private mutating func push(_ frame: Frame, at start: SourcePosition) throws(ManifestError) {
        if stack.count >= limits.maxDepth {
            throw YAMLParser.error(
                "nesting is too deep (more than \(limits.maxDepth) levels)",
                detail: "a manifest nests 5 levels at most", at: start, file: file)
        }
        try count(at: start)
        stack.append(frame)
    }

    private mutating func attach(_ node: YAMLNode) {
        guard !stack.isEmpty else {
            document = node
            return
        }
        let top = stack.count - 1
        if !stack[top].isMapping {
            stack[top].items.append(node)
        } else if let key = stack[top].pendingKey {
            stack[top].pairs.append(YAMLPair(key: key, value: node))
            stack[top].pendingKey = nil
        } else {
            stack[top].pendingKey = node
        }
    }

    private func syntaxError(_ parser: yaml_parser_t) -> ManifestError {
        let problem = parser.problem.map { String(cString: $0) } ?? "unknown problem"
        var detail = ""
        if let context = parser.context.map({ String(cString: $0) }) {
            let at = position(parser.context_mark)
            detail = "\(context) at line \(at.line), column \(at.column)"
        }
        return YAMLParser.error(
            "YAML syntax error: \(problem)", detail: detail, at: position(parser.problem_mark), file: file)
    }

    private func position(_ mark: yaml_mark_t) -> SourcePosition {
        position(line: mark.line, column: mark.column)
    }

    private func position(line: Int, column: Int) -> SourcePosition {
        SourcePosition(line: line + 1, column: column + 1)
    }

    private static func style(_ style: yaml_scalar_style_t) -> YAMLScalar.Style {
        switch style {
        case YAML_SINGLE_QUOTED_SCALAR_STYLE: return .singleQuoted
        case YAML_DOUBLE_QUOTED_SCALAR_STYLE: return .doubleQuoted
        case YAML_LITERAL_SCALAR_STYLE: return .literal
        case YAML_FOLDED_SCALAR_STYLE: return .folded
        default: return .plain
        }
    }
}
