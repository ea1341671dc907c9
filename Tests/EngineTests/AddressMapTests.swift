import Config
import Testing

@_spi(Tuning) @testable import GmemCore
@testable import GmemSimulator

private let GiB: UInt64 = 1 << 30

/// x86-style: 8 GiB of RAM, 2 GiB below the 4 GiB hole and 6 GiB above it.
private let x86 = AddressMap(mappings: [
    Mapping(block: "ram", offset: 0, size: 2 * GiB, gpa: 0),
    Mapping(block: "ram", offset: 2 * GiB, size: 6 * GiB, gpa: 4 * GiB),
])

@Suite struct AddressMapTests {
    @Test func gpaRangeAcrossTheHoleSplitsIntoSlices() {
        let slices = x86.blockRanges(forGPA: (GiB)..<(5 * GiB))
        #expect(
            slices == [
                BlockSlice(block: "ram", offsets: GiB..<(2 * GiB), gpaRange: GiB..<(2 * GiB), mappingIndex: 0),
                BlockSlice(
                    block: "ram", offsets: (2 * GiB)..<(3 * GiB), gpaRange: (4 * GiB)..<(5 * GiB), mappingIndex: 1),
            ])
        #expect(x86.unmappedParts(ofGPA: GiB..<(5 * GiB)) == [(2 * GiB)..<(4 * GiB)])
        #expect(x86.unmappedParts(ofGPA: (20 * GiB)..<(21 * GiB)) == [(20 * GiB)..<(21 * GiB)])
        #expect(x86.blockRanges(forGPA: (2 * GiB)..<(4 * GiB)).isEmpty)
    }

    @Test func offsetsAcrossTheSplitMapToTwoWindows() {
        #expect(
            x86.gpaRanges(block: "ram", offsets: GiB..<(3 * GiB)).map(\.gpaRange)
                == [GiB..<(2 * GiB), (4 * GiB)..<(5 * GiB)])
        #expect(x86.gpaRanges(block: "other", offsets: 0..<GiB).isEmpty)
        #expect(x86.gpaRanges(block: "ram", offsets: (8 * GiB)..<(9 * GiB)).isEmpty)
    }

    @Test func offsetsVisibleTwiceListEveryWindowAscendingByGPA() {
        let map = AddressMap(mappings: [
            Mapping(block: "ram", offset: 0, size: 0x1000, gpa: 0x9000),
            Mapping(block: "ram", offset: 0, size: 0x1000, gpa: 0x1000),
            Mapping(block: "empty", offset: 0, size: 0, gpa: 0x5000),
        ])
        #expect(
            map.gpaRanges(block: "ram", offsets: 0x800..<0x1000) == [
                BlockSlice(block: "ram", offsets: 0x800..<0x1000, gpaRange: 0x1800..<0x2000, mappingIndex: 1),
                BlockSlice(block: "ram", offsets: 0x800..<0x1000, gpaRange: 0x9800..<0xA000, mappingIndex: 0),
            ])
        #expect(map.unmappedParts(ofGPA: 0..<0xB000) == [0..<0x1000, 0x2000..<0x9000, 0xA000..<0xB000])
    }

    @Test func blockLayoutsFollowTheMappings() throws {
        var gpa = Layout()
        gpa.assign(.private, to: 0..<(2 * GiB))
        gpa.assign(.private, to: (4 * GiB)..<(10 * GiB))
        gpa.assign(.shared, to: (GiB)..<(5 * GiB))  // spans the hole: only mapped parts matter
        let blocks = try x86.blockLayouts(fromGPALayout: gpa)
        #expect(
            blocks["ram"]?.runs == [
                .init(range: 0..<GiB, value: .private), .init(range: GiB..<(3 * GiB), value: .shared),
                .init(range: (3 * GiB)..<(8 * GiB), value: .private),
            ])
        var mapped = gpa
        mapped.remove((2 * GiB)..<(4 * GiB))
        #expect(x86.gpaLayout(fromBlockLayouts: blocks) == mapped)
    }

    @Test func differentStatesForOneOffsetAreAConflictNamingBothWindows() {
        let map = AddressMap(mappings: [
            Mapping(block: "ram", offset: 0, size: 0x4000, gpa: 0x0),
            Mapping(block: "ram", offset: 0x2000, size: 0x2000, gpa: 0x10000),
        ])
        var gpa = Layout.filled(0..<0x4000, with: .private)
        gpa.assign(.shared, to: 0x10000..<0x11000)
        gpa.assign(.private, to: 0x11000..<0x12000)
        #expect(
            throws: LayoutConflictError(conflicts: [
                .init(
                    block: "ram", offsets: 0x2000..<0x3000, gpaRanges: [0x2000..<0x3000, 0x10000..<0x11000],
                    values: [.private, .shared])
            ])
        ) {
            try map.blockLayouts(fromGPALayout: gpa)
        }
        // Agreeing windows are fine, and a window left unset takes the other's state.
        gpa.assign(.private, to: 0x10000..<0x11000)
        gpa.remove(0x0..<0x3000)
        let blocks = try? map.blockLayouts(fromGPALayout: gpa)
        #expect(blocks?["ram"] == Layout(runs: [(0x2000..<0x4000, .private)]))
    }
}

