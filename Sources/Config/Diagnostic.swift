/// A position in a manifest file (1-based line and column, as editors and compilers count).
public struct SourcePosition: Sendable, Hashable, Codable, Comparable {
    public var line: Int
    public var column: Int
    public init(line: Int, column: Int) {
        self.line = line
        self.column = column
    }
    public static func < (a: SourcePosition, b: SourcePosition) -> Bool {
        (a.line, a.column) < (b.line, b.column)
    }
}

/// A span of source text in one file; `end` is exclusive.
public struct SourceRange: Sendable, Hashable, Codable {
    public var file: String
    public var start: SourcePosition
    public var end: SourcePosition
    public init(file: String, start: SourcePosition, end: SourcePosition) {
        self.file = file
        self.start = start
        self.end = end
    }
}

public enum Severity: String, Sendable, Hashable, Codable {
    case error
    case warning
}

/// One problem found in a manifest: what is wrong (`summary`), what would be valid (`detail`),
/// where (`range`), and which field (`path`, e.g. `spec.mappings[1].gpa`).
public struct Diagnostic: Sendable, Hashable, Codable, CustomStringConvertible {
    public var severity: Severity
    public var summary: String
    public var detail: String
    public var path: String
    public var range: SourceRange?

    public init(_ severity: Severity = .error, summary: String, detail: String = "", path: String = "", range: SourceRange? = nil) {
        self.severity = severity
        self.summary = summary
        self.detail = detail
        self.path = path
        self.range = range
    }

    /// `file:line:col: error: summary [path]`, the compiler style editors understand.
    public var description: String {
        var text = ""
        if let range {
            text += "\(range.file):\(range.start.line):\(range.start.column): "
        }
        text += "\(severity.rawValue): \(summary)"
        if !path.isEmpty { text += " [\(path)]" }
        return text
    }
}

/// Thrown when a manifest cannot be used; carries every diagnostic found, not only the first.
public struct ManifestError: Error, Sendable, CustomStringConvertible {
    public var diagnostics: [Diagnostic]
    public init(_ diagnostics: [Diagnostic]) { self.diagnostics = diagnostics }
    public var description: String { diagnostics.map(\.description).joined(separator: "\n") }
}
