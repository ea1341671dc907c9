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
    /// Problems this diagnostic stands for besides itself: only the last one of a capped list ("N more
    /// problems not shown") has any, so that counts stay true (`[Diagnostic].errorCount`).
    public var unlisted: DiagnosticTally = DiagnosticTally()

    public init(
        _ severity: Severity = .error, summary: String, detail: String = "", path: String = "",
        range: SourceRange? = nil
    ) {
        self.severity = severity
        self.summary = summary
        self.detail = detail
        self.path = path
        self.range = range
    }

    private enum CodingKeys: String, CodingKey { case severity, summary, detail, path, range, unlisted }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            try container.decode(Severity.self, forKey: .severity),
            summary: try container.decode(String.self, forKey: .summary),
            detail: try container.decode(String.self, forKey: .detail),
            path: try container.decode(String.self, forKey: .path),
            range: try container.decodeIfPresent(SourceRange.self, forKey: .range))
        unlisted = try container.decodeIfPresent(DiagnosticTally.self, forKey: .unlisted) ?? DiagnosticTally()
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(severity, forKey: .severity)
        try container.encode(summary, forKey: .summary)
        try container.encode(detail, forKey: .detail)
        try container.encode(path, forKey: .path)
        try container.encodeIfPresent(range, forKey: .range)
        if unlisted != DiagnosticTally() { try container.encode(unlisted, forKey: .unlisted) }
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

/// A count of problems by severity.
public struct DiagnosticTally: Sendable, Hashable, Codable {
    public var errors = 0
    public var warnings = 0
    public init(errors: Int = 0, warnings: Int = 0) {
        self.errors = errors
        self.warnings = warnings
    }
}

extension Sequence<Diagnostic> {
    /// Errors found, including those a capped list does not show.
    public var errorCount: Int { reduce(0) { $0 + ($1.severity == .error ? 1 : 0) + $1.unlisted.errors } }
    /// Warnings found, including those a capped list does not show.
    public var warningCount: Int { reduce(0) { $0 + ($1.severity == .warning ? 1 : 0) + $1.unlisted.warnings } }
}

/// At most `limit` diagnostics (in the order given), then one that says how many more there are and stands
/// for them in the counts: a hostile file can have a problem every few bytes, and nobody reads past the
/// first thousand. `unbuiltErrors` and `unbuiltWarnings` were found but never built (the loader and the
/// validator stop building them).
public func capped(
    _ diagnostics: [Diagnostic], limit: Int = 1_000, unbuiltErrors: Int = 0, unbuiltWarnings: Int = 0
) -> [Diagnostic] {
    guard diagnostics.count > limit + 1 || unbuiltErrors > 0 || unbuiltWarnings > 0 else { return diagnostics }
    let rest = diagnostics[min(limit, diagnostics.count)...]
    let builtWarnings = rest.count { $0.severity == .warning }
    let warnings = builtWarnings + unbuiltWarnings, errors = rest.count - builtWarnings + unbuiltErrors
    func plural(_ count: Int, _ word: String) -> String { "\(count) \(word)\(count == 1 ? "" : "s")" }
    let listed = diagnostics.count - rest.count
    var more = Diagnostic(
        errors > 0 ? .error : .warning,
        summary: "\(errors + warnings) more problems not shown "
            + "(\(plural(errors, "error")), \(plural(warnings, "warning")))",
        detail: "\(listed) of \(listed + errors + warnings) are listed; fix those and check again",
        range: rest.first?.range)
    more.unlisted = DiagnosticTally(errors: errors > 0 ? errors - 1 : 0, warnings: errors > 0 ? warnings : warnings - 1)
    return Array(diagnostics.prefix(limit)) + [more]
}

/// Thrown when a manifest cannot be used; carries every diagnostic found, not only the first.
public struct ManifestError: Error, Sendable, CustomStringConvertible {
    public var diagnostics: [Diagnostic]
    public init(_ diagnostics: [Diagnostic]) { self.diagnostics = diagnostics }
    public var description: String { diagnostics.map(\.description).joined(separator: "\n") }
}
