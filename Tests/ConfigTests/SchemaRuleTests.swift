import Config
import Testing

/// Schema checks of the loader: types, keys, required fields, enums, apiVersion/kind.
@Suite struct SchemaRuleTests {
    @Test func validManifestLoadsIntoTheModel() throws {
        let result = load(validManifest)
        #expect(result.diagnostics.isEmpty, "\(result.diagnostics)")
        let manifest = try #require(result.manifest)
        #expect(manifest.metadata.name == "base")
        #expect(manifest.spec.vm.type == .tdx)
        #expect(manifest.spec.blocks == [Block(name: "ram", size: 4 << 30, backend: Backend(type: .inPlace))])
        #expect(manifest.spec.mappings[1] == Mapping(block: "ram", offset: 2 << 30, size: 2 << 30, gpa: 1 << 32))
        #expect(manifest.spec.layout.defaultState == .private)
        #expect(manifest.sourceMap.ranges["spec.mappings[1].gpa"]?.start == SourcePosition(line: 11, column: 52))
        #expect(manifest.sourceMap.ranges["spec.mappings[1].gpa"]?.end == SourcePosition(line: 11, column: 63))
        #expect(manifest.sourceMap.ranges["spec.blocks[0]"]?.start == SourcePosition(line: 8, column: 7))
    }

    @Test func unknownKeySuggestsNearest() {
        let result = load(validManifest.replacingOccurrences(of: "  mappings:", with: "  mapings:"))
        expectDiagnostic(
            result, path: "spec.mapings", line: 9, column: 3, summary: "unknown key `mapings`; did you mean `mappings`?"
        )
        // The typo is reported once: no "block not mapped" consequence.
        #expect(result.diagnostics.count == 1, "\(result.diagnostics)")
    }

    @Test func unknownKeyWithoutNearMatchListsKeys() {
        let result = load(validManifest + "\n    colour: blue\n")
        let found = expectDiagnostic(
            result, path: "spec.layout.colour", line: 14, column: 5, summary: "unknown key `colour`")
        #expect(found?.detail == "spec.layout accepts: default, shared, private")
    }

    @Test func duplicateKey() {
        let result = load(validManifest.replacingOccurrences(of: "  name: base", with: "  name: base\n  name: again"))
        expectDiagnostic(result, path: "metadata.name", line: 5, column: 3, summary: "duplicate key `name`")
    }

    @Test func missingRequiredFields() {
        let yaml = """
            apiVersion: gmemctl/v1
            kind: GuestMemory
            metadata: {}
            spec:
              blocks:
                - { name: ram, backend: { type: in-place } }
              mappings:
                - { block: ram, size: 4KiB }
            """
        let result = load(yaml)
        expectDiagnostic(result, path: "metadata.name", line: 3, column: 11, summary: "missing required field `name`")
        expectDiagnostic(
            result, path: "spec.blocks[0].size", line: 6, column: 7, summary: "missing required field `size`")
        expectDiagnostic(
            result, path: "spec.mappings[0].gpa", line: 8, column: 7, summary: "missing required field `gpa`")
        #expect(result.diagnostics.count == 3, "\(result.diagnostics)")
        #expect(result.manifest != nil)
    }

    @Test func missingTopLevelSections() {
        let result = load("apiVersion: gmemctl/v1\nkind: GuestMemory\n")
        expectDiagnostic(result, path: "metadata", line: 1, column: 1, summary: "missing required field `metadata`")
        expectDiagnostic(result, path: "spec", line: 1, column: 1, summary: "missing required field `spec`")
    }

    @Test func unsupportedApiVersionAndKind() {
        let yaml = validManifest.replacingOccurrences(of: "gmemctl/v1", with: "gmemctl/v2")
            .replacingOccurrences(of: "kind: GuestMemory", with: "kind: GuestMemroy")
        let result = load(yaml)
        let api = expectDiagnostic(
            result, path: "apiVersion", line: 1, column: 13, summary: "unsupported apiVersion `gmemctl/v2`")
        #expect(api?.detail.contains("gmemctl/v1") == true)
        expectDiagnostic(result, path: "kind", line: 2, column: 7, summary: "unsupported kind `GuestMemroy`")
        #expect(result.diagnostics.count == 2)
    }

