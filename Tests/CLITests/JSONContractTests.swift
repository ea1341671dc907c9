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
    private func expectConforms(_ text: String, to name: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let document = try JSONValue.parse(text)
        let violations = try schema(name).violations(of: document)
        #expect(violations.isEmpty, "\(name): \(violations.joined(separator: "; "))\n\(text)", sourceLocation: sourceLocation)
        #expect(document["formatVersion"] == .string("1.0"), "\(name) has formatVersion", sourceLocation: sourceLocation)
        for (path, key) in document.keys() where !path.hasSuffix(".resolutions") {
            #expect(key.range(of: "^[a-z][A-Za-z0-9]*$", options: .regularExpression) != nil,
                    "\(name): key \(key) at \(path) is not lowerCamelCase (no enum artefacts like _0)", sourceLocation: sourceLocation)
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

        let convert = try workspace.run(["convert", "cvm", "--gpa", "0x400000", "--size", "2MiB", "--to", "shared", "--output", "json"])
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
        let legacy = try legacyWorkspace.run(["apply", "examples/legacy-memfd.yaml", "--output", "json"], host: "sim:linux-7.4")
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
            guard case .array(let diagnostics)? = document["error"]?["diagnostics"] else { Issue.record("no diagnostics"); return }
            #expect(!diagnostics.isEmpty)
        }
    }

    @Test func theCheckerRejectsWhatASchemaForbids() throws {
        let checker = try schema("error")
        #expect(checker.violations(of: try JSONValue.parse(#"{"formatVersion": "1.0", "error": {"code": "failed", "message": "x"}}"#)).isEmpty)
        let wrong = try JSONValue.parse(#"{"error": {"code": "oops", "message": 3, "backend": {"legacy": {"_0": {}}}}}"#)
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
        #expect(result.stderr.hasPrefix("error: guest no-such-guest does not exist on sim:gmem-attributes2"), "\(result.stderr)")
    }
}