// MARK: - Property tests

@Suite struct AddressMapPropertyTests {
    static let universe: UInt64 = 512

    /// Random non-overlapping GPA windows over blocks a and b; block a's first window is mapped twice.
    static func randomMappings(_ rng: inout LayoutSplitMix64) -> [Mapping] {
        var mappings: [Mapping] = []
        var gpa = UInt64.random(in: 0..<16, using: &rng)
        var nextOffset: [String: UInt64] = ["a": 0, "b": 0]
        while gpa < universe / 2 {  // leave room for the second window
            let size = min(universe - gpa, UInt64.random(in: 1...48, using: &rng))
            let block = Bool.random(using: &rng) ? "a" : "b"
            let offset = nextOffset[block, default: 0] + UInt64.random(in: 0..<4, using: &rng)
            nextOffset[block] = offset + size
            mappings.append(Mapping(block: block, offset: offset, size: size, gpa: gpa))
            gpa += size + UInt64.random(in: 0..<12, using: &rng)
        }
        // Show the first mapping's offsets a second time at another GPA, if it fits.
        if let first = mappings.first, gpa + first.size <= universe {
            mappings.append(Mapping(block: first.block, offset: first.offset, size: first.size, gpa: gpa))
        }
        mappings.shuffle(using: &rng)
        return mappings
    }

    /// Reference translation by linear scan: every (block, offset) visible at `gpa`.
    static func reference(_ mappings: [Mapping], gpa: UInt64) -> (String, UInt64)? {
        mappings.first { $0.gpaRange.contains(gpa) }.map { ($0.block, gpa - $0.gpa + $0.offset) }
    }

    static func randomLayout(_ rng: inout LayoutSplitMix64, size: UInt64, edits: Int) -> Layout {
        var layout = Layout(chunkCapacity: 4)
        for _ in 0..<edits {
            let start = UInt64.random(in: 0..<size, using: &rng)
            let end = min(size, start + UInt64.random(in: 1...32, using: &rng))
            layout.assign(Bool.random(using: &rng) ? .shared : .private, to: start..<end)
        }
        return layout
    }

