import Config
import Foundation
import Testing

@Suite struct ExampleManifestTests {
    static func yamlFiles(in directory: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [])
            .filter { $0.hasSuffix(".yaml") }.sorted().map { "\(directory)/\($0)" }
    }

    @Test func everyExampleIsValidWithoutWarnings() throws {
        let files = Self.yamlFiles(in: examplesDirectory)
        #expect(files.count >= 7)
        for file in files {
            let result = ManifestLoader.load(file: file)
            #expect(result.diagnostics.isEmpty, "\(file): \(result.diagnostics)")
            #expect(result.manifest != nil)
        }
    }

    @Test func sharedInPlaceIsWhatA618KernelBuilds() throws {
        let manifest = try #require(ManifestLoader.load(file: "\(examplesDirectory)/shared-in-place.yaml").manifest)
        #expect(manifest.spec.vm.type == .default)
        #expect(manifest.spec.blocks.map(\.backend.type) == [.inPlace])
        #expect(manifest.spec.layout.defaultState == .shared)
        #expect(manifest.spec.mappings.map(\.gpa) == [0, 0x1_0000_0000])
    }

    @Test func everyInvalidExampleFailsAndSaysWhyOnTop() throws {
        let files = Self.yamlFiles(in: "\(examplesDirectory)/invalid")
        #expect(files.count >= 8)
        for file in files {
            let result = ManifestLoader.load(file: file)
            #expect(!result.isValid, "\(file) should be invalid")
            let text = try String(contentsOfFile: file, encoding: .utf8)
            #expect(text.hasPrefix("# "), "\(file) should start with a comment saying what is wrong")
        }
    }

    @Test func fiveMistakesYieldExactlyFiveDiagnostics() throws {
        let file = "\(examplesDirectory)/invalid/five-mistakes.yaml"
        let result = ManifestLoader.load(file: file)
        #expect(result.diagnostics.count == 5, "\(result.diagnostics.map(\.description))")
        #expect(
            result.diagnostics.map(\.path) == [
                "spec.vm.type", "spec.blocks[0].size", "spec.mappings[1].gpa", "spec.mappings[2].block",
                "spec.lsteners",
            ])
        #expect(result.diagnostics.map { $0.range?.start.line ?? 0 } == [13, 16, 25, 26, 29])
        #expect(result.diagnostics.allSatisfy { $0.severity == .error && $0.range?.file == file })
    }
}

@Suite struct ManifestSchemaTests {
    func object(_ value: JSONValue) -> [String: JSONValue] {
        if case .object(let fields) = value { return fields }
        return [:]
    }

    /// The value at a path of object keys.
    func value(_ root: JSONValue, _ keys: String...) -> JSONValue? {
        keys.reduce(Optional(root)) { current, key in current.flatMap { object($0)[key] } }
    }

    @Test func schemaUsesTheLoaderKeysAndEnums() throws {
        let root = ManifestSchema.document
        #expect(value(root, "$schema") == .string("https://json-schema.org/draft/2020-12/schema"))
        #expect(Set(object(try #require(value(root, "properties"))).keys) == Set(ManifestKeys.root))
        #expect(
            Set(object(try #require(value(root, "properties", "spec", "properties"))).keys) == Set(ManifestKeys.spec))
        #expect(value(root, "properties", "spec", "additionalProperties") == .bool(false))
        #expect(
            value(root, "properties", "spec", "properties", "vm", "properties", "type", "enum")
                == .array(VMType.allCases.map { .string($0.rawValue) }))
        #expect(value(root, "$defs", "size", "oneOf") != nil)
    }

    @Test func schemaEncodesAsJSON() throws {
        let data = try JSONEncoder().encode(ManifestSchema.document)
        let decoded = try JSONSerialization.jsonObject(with: data) as? [String: Any]
        #expect(decoded?["title"] as? String == "gmemctl GuestMemory manifest")
    }

    @Test(arguments: ["4096", "0x1000", "2MiB", "1 GiB", "0x1_0000", "512B"])
    func sizePatternAgreesWithTheParser(text: String) throws {
        #expect(throws: Never.self) { try parseSize(text) }
        #expect(text.wholeMatch(of: try Regex(sizePattern)) != nil)
    }

    @Test(arguments: ["2MB", "1.5GiB", "-1", "0x", "GiB"])
    func sizePatternRejectsWhatTheParserRejects(text: String) throws {
        #expect(throws: SizeParseError.self) { try parseSize(text) }
        #expect(text.wholeMatch(of: try Regex(sizePattern)) == nil)
    }
}
