import Foundation
import Testing

/// Every `--output json` document: formatVersion, lowerCamelCase keys, no Swift enum artefacts, and the shape
/// its schema (`gmemctl schema --document NAME`) gives; errors are JSON documents on stdout with the usual exit codes.
@Suite struct JSONContractTests {
    private func schema(_ name: String) throws -> SchemaChecker {
        let printed = try Gmemctl.run(["schema", "--document", name])
        #expect(printed.exitCode == 0, "\(printed.stderr)")
        return try SchemaChecker(schemaJSON: printed.stdout)
    }

    /// Checks one document against its schema and the style rules; keys under `resolutions` are block names.
    private func expectConforms(
        _ text: String, to name: String, sourceLocation: SourceLocation = #_sourceLocation
    ) throws {
        let document = try JSONValue.parse(text)
        let violations = try schema(name).violations(of: document)
        #expect(
            violations.isEmpty, "\(name): \(violations.joined(separator: "; "))\n\(text)",
            sourceLocation: sourceLocation)
        #expect(
            document["formatVersion"] == .string("1.0"), "\(name) has formatVersion", sourceLocation: sourceLocation)
        for (path, key) in document.keys() where !path.hasSuffix(".resolutions") {
            #expect(
                key.range(of: "^[a-z][A-Za-z0-9]*$", options: .regularExpression) != nil,
                "\(name): key \(key) at \(path) is not lowerCamelCase (no enum artefacts like _0)",
                sourceLocation: sourceLocation)
        }
    }

    @Test func everyDocumentMatchesItsSchema() throws {
        let workspace = try CLIWorkspace()
        defer { workspace.remove() }
        let manifest = try workspace.write("cvm.yaml", CLIWorkspace.manifest())
        let plan = try workspace.run(["plan", manifest, "--output", "json"])
        #expect(plan.exitCode == 2)
        try expectConforms(plan.stdout, to: "plan")

        let apply = try workspace.run(["apply", manifest, "--verify", "--output", "json"])
        #expect(apply.exitCode == 0, "\(apply.stderr)")
        try expectConforms(apply.stdout, to: "apply")

        let get = try workspace.run(["get", "cvm", "--output", "json"])
        try expectConforms(get.stdout, to: "get")

        let convert = try workspace.run([
            "convert", "cvm", "--gpa", "0x400000", "--size", "2MiB", "--to", "shared", "--output", "json",
        ])
        #expect(convert.exitCode == 0, "\(convert.stdout)\(convert.stderr)")
        try expectConforms(convert.stdout, to: "run")

        let diff = try workspace.run(["diff", manifest, "--output", "json"])
        #expect(diff.exitCode == 2)
        try expectConforms(diff.stdout, to: "diff")

        let events = try workspace.run(["events", "cvm", "--output", "json"])
        let lines = events.stdout.split(separator: "\n").map(String.init)
        #expect(!lines.isEmpty, "the listener heard the conversions")
        for line in lines { try expectConforms(line, to: "events") }

        // Legacy blocks need a kernel in per-VM attribute mode (gmem-attributes2 is the in-place mode), and a
        // state file belongs to one simulated kernel, so this guest gets a workspace of its own.
        let legacyWorkspace = try CLIWorkspace()
        defer { legacyWorkspace.remove() }
        let legacy = try legacyWorkspace.run(
            ["apply", "examples/legacy-memfd.yaml", "--output", "json"], host: "sim:linux-7.4")
        #expect(legacy.exitCode == 0, "\(legacy.stderr)")
        try expectConforms(legacy.stdout, to: "apply")
        #expect(!legacy.stdout.contains("\"_0\""))
        let backend = try JSONValue.parse(legacy.stdout)["live"]?["blocks"]
        if case .array(let blocks)? = backend {
            #expect(blocks.first?["backend"]?["type"] == .string("legacy"))
            #expect(blocks.first?["backend"]?["shared"]?["source"] == .string("memfd"))
        } else {
            Issue.record("no blocks: \(legacy.stdout)")
        }

        let destroy = try workspace.run(["destroy", "cvm", "--output", "json"])
        try expectConforms(destroy.stdout, to: "run")
    }

    @Test(arguments: [
        (["get", "no-such-guest"], Int32(1), "not-found"),
        (["plan", "examples/invalid/overlaps.yaml"], Int32(1), "invalid-manifest"),
        (["plan", "examples/does-not-exist.yaml"], Int32(1), "invalid-manifest"),
        (["convert", "no-such-guest", "--gpa", "0", "--size", "4KiB", "--to", "shared"], Int32(1), "not-found"),
        (["apply", "--bogus", "examples/shared-in-place.yaml"], Int32(64), "usage"),
    ])
    func errorsAreJSONDocumentsOnStdout(arguments: [String], exitCode: Int32, code: String) throws {
        let workspace = try CLIWorkspace()
        defer { workspace.remove() }
        let result = try workspace.run(arguments + ["--output", "json"])
        #expect(result.exitCode == exitCode, "\(result.stdout)\(result.stderr)")
        try expectConforms(result.stdout, to: "error")
        let document = try JSONValue.parse(result.stdout)
        #expect(document["error"]?["code"] == .string(code))
        if code == "invalid-manifest" {
            guard case .array(let diagnostics)? = document["error"]?["diagnostics"] else {
                Issue.record("no diagnostics"); return
            }
            #expect(!diagnostics.isEmpty)
        }
    }

    /// Ways a state file is refused; each rewrites the workspace's state file after a guest was applied.
    enum StateDamage: String, CaseIterable, Sendable {
        case symlinked, corrupt, unknownFormatVersion

        func inflict(on workspace: CLIWorkspace) throws {
            let state = workspace.state
            switch self {
            case .symlinked:
                let victim = try workspace.write("victim", "precious\n")
                try FileManager.default.removeItem(atPath: state)
                try FileManager.default.createSymbolicLink(atPath: state, withDestinationPath: victim)
            case .corrupt:
                try "{\"formatVersion\":1,\"guests\":".write(toFile: state, atomically: false, encoding: .utf8)
            case .unknownFormatVersion:
                let text = try String(contentsOfFile: state, encoding: .utf8)
                #expect(text.contains("\"formatVersion\":1"))
                try text.replacingOccurrences(of: "\"formatVersion\":1", with: "\"formatVersion\":99")
                    .write(toFile: state, atomically: false, encoding: .utf8)
            }
        }

        /// Words the message must carry, so the test knows which refusal it saw.
        var says: String {
            switch self {
            case .symlinked: return "it is a symbolic link"
            case .corrupt: return "move it away"
            case .unknownFormatVersion: return "format version 99"
            }
        }
    }

    /// A refused state file is an error like any other: the JSON error document on stdout and nothing on
    /// stderr with `--output json`, one `error:` line on stderr otherwise, exit 1 either way.
    @Test(arguments: StateDamage.allCases)
    func stateFileErrorsFollowTheContract(damage: StateDamage) throws {
        let workspace = try CLIWorkspace()
        defer { workspace.remove() }
        let manifest = try workspace.write("cvm.yaml", CLIWorkspace.manifest())
        #expect(try workspace.run(["apply", manifest]).exitCode == 0)
        try damage.inflict(on: workspace)
        for command in [["get", "cvm"], ["plan", manifest], ["diff", manifest], ["apply", manifest]] {
            let json = try workspace.run(command + ["--output", "json"])
            #expect(json.exitCode == 1, "\(damage) \(command): \(json.stdout)\(json.stderr)")
            #expect(json.stderr.isEmpty, "\(damage) \(command): \(json.stderr)")
            try expectConforms(json.stdout, to: "error")
            let document = try JSONValue.parse(json.stdout)
            #expect(document["error"]?["code"] == .string("unavailable"), "\(damage) \(command): \(json.stdout)")
            guard case .string(let message)? = document["error"]?["message"] else {
                Issue.record("\(damage) \(command): no message in \(json.stdout)")
                continue
            }
            #expect(message.contains(damage.says), "\(damage) \(command): \(message)")

            let human = try workspace.run(command)
            #expect(human.exitCode == 1)
            #expect(human.stdout.isEmpty, "\(damage) \(command): \(human.stdout)")
            #expect(
                human.stderr.hasPrefix("error: ") && human.stderr.contains(damage.says),
                "\(damage) \(command): \(human.stderr)")
        }
    }

    @Test func aCasePatternThatMatchesNothingIsAUsageErrorDocument() throws {
        let arguments = ["conformance", "--host", "sim:linux-6.18", "--case", "NOMATCH"]
        let json = try Gmemctl.run(arguments + ["--output", "json"])
        #expect(json.exitCode == 64, "\(json.stdout)\(json.stderr)")
        #expect(json.stderr.isEmpty, "\(json.stderr)")
        try expectConforms(json.stdout, to: "error")
        let document = try JSONValue.parse(json.stdout)
        #expect(document["error"]?["code"] == .string("usage"))
        #expect(document["error"]?["message"] == .string("no case of profile linux-6.18 matches --case NOMATCH"))

        let human = try Gmemctl.run(arguments)
        #expect(human.exitCode == 64)
        #expect(human.stderr == "error: no case of profile linux-6.18 matches --case NOMATCH\n", "\(human.stderr)")
    }

    @Test func theCheckerRejectsWhatASchemaForbids() throws {
        let checker = try schema("error")
        #expect(
            checker.violations(
                of: try JSONValue.parse(#"{"formatVersion": "1.0", "error": {"code": "failed", "message": "x"}}"#)
            ).isEmpty)
        let wrong = try JSONValue.parse(
            #"{"error": {"code": "oops", "message": 3, "backend": {"legacy": {"_0": {}}}}}"#)
        let violations = checker.violations(of: wrong)
        #expect(violations.contains { $0.contains("missing required \"formatVersion\"") }, "\(violations)")
        #expect(violations.contains { $0.contains("\"oops\" is not one of") }, "\(violations)")
        #expect(violations.contains { $0.contains("expected string, got integer") }, "\(violations)")
        #expect(violations.contains { $0.contains("unexpected property \"backend\"") }, "\(violations)")
    }

    @Test func theSameErrorForPeopleIsOneLineOnStderr() throws {
        let workspace = try CLIWorkspace()
        defer { workspace.remove() }
        let result = try workspace.run(["get", "no-such-guest"])
        #expect(result.exitCode == 1)
        #expect(result.stdout.isEmpty)
        #expect(
            result.stderr.hasPrefix("error: guest no-such-guest does not exist on sim:gmem-attributes2"),
            "\(result.stderr)")
    }
}
