import Config
import Testing

/// Semantic rules: each reported with file, line, column, field path and what would be valid.
@Suite struct SemanticRuleTests {
    /// A manifest with `blocks`, `mappings` and `layout` lines spliced in (line 7 onwards).
    func manifest(vm: String = "tdx", blocks: String, mappings: String, layout: String = "") -> String {
        """
        apiVersion: gmemctl/v1
        kind: GuestMemory
        metadata: { name: t }
        spec:
          vm: { type: \(vm) }
          blocks:
        \(blocks)
          mappings:
        \(mappings)
          layout:
            default: \(vm == "default" ? "shared" : "private")
        \(layout)
        """
    }

    @Test func alignmentToPageSize() {
        let result = load(
            manifest(
                blocks: "    - { name: ram, size: 0x100800, backend: { type: in-place } }",  // line 7
                mappings: "    - { block: ram, offset: 0x800, size: 0xFF800, gpa: 0x1800 }",  // line 9
                layout: "    shared:\n      - { gpa: 0x2000, size: 0x10 }"))  // line 13
        let block = expectDiagnostic(
            result, path: "spec.blocks[0].size", line: 7, column: 26,
            summary: "block size 0x100800 is not aligned to the 4 KiB page size")
        #expect(block?.detail == "use a multiple of 4 KiB (0x1000), e.g. 0x100000 or 0x101000")
        expectDiagnostic(
            result, path: "spec.mappings[0].offset", line: 9, column: 29, summary: "offset 0x800 is not aligned")
        expectDiagnostic(
            result, path: "spec.mappings[0].size", line: 9, column: 42, summary: "mapping size 0xFF800 is not aligned")
        expectDiagnostic(
            result, path: "spec.mappings[0].gpa", line: 9, column: 56,
            summary: "guest physical address 0x1800 is not aligned")
        expectDiagnostic(
            result, path: "spec.layout.shared[0].size", line: 13, column: 30, summary: "range size 0x10 is not aligned")
        #expect(result.diagnostics.count == 5, "\(result.diagnostics)")
    }

    @Test func pageSizeIsAParameter() {
        let yaml = manifest(
            blocks: "    - { name: ram, size: 64KiB, backend: { type: in-place } }",
            mappings: "    - { block: ram, offset: 0, size: 64KiB, gpa: 0x4000 }")
        #expect(load(yaml).isValid)
        let result = load(yaml, pageSize: 64 << 10)
        expectDiagnostic(
            result, path: "spec.mappings[0].gpa", line: 9, column: 50, summary: "is not aligned to the 64 KiB page size"
        )
    }

    @Test func hugetlbNeedsAPowerOfTwoPageSizeAndAlignment() {
        let result = load(
            manifest(
                vm: "sev-snp",
                blocks: """
                        - { name: a, size: 3MiB, backend: { type: legacy, shared: { source: hugetlb, pageSize: 2MiB } } }
                        - { name: b, size: 2MiB, backend: { type: legacy, shared: { source: hugetlb } } }
                        - { name: c, size: 3MiB, backend: { type: legacy, shared: { source: hugetlb, pageSize: 3MiB } } }
                    """,
                mappings: """
                        - { block: a, offset: 1MiB, size: 1MiB, gpa: 0 }
                        - { block: b, offset: 0, size: 2MiB, gpa: 0x40000000 }
                        - { block: c, offset: 0, size: 3MiB, gpa: 0x80000000 }
                    """))
        expectDiagnostic(
            result, path: "spec.blocks[0].size", line: 7, column: 24,
            summary: "not aligned to the 2 MiB hugetlb page size")
        expectDiagnostic(
            result, path: "spec.blocks[1].backend.shared", line: 8, column: 63,
            summary: "hugetlb backing of block `b` needs a pageSize")
        expectDiagnostic(
            result, path: "spec.blocks[2].backend.shared.pageSize", line: 9, column: 92,
            summary: "is not a power of two")
        expectDiagnostic(
            result, path: "spec.mappings[0].offset", line: 11, column: 27,
            summary: "offset 0x100000 is not aligned to the 2 MiB hugetlb page size of block `a`")
        expectDiagnostic(
            result, path: "spec.mappings[0].size", line: 11, column: 39,
            summary: "mapping size 0x100000 is not aligned to the 2 MiB hugetlb page size")
        #expect(result.diagnostics.count == 5, "\(result.diagnostics)")
    }

    @Test func mappingOutsideItsBlock() {
        let result = load(
            manifest(
                blocks: "    - { name: ram, size: 1GiB, backend: { type: in-place } }",
                mappings: """
                        - { block: ram, offset: 512MiB, size: 1GiB, gpa: 0 }
                        - { block: ram, offset: 2GiB, size: 4KiB, gpa: 0x80000000 }
                    """))
        let exceeds = expectDiagnostic(
            result, path: "spec.mappings[0].size", line: 9, column: 43, summary: "mapping exceeds its block `ram`")
        #expect(exceeds?.detail.contains("at most 512 MiB") == true)
        expectDiagnostic(
            result, path: "spec.mappings[1].offset", line: 10, column: 29,
            summary: "offset 2 GiB is outside block `ram`")
        #expect(result.diagnostics.count == 2, "\(result.diagnostics)")
    }

