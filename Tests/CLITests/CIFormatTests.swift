import Foundation
import Testing

#if canImport(FoundationXML)
import FoundationXML
#endif

/// The CI formats: SARIF 2.1.0 from validate (checked against the shape of the published schema, with every
/// diagnostic a result and rule ids stable), JUnit XML from apply (parsed as XML, one testcase per check).
@Suite struct CIFormatTests {
    /// The parts of the SARIF 2.1.0 schema (sarif-schema-2.1.0.json) that code-scanning services require.
    static let sarifShape = #"""
        {"$defs": {
          "message": {"type": "object", "required": ["text"], "properties": {"text": {"type": "string"}}},
          "region": {"type": "object", "required": ["startLine"],
                     "properties": {"startLine": {"type": "integer"}, "startColumn": {"type": "integer"},
                                    "endLine": {"type": "integer"}, "endColumn": {"type": "integer"}}},
          "location": {"type": "object", "required": ["physicalLocation"], "properties": {
            "physicalLocation": {"type": "object", "required": ["artifactLocation", "region"], "properties": {
              "artifactLocation": {"type": "object", "required": ["uri"], "properties": {"uri": {"type": "string"}}},
              "region": {"$ref": "#/$defs/region"}}},
            "logicalLocations": {"type": "array", "items": {"type": "object", "required": ["fullyQualifiedName"]}}}},
          "result": {"type": "object", "required": ["ruleId", "ruleIndex", "level", "message", "locations"], "properties": {
            "ruleId": {"type": "string"}, "ruleIndex": {"type": "integer"},
            "level": {"enum": ["none", "note", "warning", "error"]},
            "message": {"$ref": "#/$defs/message"},
            "locations": {"type": "array", "items": {"$ref": "#/$defs/location"}}}},
          "rule": {"type": "object", "required": ["id", "shortDescription"], "properties": {
            "id": {"type": "string"}, "name": {"type": "string"}, "shortDescription": {"$ref": "#/$defs/message"}}}
        },
        "type": "object", "required": ["version", "$schema", "runs"], "properties": {
          "version": {"const": "2.1.0"}, "$schema": {"type": "string"},
          "runs": {"type": "array", "items": {"type": "object", "required": ["tool", "results"], "properties": {
            "tool": {"type": "object", "required": ["driver"], "properties": {
              "driver": {"type": "object", "required": ["name", "rules"], "properties": {
                "name": {"type": "string"}, "version": {"type": "string"},
                "rules": {"type": "array", "items": {"$ref": "#/$defs/rule"}}}}}},
            "results": {"type": "array", "items": {"$ref": "#/$defs/result"}}}}}}}
        """#

    @Test func sarifHasOneResultPerDiagnosticWithItsRegion() throws {
        let files = try FileManager.default.contentsOfDirectory(
            atPath: Gmemctl.repositoryRoot.appendingPathComponent("examples/invalid").path
        )
        .filter { $0.hasSuffix(".yaml") }.sorted().map { "examples/invalid/\($0)" }
        let sarif = try Gmemctl.run(["validate"] + files + ["--output", "sarif"])
        #expect(sarif.exitCode == 1, "errors exit 1 as in every format")
        let document = try JSONValue.parse(sarif.stdout)
        let violations = try SchemaChecker(schemaJSON: Self.sarifShape).violations(of: document)
        #expect(violations.isEmpty, "\(violations)")

        let json = try JSONValue.parse(try Gmemctl.run(["validate"] + files + ["--output", "json"]).stdout)
        guard case .array(let diagnostics)? = json["diagnostics"],
            case .array(let runs)? = document["runs"], let run = runs.first,
            case .array(let results)? = run["results"],
            case .array(let rules)? = run["tool"]?["driver"]?["rules"]
        else { Issue.record("shape: \(sarif.stdout)"); return }
        #expect(results.count == diagnostics.count, "one result per diagnostic")
        let ids = rules.compactMap { rule -> String? in
            if case .string(let id)? = rule["id"] { return id } else { return nil }
        }
        #expect(Set(ids).count == ids.count, "rule ids are unique")
        for (result, diagnostic) in zip(results, diagnostics) {
            guard case .integer(let index)? = result["ruleIndex"], Int(index) < rules.count else {
                Issue.record("ruleIndex"); continue
            }
            #expect(rules[Int(index)]["id"] == result["ruleId"], "ruleIndex points at ruleId")
            if case .integer(let line)? = diagnostic["range"]?["start"]?["line"] {
                guard case .array(let locations)? = result["locations"] else { continue }
                #expect(locations.first?["physicalLocation"]?["region"]?["startLine"] == .integer(line))
            }
        }
        // Stable ids: every misalignment is the same rule, whatever the wording.
        let misaligned = results.filter {
            if case .string(let text)? = $0["message"]?["text"] {
                return text.contains("not aligned")
            } else {
                return false
            }
        }
        #expect(misaligned.count >= 2)
        #expect(
            Set(misaligned.compactMap { if case .string(let id)? = $0["ruleId"] { return id } else { return nil } })
                == ["GM008"])

        let clean = try Gmemctl.run(["validate", "examples/shared-in-place.yaml", "--output", "sarif"])
        #expect(clean.exitCode == 0)
        #expect(
            try JSONValue.parse(clean.stdout)["runs"].map {
                if case .array(let runs) = $0 { return runs.first?["results"] == .array([]) } else { return false }
            } == true)
    }

    @Test func junitHasOneTestcasePerCheck() throws {
        let workspace = try CLIWorkspace()
        defer { workspace.remove() }
        let arguments = ["apply", "examples/shared-in-place.yaml", "--ephemeral", "--verify"]
        let junit = try workspace.run(arguments + ["--output", "junit"], host: "sim:linux-6.18")
        #expect(junit.exitCode == 0, "\(junit.stderr)")
        let xml = try XMLDocument(data: Data(junit.stdout.utf8))
        let suites = try xml.nodes(forXPath: "/testsuites/testsuite").compactMap { $0 as? XMLElement }
        #expect(suites.count == 1)
        let cases = try xml.nodes(forXPath: "//testcase").compactMap { $0 as? XMLElement }
        #expect(suites.first?.attribute(forName: "tests")?.stringValue == String(cases.count))

        let json = try JSONValue.parse(
            try workspace.run(arguments + ["--output", "json"], host: "sim:linux-6.18").stdout)
        guard case .array(let checks)? = json["verification"]?["checks"],
            case .array(let skipped)? = json["verification"]?["skipped"]
        else {
            Issue.record("no verification: \(json)")
            return
        }
        let verifyCases = cases.filter { $0.attribute(forName: "classname")?.stringValue == "gmemctl.verify" }
        #expect(verifyCases.count == checks.count + skipped.count, "one testcase per check (and per skipped check)")
        #expect(cases.first?.attribute(forName: "classname")?.stringValue == "gmemctl.apply")
        #expect(cases.last?.attribute(forName: "classname")?.stringValue == "gmemctl.teardown")
        #expect(try xml.nodes(forXPath: "//testcase/skipped").count == skipped.count)
        #expect(try xml.nodes(forXPath: "//testcase/failure").isEmpty)
    }

    @Test func aFailedApplyIsAFailedTestcase() throws {
        let workspace = try CLIWorkspace()
        defer { workspace.remove() }
        let manifest = try workspace.write("cvm.yaml", CLIWorkspace.manifest())
        let junit = try workspace.run([
            "apply", manifest, "--ephemeral", "--verify", "--output", "junit",
            "--sim-fault", "KVM_SET_USER_MEMORY_REGION2:1:12",
        ])
        #expect(junit.exitCode == 1, "a failure exits 1 in every format: \(junit.stdout)\(junit.stderr)")
        let xml = try XMLDocument(data: Data(junit.stdout.utf8))
        let failures = try xml.nodes(forXPath: "//testcase[@classname='gmemctl.apply']/failure/@message")
        #expect(failures.count == 1, "\(junit.stdout)")
        #expect(failures.first?.stringValue?.contains("ENOMEM") == true, "\(junit.stdout)")
        #expect(try xml.nodes(forXPath: "/testsuites/@failures").first?.stringValue != "0")
    }
}
