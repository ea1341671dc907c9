import ArgumentParser
import Config
import Foundation

/// The diagnostics found in one file (by the loader, and by whatever check a command adds after it).
struct FileDiagnostics: Sendable {
    var file: String
    var diagnostics: [Diagnostic]
}

enum OutputFormat: String, ExpressibleByArgument, CaseIterable, Sendable {
    case human, json
}

/// Renders diagnostics for people (compiler style, with the source line and a caret) or for machines
/// (the shape of `terraform validate -json`). Shared by every command that reports diagnostics.
enum DiagnosticOutput {
    static func errorCount(_ reports: [FileDiagnostics]) -> Int {
        reports.reduce(0) { $0 + $1.diagnostics.errorCount }
    }

    static func warningCount(_ reports: [FileDiagnostics]) -> Int {
        reports.reduce(0) { $0 + $1.diagnostics.warningCount }
    }

    /// Prints the reports to stdout and throws exit code 1 when any has an error.
    static func emit(_ reports: [FileDiagnostics], format: OutputFormat) throws {
        switch format {
        case .human: print(human(reports, color: Terminal.colorEnabled(for: STDOUT_FILENO)), terminator: "")
        case .json: print(json(reports))
        }
        if errorCount(reports) > 0 { throw ExitCode.failure }
    }

    // MARK: human

    /// At most this many diagnostics are rendered for people (JSON has them all): past a few hundred, a
    /// list helps nobody and costs time on hostile input.
    static let maxRendered = 200
    /// Longest source excerpt shown, in characters; longer lines are cut around the range.
    static let maxExcerpt = 160

    static func human(_ reports: [FileDiagnostics], color: Bool) -> String {
        let style = Style(enabled: color)
        var sources = SourceCache()
        var out = ""
        var rendered = 0, total = 0
        for report in reports {
            // The truth, counting what a capped list stands for (see `capped`).
            total += report.diagnostics.errorCount + report.diagnostics.warningCount
            for diagnostic in report.diagnostics where rendered < maxRendered {
                out += render(diagnostic, file: report.file, sources: &sources, style: style)
                rendered += 1
            }
        }
        if total > rendered {
            out += "... and \(total - rendered) more (`--output json` lists the first 1000 of each file)\n"
        }
        out += summary(reports) + "\n"
        return out
    }

    /// "2 errors, 1 warning in 1 file".
    static func summary(_ reports: [FileDiagnostics]) -> String {
        func plural(_ count: Int, _ word: String) -> String { "\(count) \(word)\(count == 1 ? "" : "s")" }
        return
            "\(plural(errorCount(reports), "error")), \(plural(warningCount(reports), "warning")) in \(plural(reports.count, "file"))"
    }

    private static func render(
        _ diagnostic: Diagnostic, file: String, sources: inout SourceCache, style: Style
    ) -> String {
        let label = diagnostic.severity == .error ? style.red("error") : style.yellow("warning")
        var location = file
        if let range = diagnostic.range {
            location = "\(range.file):\(range.start.line):\(range.start.column)"
        }
        // Control characters from the input are shown escaped, never sent to the terminal.
        var out = style.bold("\(location): ") + label + style.bold(": \(NameRule.printable(diagnostic.summary))")
        if !diagnostic.path.isEmpty { out += " " + style.dim("[\(NameRule.printable(diagnostic.path))]") }
        out += "\n"
        if let range = diagnostic.range, let full = sources.line(range.start.line, of: range.file) {
            let (line, range) = excerpt(full, range: range)
            let number = String(range.start.line)
            let gutter = String(repeating: " ", count: number.count)
            out += " \(style.dim(number + " |")) \(line)\n"
            out += " \(style.dim(gutter + " |")) \(style.green(caret(under: line, range: range)))\n"
        }
        if !diagnostic.detail.isEmpty {
            out += "   = \(NameRule.printable(diagnostic.detail))\n"
        }
        return out
    }

