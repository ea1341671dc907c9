import Foundation
import Testing

/// Every `--option` that gmemctl's help, notes and docs tell people to type is an option some command takes.
/// (The truncation note of `validate` once named `--format json`, which no command has.)
@Suite struct OptionNameTests {
    /// Options of other programs that the docs quote in their own commands (systemctl, journalctl, swift,
    /// gmemctl-bench): not gmemctl's, so not checked against its help.
    static let otherPrograms: Set<String> = [
        "--user", "--now", "--quick", "--filter", "--build-tests", "--product", "--seconds", "--clients", "--rounds",
    ]

    /// Each command path (`[]` for the root, `["agent", "run"]`) and its help text.
    static func helpTexts() throws -> [(command: [String], text: String)] {
        let root = try Gmemctl.run(["--help"])
        #expect(root.exitCode == 0, "\(root.stderr)")
        var commands: [[String]] = [[]]
        if let section = root.stdout.range(of: "SUBCOMMANDS:") {
            // "  validate                Check manifests ..."; wrapped abstracts are indented further.
            for line in root.stdout[section.upperBound...].split(separator: "\n") {
                guard let match = line.firstMatch(of: /^  ([a-z][a-z-]*)\s\s/) else { continue }
                commands.append([String(match.1)])
            }
        }
        #expect(commands.count > 10, "the root help lists the commands: \(root.stdout)")
        commands += [["agent", "run"], ["agent", "stop"]]
        return try commands.map { command in
            let help = try Gmemctl.run(command + ["--help"])
            #expect(help.exitCode == 0, "\(command): \(help.stderr)")
            return (command, help.stdout)
        }
    }

    /// `--word` tokens in `text`, not counting a bare `--` or a longer word such as `gmemctl-bench`.
    static func optionsNamed(in text: String) -> Set<String> {
        // A constant pattern: it compiles, or every run of this test says so at once.
        guard let pattern = try? NSRegularExpression(pattern: #"(?<![\w-])--[a-z][a-z0-9-]*[a-z0-9]"#) else {
            Issue.record("the option pattern does not compile")
            return []
        }
        let range = NSRange(text.startIndex..., in: text)
        return Set(
            pattern.matches(in: text, range: range).compactMap { match in
                Range(match.range, in: text).map { String(text[$0]) }
            })
    }

    /// What the CLI, the README and the docs say: help text, string literals of Sources/gmemctl (comments are
    /// not shown to anyone), README.md and docs/*.md.
    static func userFacingTexts(help: [(command: [String], text: String)]) throws -> [(origin: String, text: String)] {
        let root = Gmemctl.repositoryRoot
        var texts = help.map { ("gmemctl \($0.command.joined(separator: " ")) --help", $0.text) }
        let sources = root.appendingPathComponent("Sources/gmemctl")
        for name in try FileManager.default.contentsOfDirectory(atPath: sources.path) where name.hasSuffix(".swift") {
            let code = try String(contentsOf: sources.appendingPathComponent(name), encoding: .utf8)
                .split(separator: "\n").filter { !$0.trimmingCharacters(in: .whitespaces).hasPrefix("//") }
            texts.append(("Sources/gmemctl/\(name)", code.joined(separator: "\n")))
        }
        texts.append(("README.md", try String(contentsOf: root.appendingPathComponent("README.md"), encoding: .utf8)))
        let docs = root.appendingPathComponent("docs")
        for name in try FileManager.default.contentsOfDirectory(atPath: docs.path) where name.hasSuffix(".md") {
            texts.append(("docs/\(name)", try String(contentsOf: docs.appendingPathComponent(name), encoding: .utf8)))
        }
        return texts
    }

    @Test func everyOptionNamedForPeopleExists() throws {
        let help = try Self.helpTexts()
        // An option exists when some command's help lists it in its OPTIONS section ("  -o, --output <...>").
        let listed = try NSRegularExpression(pattern: #"(?m)^\s+(?:-\w, )?(--[a-z][a-z0-9-]*)"#)
        // --color is taken before parsing, by any command; --sim-fault is hidden (for tests), named only by its
        // own error.
        var known: Set<String> = ["--color", "--sim-fault"]
        for (_, text) in help {
            for match in listed.matches(in: text, range: NSRange(text.startIndex..., in: text)) {
                if let range = Range(match.range(at: 1), in: text) { known.insert(String(text[range])) }
            }
        }
        #expect(
            known.isSuperset(of: ["--output", "--host", "--state", "--version", "--allow-replace"]),
            "\(known.sorted())")
        for (origin, text) in try Self.userFacingTexts(help: help) {
            for option in Self.optionsNamed(in: text).subtracting(known).subtracting(Self.otherPrograms) {
                Issue.record("\(origin) names \(option), which no gmemctl command takes")
            }
        }
    }

    /// The note shown past 200 diagnostics names an option that lists them all, and it does.
    @Test func theTruncationNoteNamesAnOptionThatListsEveryDiagnostic() throws {
        let workspace = try CLIWorkspace()
        defer { workspace.remove() }
        let unknownKeys = (0..<250).map { "  unknown\($0): 1" }.joined(separator: "\n")
        let file = try workspace.write(
            "many.yaml",
            CLIWorkspace.manifest().replacingOccurrences(
                of: "  name: cvm\n", with: "  name: cvm\n\(unknownKeys)\n"))
        let human = try Gmemctl.run(["validate", file])
        #expect(human.exitCode == 1)
        let note = try #require(
            human.stdout.split(separator: "\n").first { $0.hasPrefix("... and ") },
            "\(human.stdout.suffix(300))")
        #expect(note == "... and 50 more (`--output json` lists the first 1000 of each file)")
        let json = try Gmemctl.run(["validate", file, "--output", "json"])
        #expect(json.exitCode == 1)
        guard case .array(let diagnostics)? = try JSONValue.parse(json.stdout)["diagnostics"] else {
            Issue.record("no diagnostics: \(json.stdout.prefix(300))")
            return
        }
        #expect(diagnostics.count == 250)
    }
}
