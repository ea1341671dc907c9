import ArgumentParser
import Foundation

@main
struct GMemCtl: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gmemctl",
        abstract: "Provision KVM guest memory (guest_memfd) from declarative YAML manifests.",
        discussion: """
            Exit codes, the same in every command:
              0   success, nothing to change
              1   error: bad manifest, unreadable file, missing capability, failed operation
              2   success with changes or drift present
              64  bad command-line usage

            With --output json every command prints one JSON document with "formatVersion", errors included: {"formatVersion": "1.0", "error": {"code": ..., "message": ...}}. `gmemctl schema --document NAME` prints the JSON Schema of each document.

            Colour: plan, diff and validate colour their markers on a terminal; --color always|never|auto (any command) overrides, and NO_COLOR turns it off.

            Examples:
              gmemctl validate examples/shared-in-place.yaml
              gmemctl plan examples/in-place-mixed.yaml --host sim:gmem-attributes2
              gmemctl --version
            """,
        subcommands: [
            Validate.self, CapsCommand.self, ProfilesCommand.self, PlanCommand.self, ApplyCommand.self,
            DiffCommand.self, GetCommand.self, ConvertCommand.self, DestroyCommand.self, EventsCommand.self,
            ListenCommand.self,
            AgentCommand.self,
            ConformanceCommand.self,
            Schema.self,
        ]
    )

    @Flag(name: .long, help: "Print gmemctl's version (package version and the git revision it was built from).")
    var version = false

    func run() throws {
        if version {
            print("gmemctl \(BuildVersion.text)")
            return
        }
        throw CleanExit.helpRequest(self)
    }

    /// Parses, runs, and reports every failure one way: `error: ...` for people, a JSON error document with
    /// `--output json`, exit 64 for usage and 1 for the rest.
    static func main() {
        var arguments = Array(CommandLine.arguments.dropFirst())
        let format = OutputFormat.requested(in: arguments)
        do {
            arguments = try Terminal.takeColorOption(from: arguments)
            try CommandNames.check(arguments)
            var command = try parseAsRoot(arguments)
            try command.run()
        } catch let error as CLIError {
            ErrorOutput.emit(error, format: format)
            exit(withError: error.exitCode)
        } catch let error as ExitCode {
            exit(withError: error)
        } catch {
            let code = exitCode(for: error)
            // Help and other clean exits stay ArgumentParser's; any other failure is reported like a CLIError,
            // so `--output json` always gets its error document and people always get one `error:` line.
            guard code.rawValue == 64 else {
                guard code.rawValue != 0 else { exit(withError: error) }
                let failure = CLIError.failed(message(for: error))
                ErrorOutput.emit(failure, format: format)
                exit(withError: code)
            }
            let usage = CLIError.usage(message(for: error))
            if format == .json {
                ErrorOutput.emit(usage, format: .json)
            } else {
                // ArgumentParser says "Error:"; every other message of gmemctl says "error:".
                var text = fullMessage(for: error)
                if text.hasPrefix("Error: ") { text = "error: " + text.dropFirst("Error: ".count) }
                var stderr = StandardError()
                print(text, to: &stderr)
            }
            exit(withError: code)
        }
    }
}

extension OutputFormat {
    /// The format a command line asks for, known before parsing so that parse errors can follow it.
    static func requested(in arguments: [String]) -> OutputFormat {
        for (index, argument) in arguments.enumerated() {
            if argument == "--" { break }
            if argument.hasPrefix("--output=") {
                return OutputFormat(rawValue: String(argument.dropFirst(9))) ?? .human
            }
            if argument == "--output", index + 1 < arguments.count {
                return OutputFormat(rawValue: arguments[index + 1]) ?? .human
            }
        }
        return .human
    }
}

/// Subcommand names checked before parsing, so a typo gets a suggestion and `help UNKNOWN` is an error.
enum CommandNames {
    static var all: [String] {
        GMemCtl.configuration.subcommands.map { $0._commandName } + ["help"]
    }

    static func check(_ arguments: [String]) throws {
        guard let first = arguments.first, !first.hasPrefix("-") else { return }
        let names = all
        if first == "help" {
            guard arguments.count > 1, !arguments[1].hasPrefix("-") else { return }
            if !names.contains(arguments[1]) { throw CLIError.usage(unknown(arguments[1], names: names)) }
            return
        }
        if !names.contains(first) { throw CLIError.usage(unknown(first, names: names)) }
    }

    private static func unknown(_ name: String, names: [String]) -> String {
        var text = "unknown command '\(name)'"
        if let close = Suggestion.closest(to: name, among: names) { text += "; did you mean '\(close)'?" }
        return text + " (commands: \(names.filter { $0 != "help" }.joined(separator: ", ")))"
    }
}

/// "Did you mean": the candidate within a small edit distance of a mistyped name.
enum Suggestion {
    static func closest(to word: String, among candidates: [String]) -> String? {
        let limit = max(1, word.count / 3)
        let scored = candidates.map { ($0, distance(word.lowercased(), $0.lowercased())) }.filter { $0.1 <= limit }
        return scored.min { $0.1 < $1.1 || ($0.1 == $1.1 && $0.0 < $1.0) }?.0
    }

    /// Levenshtein distance with adjacent transpositions counted as one edit.
    static func distance(_ a: String, _ b: String) -> Int {
        let a = Array(a), b = Array(b)
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var previous2 = [Int](repeating: 0, count: b.count + 1)
        var previous = Array(0...b.count)
        for i in 1...a.count {
            var current = [i] + [Int](repeating: 0, count: b.count)
            for j in 1...b.count {
                let cost = a[i - 1] == b[j - 1] ? 0 : 1
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
                if i > 1, j > 1, a[i - 1] == b[j - 2], a[i - 2] == b[j - 1] {
                    current[j] = min(current[j], previous2[j - 2] + 1)
                }
            }
            previous2 = previous
            previous = current
        }
        return previous[b.count]
    }
}