    @Test func translationsMatchALinearScan() {
        var rng = LayoutSplitMix64(seed: 7)
        for _ in 0..<300 {
            let mappings = Self.randomMappings(&rng)
            let map = AddressMap(mappings: mappings)
            let start = UInt64.random(in: 0..<Self.universe, using: &rng)
            let query = start..<UInt64.random(in: start...Self.universe, using: &rng)
            var seen = Set<UInt64>()
            for slice in map.blockRanges(forGPA: query) {
                #expect(
                    slice.gpaRange.count == slice.offsets.count && mappings[slice.mappingIndex].block == slice.block)
                for (gpa, offset) in zip(slice.gpaRange, slice.offsets) {
                    seen.insert(gpa)
                    #expect(Self.reference(mappings, gpa: gpa).map { $0 == (slice.block, offset) } == true)
                }
                // Back again: the offsets are visible at (at least) this GPA window.
                #expect(
                    map.gpaRanges(block: slice.block, offsets: slice.offsets).contains { $0.gpaRange == slice.gpaRange }
                )
            }
            let holes = map.unmappedParts(ofGPA: query)
            for gpa in query {
                let mapped = Self.reference(mappings, gpa: gpa) != nil
                #expect(seen.contains(gpa) == mapped)
                #expect(holes.contains { $0.contains(gpa) } == !mapped)
            }
            // Every GPA window of an offset range, checked per offset.
            let offsetStart = UInt64.random(in: 0..<Self.universe, using: &rng)
            let offsets = offsetStart..<min(Self.universe, offsetStart + UInt64.random(in: 0...64, using: &rng))
            let windows = map.gpaRanges(block: "a", offsets: offsets)
            #expect(windows.map(\.gpaRange.lowerBound) == windows.map(\.gpaRange.lowerBound).sorted())
            for offset in offsets {
                let expected = mappings.filter { $0.block == "a" && $0.offsetRange.contains(offset) }
                    .map { offset - $0.offset + $0.gpa }.sorted()
                let found = windows.filter { $0.offsets.contains(offset) }
                    .map { $0.gpaRange.lowerBound + (offset - $0.offsets.lowerBound) }
                #expect(found == expected)
            }
        }
    }

    @Test func blockToGPAToBlockRoundTrips() throws {
        var rng = LayoutSplitMix64(seed: 99)
        for _ in 0..<300 {
            let mappings = Self.randomMappings(&rng)
            let map = AddressMap(mappings: mappings)
            let blocks = [
                "a": Self.randomLayout(&rng, size: Self.universe * 2, edits: 30),
                "b": Self.randomLayout(&rng, size: Self.universe * 2, edits: 30),
            ]
            let gpa = map.gpaLayout(fromBlockLayouts: blocks)
            for address in 0..<Self.universe {
                let expected = Self.reference(mappings, gpa: address).flatMap { blocks[$0.0]?.value(at: $0.1) }
                #expect(gpa.value(at: address) == expected)
            }
            // gpa -> block: the original, limited to offsets some mapping shows.
            let back = try map.blockLayouts(fromGPALayout: gpa)
            for (name, layout) in blocks {
                var visible = Layout()
                for m in mappings where m.block == name {
                    for run in layout.runs(in: m.offsetRange) { visible.assign(run.value, to: run.range) }
                }
                #expect(back[name, default: Layout()] == visible)
            }
            // ... and gpa -> block -> gpa is the identity.
            #expect(map.gpaLayout(fromBlockLayouts: back) == gpa)
        }
    }

    @Test func conflictsAreReportedExactlyWhenTwoWindowsDisagree() {
        var rng = LayoutSplitMix64(seed: 2024)
        var conflicting = 0
        for _ in 0..<300 {
            let mappings = Self.randomMappings(&rng)
            let map = AddressMap(mappings: mappings)
            let gpa = Self.randomLayout(&rng, size: Self.universe, edits: 40)
            // Reference: offsets whose windows hold two different set values.
            var states: [String: [UInt64: Set<MemoryState>]] = [:]
            for address in 0..<Self.universe {
                if let (block, offset) = Self.reference(mappings, gpa: address), let value = gpa.value(at: address) {
                    states[block, default: [:]][offset, default: []].insert(value)
                }
            }
            var expected = Set<String>()
            for (block, offsets) in states {
                for (offset, values) in offsets where values.count > 1 { expected.insert("\(block)@\(offset)") }
            }
            do {
                _ = try map.blockLayouts(fromGPALayout: gpa)
                #expect(expected.isEmpty)
            } catch {
                conflicting += 1
                var reported = Set<String>()
                for conflict in error.conflicts {
                    #expect(conflict.gpaRanges.count >= 2 && Set(conflict.values).count == 2)
                    for offset in conflict.offsets { reported.insert("\(conflict.block)@\(offset)") }
                }
                #expect(reported == expected)
            }
        }
        #expect(conflicting > 10)
    }
}