    @Test func blockOffsetMappedTwiceAndGuestOverlap() {
        let result = load(
            manifest(
                blocks: "    - { name: ram, size: 1GiB, backend: { type: in-place } }",
                mappings: """
                        - { block: ram, offset: 0, size: 512MiB, gpa: 0 }
                        - { block: ram, offset: 256MiB, size: 256MiB, gpa: 0x40000000 }
                        - { block: ram, offset: 512MiB, size: 512MiB, gpa: 0x10000000 }
                    """))
        let twice = expectDiagnostic(
            result, path: "spec.mappings[1].offset", line: 10, column: 29,
            summary: "offsets 0x10000000-0x1FFFFFFF of block `ram` are already mapped by spec.mappings[0]")
        #expect(twice?.detail.contains("spec.mappings[0], line 9") == true)
        expectDiagnostic(
            result, path: "spec.mappings[2].gpa", line: 11, column: 56,
            summary: "guest range 0x10000000-0x2FFFFFFF overlaps spec.mappings[0] at 0x10000000-0x1FFFFFFF")
        #expect(result.diagnostics.count == 2, "\(result.diagnostics)")
    }

    @Test func layoutRangesOutsideMappedMemoryNameTheHole() {
        let result = load(
            manifest(
                blocks: "    - { name: ram, size: 4GiB, backend: { type: in-place } }",
                mappings: """
                        - { block: ram, offset: 0, size: 2GiB, gpa: 0x100000 }
                        - { block: ram, offset: 2GiB, size: 2GiB, gpa: 0x100000000 }
                    """,
                layout: """
                        shared:
                          - "0x7FF00000-0x100000FFF"
                          - "0x0-0xFFFFF"
                        private:
                          - { gpa: 0x180000000, size: 4KiB }
                          - { gpa: 0x300000000, size: 4KiB }
                    """))
        let hole = expectDiagnostic(
            result, path: "spec.layout.shared[0]", line: 14, column: 9,
            summary: "crosses the unmapped hole 0x80100000-0xFFFFFFFF between spec.mappings[0] and spec.mappings[1]")
        #expect(hole?.detail.contains("split the range at the hole") == true)
        expectDiagnostic(
            result, path: "spec.layout.shared[1]", line: 15, column: 9,
            summary: "starts below mapped memory (spec.mappings[0] starts at 0x100000)")
        expectDiagnostic(
            result, path: "spec.layout.private[0]", line: 17, column: 9,
            summary: "runs past mapped memory at 0x180000000 (the end of spec.mappings[1])")
        expectDiagnostic(
            result, path: "spec.layout.private[1]", line: 18, column: 9,
            summary: "runs past mapped memory at 0x180000000")
        #expect(result.diagnostics.count == 4, "\(result.diagnostics)")
    }

    @Test func adjacentMappingsFormOneMappedRegion() {
        let result = load(
            manifest(
                blocks: "    - { name: ram, size: 8MiB, backend: { type: in-place } }",
                mappings: """
                        - { block: ram, offset: 4MiB, size: 4MiB, gpa: 4MiB }
                        - { block: ram, offset: 0, size: 4MiB, gpa: 0 }
                    """,
                layout: "    shared:\n      - \"0x0-0x7FFFFF\""))
        #expect(result.isValid, "\(result.diagnostics)")
        #expect(result.diagnostics.isEmpty)
    }

    @Test func duplicateNames() {
        let result = load(
            manifest(
                blocks: """
                        - { name: ram, size: 4KiB, backend: { type: in-place } }
                        - { name: ram, size: 4KiB, backend: { type: in-place } }
                    """,
                mappings: "    - { block: ram, size: 4KiB, gpa: 0 }",
                layout: "  listeners:\n    - name: vfio0\n    - name: vfio0"))
        let block = expectDiagnostic(
            result, path: "spec.blocks[1].name", line: 8, column: 15, summary: "duplicate block name `ram`")
        #expect(block?.detail.contains("spec.blocks[0], line 7") == true)
        expectDiagnostic(
            result, path: "spec.listeners[1].name", line: 15, column: 13, summary: "duplicate listener name `vfio0`")
        #expect(result.diagnostics.count == 2, "\(result.diagnostics)")
    }

    @Test func unknownBlockSuggestsNearestName() {
        let result = load(
            manifest(
                blocks:
                    "    - { name: ram, size: 4KiB, backend: { type: in-place } }\n    - { name: rom, size: 4KiB, backend: { type: in-place } }",
                mappings: "    - { block: ram, size: 4KiB, gpa: 0 }\n    - { block: romm, size: 4KiB, gpa: 0x1000 }"))
        let found = expectDiagnostic(
            result, path: "spec.mappings[1].block", line: 11, column: 16,
            summary: "unknown block `romm`; did you mean `rom`?")
        #expect(found?.detail == "defined blocks: ram, rom")
        // rom is not mapped by anything readable: a warning, not an error.
        expectDiagnostic(
            result, path: "spec.blocks[1].name", line: 8, column: 15, severity: .warning,
            summary: "block `rom` is not mapped")
        #expect(result.diagnostics.count == 2, "\(result.diagnostics)")
    }