    @Test func enumValuesListTheValidOnes() {
        let yaml = validManifest.replacingOccurrences(of: "type: tdx", with: "type: snp")
            .replacingOccurrences(of: "type: in-place", with: "type: inplace")
            .replacingOccurrences(of: "default: private", with: "default: secret")
        let result = load(yaml)
        let vm = expectDiagnostic(
            result, path: "spec.vm.type", line: 6, column: 15, summary: "unsupported VM type `snp`")
        #expect(vm?.detail.contains("default, sw-protected, sev-snp, tdx") == true)
        let backend = expectDiagnostic(
            result, path: "spec.blocks[0].backend.type", line: 8, column: 49,
            summary: "unsupported backend type `inplace`")
        #expect(backend?.detail.hasPrefix("did you mean `in-place`?") == true)
        let layout = expectDiagnostic(
            result, path: "spec.layout.default", line: 13, column: 14, summary: "unsupported default state `secret`")
        #expect(layout?.detail.contains("private, shared") == true)
        #expect(result.diagnostics.count == 3, "\(result.diagnostics)")
    }

    @Test func wrongTypes() {
        let yaml = """
            apiVersion: gmemctl/v1
            kind: GuestMemory
            metadata: { name: [a] }
            spec:
              blocks: { name: ram }
              mappings: []
              layout: private
              listeners: vfio0
            """
        let result = load(yaml)
        expectDiagnostic(
            result, path: "metadata.name", line: 3, column: 19,
            summary: "metadata.name must be a string, found a sequence")
        expectDiagnostic(
            result, path: "spec.blocks", line: 5, column: 11, summary: "spec.blocks must be a list, found a mapping")
        expectDiagnostic(
            result, path: "spec.layout", line: 7, column: 11,
            summary: "spec.layout must be a mapping, found the string \"private\"")
        expectDiagnostic(result, path: "spec.listeners", line: 8, column: 14, summary: "spec.listeners must be a list")
        #expect(result.diagnostics.count == 4, "\(result.diagnostics)")
    }

    @Test func badSizeIsLocatedAtTheValue() {
        let result = load(validManifest.replacingOccurrences(of: "size: 4GiB", with: "size: 4GB"))
        let found = expectDiagnostic(
            result, path: "spec.blocks[0].size", line: 8, column: 26, summary: "unknown unit \"GB\"")
        #expect(found?.detail.contains("did you mean 4GiB?") == true)
        // The block is unreadable, so no consequence (mapping outside block) is reported.
        #expect(result.diagnostics.count == 1, "\(result.diagnostics)")
    }

    @Test func booleansAreTyped() {
        let yaml = validManifest.replacingOccurrences(
            of: "backend: { type: in-place }",
            with: "backend: { type: legacy, shared: { source: memfd, prealloc: \"yes\" } }")
        let result = load(yaml)
        expectDiagnostic(
            result, path: "spec.blocks[0].backend.shared.prealloc", line: 8, column: 92,
            summary: "prealloc must be true or false, found the string \"yes\"")
    }

    @Test func quotedNumbersStayStringsForNamesAndParseAsSizes() throws {
        let yaml = validManifest.replacingOccurrences(of: "name: base", with: "name: \"0x10\"")
            .replacingOccurrences(of: "gpa: 0x100000000", with: "gpa: \"0x100000000\"")
        let result = load(yaml)
        #expect(result.isValid, "\(result.diagnostics)")
        let manifest = try #require(result.manifest)
        #expect(manifest.metadata.name == "0x10")
        #expect(manifest.spec.mappings[1].gpa == 1 << 32)
    }

    @Test func rangesAcceptBothSpellings() throws {
        let yaml =
            validManifest + "\n    shared:\n      - \"0xA0000-0xFFFFF\"\n      - { gpa: 0xA0000, size: 384KiB }\n"
        let result = load(yaml)
        #expect(result.isValid, "\(result.diagnostics)")
        let shared = try #require(result.manifest?.spec.layout.shared)
        #expect(shared == [GuestRange(gpa: 0xA0000, size: 384 << 10), GuestRange(gpa: 0xA0000, size: 384 << 10)])
    }

    @Test func badRangeString() {
        let yaml = validManifest + "\n    shared:\n      - \"0xFFFFF-0xA0000\"\n"
        let result = load(yaml)
        expectDiagnostic(result, path: "spec.layout.shared[0]", line: 15, column: 9, summary: "ends before it starts")
        #expect(result.diagnostics.count == 1)
    }

    @Test func layoutDefaultFollowsVMTypeWhenOmitted() throws {
        let privateVM = try #require(
            load(validManifest.replacingOccurrences(of: "  layout:\n    default: private", with: "")).manifest)
        #expect(privateVM.spec.layout.defaultState == .private)
        let plain = load(
            validManifest.replacingOccurrences(of: "  layout:\n    default: private", with: "")
                .replacingOccurrences(of: "type: tdx", with: "type: default"))
        #expect(plain.isValid, "\(plain.diagnostics)")
        #expect(plain.manifest?.spec.layout.defaultState == .shared)
    }
}
