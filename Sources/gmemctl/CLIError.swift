import ArgumentParser
import Config
import Foundation
import GmemAgent
import GmemCore
import GmemKVM
import GmemProtocol
import GmemSimulator

/// Why a command failed, for people (`error: ...` on stderr) and machines (a JSON document on stdout with
/// `--output json`). Every case exits 1 except `usage` (64).
enum CLIError: Error, CustomStringConvertible {
    /// A manifest that does not load or does not fit the host; the diagnostics say where.
    case invalidManifest(file: String?, message: String, diagnostics: [Diagnostic])
    /// No such guest on the host (with the closest name, when one is close).
    case notFound(guest: String, host: String, suggestion: String?, detail: String = "")
    /// apply would tear down live blocks and lose their contents; `--allow-replace` lets it.
    case replaceRefused([BlockReplacement])
    /// A request the live guest cannot take (alignment, bounds), refused before the kernel is asked.
    case rejected(String)
    /// The host or the agent cannot be used.
    case unavailable(String)
    /// Anything else that stopped the command.
    case failed(String)
    /// Bad command-line usage (exit 64).
    case usage(String)

    init(_ message: String) { self = .failed(message) }

    /// A stable, machine-readable code (the same words the agent uses where they overlap).
    var code: String {
        switch self {
        case .invalidManifest: return "invalid-manifest"
        case .notFound: return "not-found"
        case .replaceRefused: return "replace-refused"
        case .rejected: return "rejected"
        case .unavailable: return "unavailable"
        case .failed: return "failed"
        case .usage: return "usage"
        }
    }

    var exitCode: ExitCode { if case .usage = self { return ExitCode(64) } else { return .failure } }

    var description: String {
        switch self {
        case .invalidManifest(_, let message, _): return message
        case .notFound(let guest, let host, let suggestion, let detail):
            var text = "guest \(guest) does not exist on \(host)"
            if let suggestion { text += "; did you mean \(suggestion)?" }
            return text + detail
        case .replaceRefused(let replacements):
            let names = replacements.map(\.block).joined(separator: ", ")
            let noun = replacements.count == 1 ? "block" : "blocks"
            return
                "apply would replace live \(noun) \(names) and lose \(replacements.count == 1 ? "its" : "their") contents; nothing was changed. Run `gmemctl plan` to see why, then apply again with --allow-replace"
        case .rejected(let text), .unavailable(let text), .failed(let text), .usage(let text): return text
        }
    }

    var diagnostics: [Diagnostic] {
        if case .invalidManifest(_, _, let diagnostics) = self { return diagnostics }
        return []
    }

    /// A workflow error in the CLI's terms: manifest diagnostics stay attached.
    init(_ error: ProvisionError, file: String?) {
        if error.diagnostics.isEmpty {
            self = .failed(error.message)
        } else {
            self = .invalidManifest(file: file, message: error.message, diagnostics: error.diagnostics)
        }
    }
}

/// Prints a failed command's error in the format the command was asked for, and exits with its code.
enum ErrorOutput {
    struct Document: Encodable {
        struct Body: Encodable {
            var code: String
            var message: String
            var diagnostics: [JSONDiagnostic]?
            var replacements: [ReplacementJSON]?
        }
        var formatVersion = JSONOutput.formatVersion
        var error: Body
    }

    static func document(_ error: CLIError) -> Document {
        var diagnostics: [JSONDiagnostic]?
        if case .invalidManifest(let file, _, let found) = error, !found.isEmpty {
            diagnostics = found.map { JSONDiagnostic($0, file: file ?? "") }
        }
        var replacements: [ReplacementJSON]?
        if case .replaceRefused(let found) = error { replacements = found.map(ReplacementJSON.init) }
        return Document(
            error: .init(
                code: error.code, message: error.description, diagnostics: diagnostics,
                replacements: replacements))
    }

    static func emit(_ error: CLIError, format: OutputFormat) {
        switch format {
        case .json:
            try? JSONOutput.print(document(error))
        case .human:
            var stderr = StandardError()
            print("error: \(error.description)", to: &stderr)
            if case .invalidManifest(let file, _, let diagnostics) = error, !diagnostics.isEmpty {
                print(
                    DiagnosticOutput.human(
                        [FileDiagnostics(file: file ?? "", diagnostics: diagnostics)],
                        color: Terminal.colorEnabled(for: STDOUT_FILENO)), terminator: "")
            }
        }
    }
}

func printNote(_ text: String) {
    var stderr = StandardError()
    print("note: \(text)", to: &stderr)
}

struct StandardError: TextOutputStream {
    mutating func write(_ string: String) {
        var bytes = Array(string.utf8)
        _ = Glibc.write(STDERR_FILENO, &bytes, bytes.count)
    }
}