    /// The line cut to `maxExcerpt` characters around the start of `range` ("…" marks a cut), and the range
    /// moved to match, so a megabyte-long line renders as fast as a short one.
    static func excerpt(_ line: String, range: SourceRange) -> (String, SourceRange) {
        let characters = Array(line)
        guard characters.count > maxExcerpt else { return (line, range) }
        let start = max(0, min(range.start.column - 1 - maxExcerpt / 4, characters.count - maxExcerpt))
        let end = min(characters.count, start + maxExcerpt)
        var text = String(characters[start..<end])
        var moved = range
        moved.start.column -= start
        moved.end.column =
            range.end.line == range.start.line ? min(range.end.column - start, end - start + 1) : end - start + 1
        moved.end.line = moved.start.line
        if start > 0 { text = "…" + text; moved.start.column += 1; moved.end.column += 1 }
        if end < characters.count { text += "…" }
        return (text, moved)
    }

    /// `^~~~` under the range on its first line (to the end of the line when the range goes on).
    static func caret(under line: String, range: SourceRange) -> String {
        let characters = Array(line)
        let startIndex = max(0, min(range.start.column - 1, characters.count))
        let endColumn = range.end.line == range.start.line ? range.end.column - 1 : characters.count
        let width = max(1, min(endColumn, characters.count) - startIndex)
        // Keep tabs so the caret lines up with the text above it.
        let lead = characters[..<startIndex].map { $0 == "\t" ? "\t" : " " }.joined()
        return lead + "^" + String(repeating: "~", count: width - 1)
    }

    // MARK: json

    static func json(_ reports: [FileDiagnostics]) -> String {
        let diagnostics = reports.flatMap { report in report.diagnostics.map { JSONDiagnostic($0, file: report.file) } }
        let document = JSONReport(
            valid: errorCount(reports) == 0, errorCount: errorCount(reports),
            warningCount: warningCount(reports), diagnostics: diagnostics)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        guard let data = try? encoder.encode(document) else { return #"{"formatVersion":"1.0","valid":false}"# }
        return String(decoding: data, as: UTF8.self)
    }

    private struct JSONReport: Encodable {
        var formatVersion = "1.0"
        var valid: Bool
        var errorCount: Int
        var warningCount: Int
        var diagnostics: [JSONDiagnostic]
    }
}

/// One diagnostic as JSON (validate, and the `diagnostics` of an error document).
struct JSONDiagnostic: Encodable {
    struct Position: Encodable { var line: Int; var column: Int }
    struct Range: Encodable { var filename: String; var start: Position?; var end: Position? }
    var severity: String
    var summary: String
    var detail: String
    var path: String
    var range: Range

    init(_ diagnostic: Diagnostic, file: String) {
        severity = diagnostic.severity.rawValue
        summary = diagnostic.summary
        detail = diagnostic.detail
        path = diagnostic.path
        if let source = diagnostic.range {
            range = Range(
                filename: source.file,
                start: Position(line: source.start.line, column: source.start.column),
                end: Position(line: source.end.line, column: source.end.column))
        } else {
            range = Range(filename: file, start: nil, end: nil)
        }
    }
}

/// Lines of the files diagnostics point into, read once each (and not at all when too large).
private struct SourceCache {
    private var files: [String: [Substring]] = [:]

    mutating func line(_ number: Int, of file: String) -> String? {
        if files[file] == nil { files[file] = Self.read(file) }
        guard let lines = files[file], number >= 1, number <= lines.count else { return nil }
        return String(lines[number - 1])
    }

    private static func read(_ file: String) -> [Substring] {
        guard let attributes = try? FileManager.default.attributesOfItem(atPath: file),
            let size = attributes[.size] as? NSNumber, size.intValue <= 4 << 20,
            let data = FileManager.default.contents(atPath: file),
            let text = String(data: data, encoding: .utf8)
        else { return [] }
        // Split on the byte: in Swift "\r\n" is one Character, so splitting the String on "\n" would not
        // split a CRLF file at all.
        return text.utf8.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).map { line in
            Substring(line.last == UInt8(ascii: "\r") ? line.dropLast() : line)
        }
    }
}

/// ANSI styling that is a no-op when colour is off.
struct Style {
    let enabled: Bool
    private func wrap(_ code: String, _ text: String) -> String { enabled ? "\u{1B}[\(code)m\(text)\u{1B}[0m" : text }
    func bold(_ text: String) -> String { wrap("1", text) }
    func dim(_ text: String) -> String { wrap("2", text) }
    func red(_ text: String) -> String { wrap("1;31", text) }
    func yellow(_ text: String) -> String { wrap("1;33", text) }
    func green(_ text: String) -> String { wrap("32", text) }
}
