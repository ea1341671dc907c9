import Config
import Foundation
import Testing

/// Hostile and large inputs: the loader and validator stay linear and refuse what traps downstream.
/// Each test was a defect: quadratic loading, pairwise checks, 2^63-byte ranges, unrestricted names.
@Suite struct HostileScaleTests {
    /// Loads within `limit`: a bound that catches the quadratic defects (18 to 200 s, growing with the square of
    /// the input), not a speed figure (those are `gmemctl-bench scale`'s). Generous, since the whole suite runs
    /// in parallel with agent and CLI tests on two cores; a quiet debug build needs about a second.
    func loadWithin(
        _ text: String, _ limit: Duration = .seconds(30), sourceLocation: SourceLocation = #_sourceLocation
    ) -> LoadResult {
        let clock = ContinuousClock()
        var result: LoadResult?
        let elapsed = clock.measure { result = load(text) }
        #expect(elapsed < limit, "took \(elapsed)", sourceLocation: sourceLocation)
        return result ?? LoadResult(manifest: nil, diagnostics: [])
    }

    static let header = """
        apiVersion: gmemctl/v1
        kind: GuestMemory
        metadata: { name: big }
        spec:
          vm: { type: tdx }

        """

    /// The header, one 1 GiB in-place block mapped at 0, and an open `layout.shared` list.
    static let oneGiBSharedLayoutHeader =
        header + """
              blocks:
                - { name: ram, size: 1GiB, backend: { type: in-place } }
              mappings:
                - { block: ram, offset: 0, size: 1GiB, gpa: 0 }
              layout:
                shared:

            """

    @Test func fortyThousandItemFlowSequenceLoadsInLinearTime() {
        // One 80 KB line: `[0, 0, ...]` as the value of an unknown key.
        let text = "a: [" + Array(repeating: "0", count: 40_000).joined(separator: ",") + "]\n"
        let result = loadWithin(text)
        #expect(result.diagnostics.contains { $0.summary.contains("unknown key `a`") })
        #expect(!result.diagnostics.contains { $0.summary.contains("too many nodes") })
    }

    @Test func nodeLimitStopsInTimeProportionalToTheInput() throws {
        // 2 bytes a node: 1.1 million nodes fit in 2.2 MB, under the byte limit.
        let text = "[" + Array(repeating: "0", count: 1_100_000).joined(separator: ",") + "]"
        let result = loadWithin(text)
        let only = try #require(result.diagnostics.first)
        #expect(result.diagnostics.count == 1)
        #expect(only.summary == "document has too many nodes (more than 1000000)")
    }

    @Test func tenThousandInvalidItemsAreEachReportedQuickly() {
        var text =
            Self.header + "  blocks:\n    - { name: ram, size: 64GiB, backend: { type: in-place } }\n  mappings:\n"
        for index in 0..<10_000 {
            text += "    - { block: ram, offset: \(index * 8192), size: bad, gpa: \(index * 8192) }\n"
        }
        let result = loadWithin(text)
        // The first 1,000 are listed, the last diagnostic stands for the other 9,000, and the count is true.
        #expect(result.diagnostics.count == 1_001)
        #expect(result.diagnostics.filter { $0.summary.hasPrefix("invalid mapping size") }.count == 1_000)
        #expect(result.diagnostics.last?.summary == "9000 more problems not shown (9000 errors, 0 warnings)")
        #expect(result.diagnostics.errorCount == 10_000)
    }

    /// 4 MiB of unknown top-level keys (349,000 problems, each once costing a "did you mean" against every
    /// key by Character arrays): refused in time, 1,000 listed and one diagnostic standing for the rest.
    @Test func fourMebibytesOfUnknownKeysAreCappedAndCounted() throws {
        var text = "apiVersion: gmemctl/v1\nkind: GuestMemory\nmetadata: { name: big }\n"
        var keys = 0
        while text.utf8.count < (4 << 20) - 64 {
            text += "k\(String(keys).leftPadded(7)): 1\n"
            keys += 1
        }
        // Before, 21 s in a release build; now under 1 s there, and a few seconds in a debug one.
        let result = loadWithin(text, .seconds(30))
        #expect(result.diagnostics.count == 1_001)
        // The first problems found, in source order; past 1,000 they are counted, not built.
        #expect(result.diagnostics[0].summary == "unknown key `k0000000`")
        #expect(result.diagnostics[0].range?.start == SourcePosition(line: 4, column: 1))
        #expect(result.diagnostics[999].summary == "unknown key `k0000999`")
        let last = try #require(result.diagnostics.last)
        // Every other key and the missing `spec` are counted.
        let unlisted = keys + 1 - 1_000
        #expect(last.summary == "\(unlisted) more problems not shown (\(unlisted) errors, 0 warnings)")
        #expect(result.diagnostics.errorCount == keys + 1)
    }

    /// 32,764 mappings (KVM's memslot limit), with one guest-range overlap among them: exactly that mistake.
    @Test func maximalMappingManifestFindsExactlyThePairwiseOverlap() throws {
        let count = 32_764
        var text =
            Self.header + "  blocks:\n    - { name: ram, size: 1GiB, backend: { type: in-place } }\n  mappings:\n"
        for index in 0..<count {
            // 4 KiB at 8 KiB strides; mapping 30,000 is placed on mapping 1,234's guest range.
            let gpa = index == 30_000 ? 1_234 * 8192 : index * 8192
            text += "    - { block: ram, offset: \(index * 8192), size: 4KiB, gpa: \(gpa) }\n"
        }
        let result = loadWithin(text)
        let only = try #require(result.diagnostics.first, "\(result.diagnostics.prefix(3))")
        #expect(result.diagnostics.count == 1, "\(result.diagnostics.prefix(3))")
        #expect(only.path == "spec.mappings[30000].gpa")
        #expect(only.summary.contains("overlaps spec.mappings[1234]"))
        #expect(only.range?.start.line == 9 + 30_000)
    }