    @Test func rangeBothSharedAndPrivate() {
        let result = load(
            manifest(
                blocks: "    - { name: ram, size: 1GiB, backend: { type: in-place } }",
                mappings: "    - { block: ram, size: 1GiB, gpa: 0 }",
                layout: "    shared: [\"0x0-0x1FFFFF\"]\n    private: [{ gpa: 0x100000, size: 2MiB }]"))
        let found = expectDiagnostic(
            result, path: "spec.layout.private[0]", line: 13, column: 15,
            summary: "range 0x100000-0x1FFFFF is listed both private and shared (spec.layout.shared[0])")
        #expect(found?.detail.contains("line 12") == true)
        #expect(result.diagnostics.count == 1, "\(result.diagnostics)")
    }

    @Test func zeroSizes() {
        let result = load(
            manifest(
                blocks:
                    "    - { name: ram, size: 0, backend: { type: in-place } }\n    - { name: rom, size: 4KiB, backend: { type: in-place } }",
                mappings: "    - { block: rom, size: 0, gpa: 0 }\n    - { block: rom, size: 4KiB, gpa: 0 }",
                layout: "    shared: [{ gpa: 0, size: 0 }]"))
        expectDiagnostic(result, path: "spec.blocks[0].size", line: 7, column: 26, summary: "block `ram` has size 0")
        expectDiagnostic(result, path: "spec.mappings[0].size", line: 10, column: 27, summary: "mapping size is 0")
        expectDiagnostic(
            result, path: "spec.layout.shared[0].size", line: 14, column: 30, summary: "layout range at 0x0 has size 0")
        expectDiagnostic(
            result, path: "spec.blocks[0].name", line: 7, column: 15, severity: .warning, summary: "not mapped")
        #expect(result.diagnostics.count == 4, "\(result.diagnostics)")
    }

    @Test func privateLayoutOnDefaultVMNamesTheVMTypeAsFix() {
        let yaml = manifest(
            vm: "default",
            blocks: "    - { name: ram, size: 4MiB, backend: { type: in-place } }",
            mappings: "    - { block: ram, size: 4MiB, gpa: 0 }",
            layout: "    private: [\"0x0-0xFFFFF\"]"
        )
        .replacingOccurrences(of: "default: shared", with: "default: private")
        let result = load(yaml)
        let layout = expectDiagnostic(
            result, path: "spec.layout.default", line: 11, column: 14, summary: "private layout on a `default` VM")
        #expect(
            layout?.detail.hasPrefix("a default VM never has private memory; use vm.type sw-protected, sev-snp or tdx")
                == true)
        let range = expectDiagnostic(
            result, path: "spec.layout.private[0]", line: 12, column: 15,
            summary: "private range 0x0-0xFFFFF on a `default` VM")
        #expect(range?.detail == "a default VM never has private memory; use vm.type sw-protected, sev-snp or tdx")
        #expect(result.diagnostics.count == 2, "\(result.diagnostics)")
    }

    @Test func sharedSettingsOnInPlaceAreAWarning() {
        let result = load(
            manifest(
                blocks: "    - { name: ram, size: 4MiB, backend: { type: in-place, shared: { source: memfd } } }",
                mappings: "    - { block: ram, size: 4MiB, gpa: 0 }"))
        expectDiagnostic(
            result, path: "spec.blocks[0].backend.shared", line: 7, column: 67, severity: .warning,
            summary: "`shared` settings are ignored for an in-place block")
        #expect(result.isValid)
        #expect(result.diagnostics.count == 1)
    }

    @Test func diagnosticsComeInSourceOrder() {
        let result = load(
            manifest(
                blocks: "    - { name: ram, size: 0x1001, backend: { type: in-place } }",
                mappings: "    - { block: rma, size: 4KiB, gpa: 0x10 }"))
        let positions = result.diagnostics.compactMap(\.range?.start)
        #expect(positions.count == result.diagnostics.count)
        #expect(positions == positions.sorted())
        // Two misalignments, an unknown block, an unmapped block.
        #expect(result.diagnostics.count == 4, "\(result.diagnostics)")
    }

    @Test func publicValidateWorksOnAProgrammaticManifest() {
        let manifest = Manifest(
            metadata: Metadata(name: "m"),
            spec: Spec(
                vm: VMSpec(type: .default),
                blocks: [Block(name: "ram", size: 1 << 20, backend: Backend(type: .inPlace))],
                mappings: [Mapping(block: "ram", offset: 0, size: 2 << 20, gpa: 0)],
                layout: LayoutSpec(defaultState: .private)))
        let diagnostics = validate(manifest)
        #expect(diagnostics.map(\.path) == ["spec.mappings[0].size", "spec.layout.default"])
        #expect(manifest.validate(pageSize: 4096) == diagnostics)
    }
}
