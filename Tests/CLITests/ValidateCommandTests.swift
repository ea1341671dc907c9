import Foundation
import Testing

@Suite struct ValidateCommandTests {
    static let validExamples: [String] = {
        let directory = Gmemctl.repositoryRoot.appendingPathComponent("examples").path
        return ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [])
            .filter { $0.hasSuffix(".yaml") }.sorted().map { "examples/\($0)" }
    }()

    /// Every invalid example with the `line:col [path]` of each diagnostic it must produce, in order.
    static let invalidExamples: [(file: String, expected: [(line: Int, column: Int, path: String)])] = [
        (
            "examples/invalid/five-mistakes.yaml",
            [
                (13, 11, "spec.vm.type"), (16, 13, "spec.blocks[0].size"), (25, 54, "spec.mappings[1].gpa"),
                (26, 16, "spec.mappings[2].block"), (29, 3, "spec.lsteners"),
            ]
        ),
        ("examples/invalid/hole-crossing.yaml", [(17, 9, "spec.layout.shared[0]"), (19, 9, "spec.layout.private[0]")]),
        (
            "examples/invalid/hugetlb-misaligned.yaml",
            [
                (11, 13, "spec.blocks[0].size"), (19, 17, "spec.blocks[1].backend.shared"),
                (21, 29, "spec.mappings[0].offset"),
            ]
        ),
        ("examples/invalid/mapping-exceeds-block.yaml", [(15, 41, "spec.mappings[1].size")]),
        (
            "examples/invalid/overlaps.yaml",
            [(13, 29, "spec.mappings[1].offset"), (13, 56, "spec.mappings[1].gpa"), (18, 9, "spec.layout.private[0]")]
        ),
        (
            "examples/invalid/private-on-default.yaml",
            [(15, 14, "spec.layout.default"), (17, 9, "spec.layout.private[0]")]
        ),
        ("examples/invalid/syntax-error.yaml", [(11, 9, "")]),
        ("examples/invalid/unknown-key.yaml", [(6, 3, "metadata.size"), (11, 3, "spec.mapings")]),
        (
            "examples/invalid/wrong-types.yaml",
            [
                (3, 13, "apiVersion"), (12, 24, "spec.blocks[0].backend.type"),
                (14, 7, "spec.mappings[0].gpa"), (17, 14, "spec.listeners"),
            ]
        ),
    ]

    @Test func everyInvalidExampleIsCovered() throws {
        let directory = Gmemctl.repositoryRoot.appendingPathComponent("examples/invalid").path
        let onDisk = try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.hasSuffix(".yaml") }.map
        { "examples/invalid/\($0)" }
        #expect(Set(onDisk) == Set(Self.invalidExamples.map(\.file)))
    }

    @Test(arguments: validExamples)
    func validExampleExitsZero(file: String) throws {
        let result = try Gmemctl.run(["validate", file])
        #expect(result.exitCode == 0, "\(result.stdout)\(result.stderr)")
        #expect(result.stdout == "0 errors, 0 warnings in 1 file\n")
    }

    @Test(arguments: invalidExamples.map(\.file))
    func invalidExampleExitsOneAndPointsAtEachMistake(file: String) throws {
        let expected = try #require(Self.invalidExamples.first { $0.file == file }?.expected)
        let result = try Gmemctl.run(["validate", file])
        #expect(result.exitCode == 1)
        let headers = result.stdout.split(separator: "\n").filter { $0.hasPrefix("\(file):") }
        #expect(headers.count == expected.count, "\(result.stdout)")
        for (header, want) in zip(headers, expected) {
            #expect(header.hasPrefix("\(file):\(want.line):\(want.column): error: "), "\(header)")
            if !want.path.isEmpty { #expect(header.hasSuffix("[\(want.path)]"), "\(header)") }
        }
        #expect(
            result.stdout.hasSuffix("\(expected.count) error\(expected.count == 1 ? "" : "s"), 0 warnings in 1 file\n"))
    }

    @Test func humanOutputShowsTheSourceLineAndACaretUnderTheRange() throws {
        let result = try Gmemctl.run(["validate", "examples/invalid/mapping-exceeds-block.yaml"])
        let lines = result.stdout.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        #expect(
            lines[0]
                == "examples/invalid/mapping-exceeds-block.yaml:15:41: error: mapping exceeds its block `ram` [spec.mappings[1].size]"
        )
        #expect(lines[1] == " 15 |     - { block: ram, offset: 2GiB, size: 4GiB, gpa: 0x100000000 }")
        #expect(lines[2] == "    |                                         ^~~~")
        #expect(lines[3].hasPrefix("   = offset 2 GiB + size 4 GiB ends past the block's 4 GiB"))
        #expect(!result.stdout.contains("\u{1B}["), "no colour without a terminal")
    }

    @Test func warningsDoNotFail() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "gmemctl-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let source = try String(
            contentsOf: Gmemctl.repositoryRoot.appendingPathComponent("examples/in-place-mixed.yaml"), encoding: .utf8)
        let file = directory.appendingPathComponent("warn.yaml")
        try source.replacingOccurrences(of: "type: in-place", with: "type: in-place\n        shared: { source: memfd }")
            .write(to: file, atomically: true, encoding: .utf8)
        let result = try Gmemctl.run(["validate", file.path])
        #expect(result.exitCode == 0)
        #expect(result.stdout.contains(": warning: `shared` settings are ignored for an in-place block"))
        #expect(result.stdout.hasSuffix("0 errors, 1 warning in 1 file\n"))
    }

    @Test func jsonOutputHasTheTerraformShape() throws {
        let file = "examples/invalid/five-mistakes.yaml"
        let result = try Gmemctl.run(["validate", file, "--output", "json"])
        #expect(result.exitCode == 1)
        let document = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        #expect(document["formatVersion"] as? String == "1.0")
        #expect(document["valid"] as? Bool == false)
        #expect(document["errorCount"] as? Int == 5)
        #expect(document["warningCount"] as? Int == 0)
        let diagnostics = try #require(document["diagnostics"] as? [[String: Any]])
        #expect(diagnostics.count == 5)
        let expected = try #require(Self.invalidExamples.first { $0.file == file }?.expected)
        for (diagnostic, want) in zip(diagnostics, expected) {
            #expect(diagnostic["severity"] as? String == "error")
            #expect(diagnostic["path"] as? String == want.path)
            #expect((diagnostic["summary"] as? String)?.isEmpty == false)
            #expect(diagnostic["detail"] is String)
            let range = try #require(diagnostic["range"] as? [String: Any])
            #expect(range["filename"] as? String == file)
            let start = try #require(range["start"] as? [String: Int])
            #expect(start == ["line": want.line, "column": want.column])
            let end = try #require(range["end"] as? [String: Int])
            #expect(end["line"] == want.line && (end["column"] ?? 0) > want.column)
        }
    }

    @Test func jsonForSeveralValidFilesIsOneObject() throws {
        let result = try Gmemctl.run(["validate", "--output", "json"] + Self.validExamples)
        #expect(result.exitCode == 0)
        let document = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        #expect(document["valid"] as? Bool == true)
        #expect(document["errorCount"] as? Int == 0)
        #expect((document["diagnostics"] as? [Any])?.isEmpty == true)
    }

    @Test func missingFileIsAnErrorNotAUsageError() throws {
        let result = try Gmemctl.run(["validate", "examples/shared-in-place.yaml", "examples/does-not-exist.yaml"])
        #expect(result.exitCode == 1)
        #expect(
            result.stdout.contains(
                "examples/does-not-exist.yaml:1:1: error: cannot read examples/does-not-exist.yaml: No such file or directory"
            ))
        #expect(result.stdout.hasSuffix("1 error, 0 warnings in 2 files\n"))
    }

    @Test(arguments: [
        ["validate", "--bogus", "examples/shared-in-place.yaml"], ["validate"],
        ["validate", "--output", "xml", "examples/shared-in-place.yaml"], ["no-such-command"],
    ])
    func misuseExits64(arguments: [String]) throws {
        let result = try Gmemctl.run(arguments)
        #expect(result.exitCode == 64, "\(result.stderr)")
        #expect(result.stderr.hasPrefix("error: "), "one error prefix style: \(result.stderr)")
        #expect(!result.stderr.contains("Error:"))
    }

    @Test func helpTeachesExamplesAndExitCodes() throws {
        let result = try Gmemctl.run(["validate", "--help"])
        #expect(result.exitCode == 0)
        #expect(result.stdout.contains("gmemctl validate examples/shared-in-place.yaml"))
        #expect(result.stdout.contains("Exit codes:"))
        #expect(result.stdout.contains("64  bad command-line usage"))
    }
}

@Suite struct SchemaCommandTests {
    @Test func printsADraft202012SchemaWithTheManifestKeys() throws {
        let result = try Gmemctl.run(["schema"])
        #expect(result.exitCode == 0)
        let schema = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        #expect(schema["$schema"] as? String == "https://json-schema.org/draft/2020-12/schema")
        let properties = try #require(schema["properties"] as? [String: Any])
        #expect(Set(properties.keys) == ["apiVersion", "kind", "metadata", "spec"])
        let spec = try #require(properties["spec"] as? [String: Any])
        let specProperties = try #require(spec["properties"] as? [String: Any])
        #expect(Set(specProperties.keys) == ["vm", "blocks", "mappings", "layout", "listeners"])
    }

    @Test func helpTeaches() throws {
        let result = try Gmemctl.run(["schema", "--help"])
        #expect(result.exitCode == 0)
        #expect(result.stdout.contains("gmemctl schema > gmemctl.schema.json"))
        #expect(result.stdout.contains("Exit codes"))
    }
}