    @Test func hundredThousandLayoutRangesLoad() {
        var text =
            Self.oneGiBSharedLayoutHeader
        for index in 0..<100_000 { text += "      - { gpa: \(index * 8192), size: 4KiB }\n" }
        let result = loadWithin(text)
        #expect(result.isValid, "\(result.diagnostics.prefix(3))")
        #expect(result.manifest?.spec.layout.shared.count == 100_000)
    }

    @Test func tenThousandSharedAgainstTenThousandPrivateIsASweep() {
        var text =
            Self.oneGiBSharedLayoutHeader
        for index in 0..<10_000 {
            text += "      - \"\(hex(UInt64(index) * 16384))-\(hex(UInt64(index) * 16384 + 4095))\"\n"
        }
        text += "    private:\n"
        for index in 0..<10_000 {
            text += "      - \"\(hex(UInt64(index) * 16384 + 8192))-\(hex(UInt64(index) * 16384 + 12287))\"\n"
        }
        // One private range laid over shared range 777.
        text += "      - \"\(hex(777 * 16384))-\(hex(777 * 16384 + 4095))\"\n"
        let result = loadWithin(text)
        #expect(result.diagnostics.count == 1, "\(result.diagnostics.prefix(3))")
        #expect(result.diagnostics.first?.summary.contains("both private and shared (spec.layout.shared[777])") == true)
    }

    func hex(_ value: UInt64) -> String { "0x" + String(value, radix: 16) }

    @Test func rangesPastTheGuestPhysicalLimitAreRefusedNamingIt() {
        let result = load(
            Self.header + """
                  blocks:
                    - { name: ram, size: 0x8000000000000000, backend: { type: in-place } }
                    - { name: rom, size: 1GiB, backend: { type: in-place } }
                  mappings:
                    - { block: ram, offset: 0, size: 0x8000000000000000, gpa: 0 }
                    - { block: rom, offset: 0, size: 1GiB, gpa: 0x1FFFFFFFC0000001 }
                  layout:
                    shared:
                      - { gpa: 0x100000000000000, size: 0x200000000000000 }
                """)
        #expect(!result.isValid)
        expectDiagnostic(
            result, path: "spec.blocks[0].size", line: 7, column: 26, summary: "larger than 128 PiB (2^57)")
        expectDiagnostic(
            result, path: "spec.mappings[0].size", line: 10, column: 38,
            summary: "past the 128 PiB (2^57) guest-physical limit")
        expectDiagnostic(
            result, path: "spec.layout.shared[0].size", line: 14, column: 41,
            summary: "past the 128 PiB (2^57) guest-physical limit")
        #expect(result.diagnostics.contains { $0.path == "spec.mappings[1].size" && $0.summary.contains("2^57") })
    }

    @Test(arguments: [
        "\\e[31mred", "a\\rb", "line\\nbreak", "nul\\0", "tab\\tname", "sp ace", "a/b", "-lead",
        String(repeating: "x", count: 64),
    ])
    func namesOutsideTheRuleAreRefusedNamingTheCharacter(name: String) throws {
        let result = load(
            Self.header + """
                  blocks:
                    - { name: "\(name)", size: 1GiB, backend: { type: in-place } }
                  mappings:
                    - { block: "\(name)", offset: 0, size: 1GiB, gpa: 0 }
                  listeners:
                    - { name: "\(name)" }
                """)
        #expect(!result.isValid)
        let block = try #require(result.diagnostics.first { $0.path == "spec.blocks[0].name" })
        #expect(block.summary.hasPrefix("invalid block name"))
        #expect(
            result.diagnostics.contains {
                $0.path == "spec.listeners[0].name" && $0.summary.hasPrefix("invalid listener name")
            })
        // Whatever is printed carries no control character.
        for diagnostic in result.diagnostics {
            #expect(!diagnostic.summary.unicodeScalars.contains { $0.value < 0x20 }, "\(diagnostic.summary)")
        }
    }

    @Test func controlCharacterIsNamed() {
        #expect(NameRule.problem("a\u{1B}b") == "character U+001B (a control character) at position 2 is not allowed")
        #expect(NameRule.problem("ram/1") == "character `/` (U+002F) at position 4 is not allowed")
        #expect(NameRule.problem("vfio0") == nil)
        #expect(NameRule.problem("guest_memory.v2-x") == nil)
    }

    @Test func guestNameIsChecked() {
        let result = load(validManifest.replacingOccurrences(of: "name: base", with: "name: \"ba\\x00se\""))
        expectDiagnostic(result, path: "metadata.name", line: 4, column: 9, summary: "U+0000 (a control character)")
    }

    @Test func crlfManifestKeepsPositions() {
        let text = (Self.header + "  blocks:\n    - { name: ram, size: 1000, backend: { type: in-place } }\n")
            .replacingOccurrences(of: "\n", with: "\r\n")
        let result = load(text)
        expectDiagnostic(result, path: "spec.blocks[0].size", line: 7, column: 26, summary: "not aligned")
    }
}

extension String {
    /// Zero-padded on the left to `width` characters.
    fileprivate func leftPadded(_ width: Int) -> String { String(repeating: "0", count: max(0, width - count)) + self }
}
