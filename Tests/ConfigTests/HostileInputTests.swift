import Config
import Foundation
import Testing

/// Garbage and hostile inputs: each yields a clear diagnostic quickly, never a crash or a hang.
@Suite struct HostileInputTests {
    /// Loads and returns the diagnostics, requiring the load to finish within a second.
    func loadQuickly(_ bytes: [UInt8], sourceLocation: SourceLocation = #_sourceLocation) -> [Diagnostic] {
        let clock = ContinuousClock()
        var result: LoadResult?
        let elapsed = clock.measure { result = ManifestLoader.load(bytes: bytes, file: "hostile.yaml") }
        #expect(elapsed < .seconds(1), "took \(elapsed)", sourceLocation: sourceLocation)
        #expect(result?.manifest == nil, sourceLocation: sourceLocation)
        #expect(result?.isValid == false, sourceLocation: sourceLocation)
        return result?.diagnostics ?? []
    }

    @Test func emptyFile() throws {
        for text in ["", "\n\n", "# only a comment\n", "---\n"] {
            let diagnostics = loadQuickly(Array(text.utf8))
            let only = try #require(diagnostics.first)
            #expect(diagnostics.count == 1)
            #expect(only.summary == "file is empty")
            #expect(only.range?.start == SourcePosition(line: 1, column: 1))
        }
    }

    @Test func binaryBytes() throws {
        var generator = SystemRandomNumberGenerator()
        let bytes =
            [0x7F, 0x45, 0x4C, 0x46, 0x02, 0x01, 0x00]
            + (0..<4096).map { _ in UInt8.random(in: 0...255, using: &generator) }
        let diagnostics = loadQuickly(bytes)
        let only = try #require(diagnostics.first)
        #expect(diagnostics.count == 1)
        #expect(only.summary == "file is not UTF-8 text")
        #expect(only.detail.contains("NUL byte at offset 6"))
    }

    @Test func invalidUTF8IsLocated() throws {
        let bytes = Array("apiVersion: gmemctl/v1\nkind: Guest".utf8) + [0xC3, 0x28] + Array("\n".utf8)
        let only = try #require(loadQuickly(bytes).first)
        #expect(only.summary == "file is not UTF-8 text")
        #expect(only.range?.start == SourcePosition(line: 2, column: 12))
    }

    @Test func tenMegabyteFileIsRefusedBySize() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "gmemctl-config-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("big.yaml")
        let line = "# " + String(repeating: "x", count: 1021) + "\n"
        try Data(String(repeating: line, count: 10 * 1024).utf8).write(to: file)

        let clock = ContinuousClock()
        var result: LoadResult?
        let elapsed = clock.measure { result = ManifestLoader.load(file: file.path) }
        #expect(elapsed < .seconds(1))
        let only = try #require(result?.diagnostics.first)
        #expect(result?.diagnostics.count == 1)
        #expect(only.summary == "file is too large: 10485760 bytes")
        #expect(only.detail.contains("4 MiB"))
    }

    @Test func deepNestingStopsAtTheLimit() throws {
        let text = String(repeating: "[", count: 10_000) + String(repeating: "]", count: 10_000)
        let only = try #require(loadQuickly(Array(text.utf8)).first)
        #expect(only.summary.contains("nesting is too deep"))
        #expect(only.range?.start == SourcePosition(line: 1, column: 65))
    }

    @Test func deepBlockNestingToo() throws {
        let text =
            (0..<200).map { String(repeating: " ", count: $0) + "k\($0):\n" }.joined()
            + String(repeating: " ", count: 200) + "x: 1\n"
        let only = try #require(loadQuickly(Array(text.utf8)).first)
        #expect(only.summary.contains("nesting is too deep"))
    }

    @Test func aliasBombIsRefusedAtTheFirstAlias() throws {
        var text = "a: &a [\"lol\", \"lol\", \"lol\", \"lol\", \"lol\", \"lol\", \"lol\", \"lol\", \"lol\"]\n"
        for level in 1...9 {
            let previous = level == 1 ? "a" : "l\(level - 1)"
            text +=
                "l\(level): &l\(level) [" + Array(repeating: "*\(previous)", count: 9).joined(separator: ", ") + "]\n"
        }
        let only = try #require(loadQuickly(Array(text.utf8)).first)
        #expect(only.summary == "YAML aliases are not allowed in manifests")
        #expect(only.range?.start == SourcePosition(line: 2, column: 10))
    }

    @Test func secondDocumentIsRefused() throws {
        let only = try #require(loadQuickly(Array("a: 1\n---\nb: 2\n".utf8)).first)
        #expect(only.summary.contains("one YAML document"))
        #expect(only.range?.start.line == 2)
    }

    @Test func syntaxErrorCarriesLibyamlProblemAndPosition() throws {
        let only = try #require(loadQuickly(Array("spec:\n  blocks: [a, b\n  x: 1\n".utf8)).first)
        #expect(only.summary.hasPrefix("YAML syntax error: "))
        #expect(only.range?.start == SourcePosition(line: 3, column: 4))
        #expect(only.detail.contains("line 2"))
    }

    @Test func documentThatIsNotAMappingIsASchemaError() throws {
        let result = ManifestLoader.load(yaml: "- just\n- a list\n", file: "hostile.yaml")
        #expect(result.manifest == nil)
        let only = try #require(result.diagnostics.first)
        #expect(only.summary.contains("a manifest must be a mapping, found a sequence"))
    }

    @Test func missingFileIsADiagnostic() throws {
        let result = ManifestLoader.load(file: "/nonexistent/gmemctl/manifest.yaml")
        let only = try #require(result.diagnostics.first)
        #expect(only.summary.contains("No such file or directory"))
        #expect(only.range?.file == "/nonexistent/gmemctl/manifest.yaml")
    }

    @Test func directoryIsADiagnostic() throws {
        let result = ManifestLoader.load(file: FileManager.default.temporaryDirectory.path)
        #expect(try #require(result.diagnostics.first).summary.contains("not a regular file"))
    }
}
