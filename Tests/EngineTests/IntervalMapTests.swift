import Foundation
import Testing

@_spi(Tuning) @testable import GmemCore
@testable import GmemSimulator

/// Deterministic random numbers for property tests (SplitMix64, fixed seeds).
struct LayoutSplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

typealias IntMap = IntervalMap<Int>

/// Checks the structural invariants: runs non-empty, ascending, maximal; chunks non-empty, within
/// capacity, with correct start keys and a correct total count.
func expectWellFormed<V>(_ map: IntervalMap<V>, sourceLocation: SourceLocation = #_sourceLocation) {
    let runs = map.runs
    #expect(runs.count == map.runCount, sourceLocation: sourceLocation)
    for run in runs { #expect(!run.range.isEmpty, "empty run \(run)", sourceLocation: sourceLocation) }
    for (a, b) in zip(runs, runs.dropFirst()) {
        #expect(a.range.upperBound <= b.range.lowerBound, "unsorted \(a) \(b)", sourceLocation: sourceLocation)
        #expect(
            !(a.range.upperBound == b.range.lowerBound && a.value == b.value),
            "not maximal \(a) \(b)", sourceLocation: sourceLocation)
    }
    #expect(map.chunks.count == map.chunkStarts.count, sourceLocation: sourceLocation)
    for (chunk, start) in zip(map.chunks, map.chunkStarts) {
        #expect(!chunk.isEmpty && chunk.count <= map.chunkCapacity, sourceLocation: sourceLocation)
        #expect(chunk.first?.range.lowerBound == start, sourceLocation: sourceLocation)
    }
    #expect(map.chunks.reduce(0) { $0 + $1.count } == map.runCount, sourceLocation: sourceLocation)
}

// MARK: - Unit tests

@Suite struct IntervalMapTests {
    @Test func emptyMapHasNothing() {
        let map = IntMap()
        #expect(map.isEmpty && map.runCount == 0 && map.runs.isEmpty)
        #expect(map.value(at: 0) == nil && map.value(at: .max) == nil)
        #expect(map.gaps(in: 5..<9) == [5..<9])
        #expect(!map.isUniform(0..<1, value: 1))
        #expect(map.isUniform(3..<3, value: 1))
        #expect(IntMap.transitions(from: map, to: IntMap()).isEmpty)
    }

    @Test func assignSetsHalfOpenRange() {
        var map = IntMap()
        map.assign(7, to: 10..<20)
        #expect(map.value(at: 9) == nil)
        #expect(map.value(at: 10) == 7 && map.value(at: 19) == 7)
        #expect(map.value(at: 20) == nil)
        #expect(map.runs == [.init(range: 10..<20, value: 7)])
    }

    @Test func emptyRangesAreNoOps() {
        var map = IntMap.filled(0..<10, with: 1)
        map.assign(2, to: 5..<5)
        map.remove(3..<3)
        #expect(map.runs == [.init(range: 0..<10, value: 1)])
        #expect(IntMap.filled(4..<4, with: 1).isEmpty)
    }

    @Test func touchingRangesWithEqualValuesMerge() {
        var map = IntMap()
        map.assign(1, to: 0..<10)
        map.assign(1, to: 20..<30)
        map.assign(1, to: 10..<20)
        #expect(map.runs == [.init(range: 0..<30, value: 1)])
    }

    @Test func touchingRangesWithDifferentValuesStaySeparate() {
        var map = IntMap()
        map.assign(1, to: 0..<10)
        map.assign(2, to: 10..<20)
        #expect(map.runs == [.init(range: 0..<10, value: 1), .init(range: 10..<20, value: 2)])
    }

    @Test func overwriteInsideARunSplitsItIntoThree() {
        var map = IntMap.filled(0..<100, with: 1)
        map.assign(2, to: 40..<60)
        #expect(
            map.runs == [
                .init(range: 0..<40, value: 1), .init(range: 40..<60, value: 2),
                .init(range: 60..<100, value: 1),
            ])
        // Writing the old value back restores one run.
        map.assign(1, to: 40..<60)
        #expect(map.runs == [.init(range: 0..<100, value: 1)])
    }

    @Test func overwriteAcrossRunsReplacesThemAndMergesNeighbours() {
        var map = IntMap(runs: [(0..<10, 1), (10..<20, 2), (25..<30, 3), (30..<40, 1)])
        map.assign(1, to: 5..<35)
        #expect(map.runs == [.init(range: 0..<40, value: 1)])
    }

    @Test func removeSplitsAndTrims() {
        var map = IntMap(runs: [(0..<10, 1), (10..<20, 2)])
        map.remove(5..<15)
        #expect(map.runs == [.init(range: 0..<5, value: 1), .init(range: 15..<20, value: 2)])
        map.remove(30..<40)
        #expect(map.runCount == 2)
        map.remove(0..<100)
        #expect(map.isEmpty)
    }

    @Test func extremesOfTheAddressSpace() {
        let top = UInt64.max
        var map = IntMap()
        map.assign(1, to: 0..<10)
        map.assign(2, to: (top - 10)..<top)
        #expect(map.value(at: 0) == 1 && map.value(at: top - 1) == 2 && map.value(at: top) == nil)
        #expect(map.gaps(in: 0..<top) == [10..<(top - 10)])
        map.assign(2, to: 10..<(top - 10))
        #expect(map.runs == [.init(range: 0..<10, value: 1), .init(range: 10..<top, value: 2)])
        map.remove(0..<top)
        #expect(map.isEmpty)
        map.assign(3, to: 0..<top)
        #expect(map.isUniform(0..<top, value: 3))
    }

    @Test func queriesClipToTheRange() {
        let map = IntMap(runs: [(0..<10, 1), (10..<20, 2), (30..<40, 1)])
        #expect(
            map.runs(in: 5..<35) == [
                .init(range: 5..<10, value: 1), .init(range: 10..<20, value: 2),
                .init(range: 30..<35, value: 1),
            ])
        #expect(map.gaps(in: 5..<35) == [20..<30])
        #expect(map.isUniform(12..<18, value: 2))
        #expect(!map.isUniform(12..<18, value: 1))
        #expect(!map.isUniform(5..<15, value: 1))
        #expect(!map.isUniform(15..<35, value: 2))
        #expect(!map.isUniform(35..<45, value: 1))
    }

    @Test func initFromRunsLetsLaterRunsWin() {
        let map = IntMap(runs: [(20..<30, 1), (0..<25, 2), (25..<26, 2)])
        #expect(map.runs == [.init(range: 0..<26, value: 2), .init(range: 26..<30, value: 1)])
    }

    @Test func equalityIgnoresHowTheMapWasBuilt() {
        var small = IntMap(chunkCapacity: 4)
        for i in stride(from: UInt64(0), to: 400, by: 2) { small.assign(Int(i % 3), to: i..<(i + 2)) }
        var large = IntMap()
        for i in stride(from: UInt64(398), through: 0, by: -2) { large.assign(Int(i % 3), to: i..<(i + 2)) }
        #expect(small.chunks.count > 1)
        #expect(small == large)
        #expect(small.hashValue == large.hashValue)
        large.assign(9, to: 0..<1)
        #expect(small != large)
    }

    @Test func codableRoundTripAndShape() throws {
        let map = IntMap(runs: [(0..<10, 1), (16..<32, 2)])
        let data = try JSONEncoder().encode(map)
        let objects = try #require(try JSONSerialization.jsonObject(with: data) as? [[String: Int]])
        #expect(objects == [["start": 0, "end": 10, "value": 1], ["start": 16, "end": 32, "value": 2]])
        #expect(try JSONDecoder().decode(IntMap.self, from: data) == map)
        let backwards = Data(#"[{"start": 9, "end": 3, "value": 1}]"#.utf8)
        #expect(throws: DecodingError.self) { try JSONDecoder().decode(IntMap.self, from: backwards) }
    }

    @Test func transitionsNameEachDifferingRange() {
        let old = IntMap(runs: [(0..<10, 1), (10..<20, 2)])
        let new = IntMap(runs: [(0..<5, 1), (5..<15, 2), (30..<40, 1)])
        let transitions = IntMap.transitions(from: old, to: new)
        #expect(
            transitions == [
                .init(range: 5..<10, from: 1, to: 2),
                .init(range: 15..<20, from: 2, to: nil),
                .init(range: 30..<40, from: nil, to: 1),
            ])
        var applied = old
        applied.apply(transitions)
        #expect(applied == new)
    }

    @Test func transitionsCoalesceAcrossRunBoundaries() {
        // Old has two runs with one value split by nothing but a different new value on top: one transition.
        let old = IntMap(runs: [(0..<10, 1), (10..<20, 2)])
        let new = IntMap.filled(0..<20, with: 3)
        #expect(
            IntMap.transitions(from: old, to: new) == [
                .init(range: 0..<10, from: 1, to: 3), .init(range: 10..<20, from: 2, to: 3),
            ])
        let shared = IntMap(runs: [(0..<10, 1), (10..<20, 1)])
        #expect(IntMap.transitions(from: IntMap(), to: shared) == [.init(range: 0..<20, from: nil, to: 1)])
    }
}

@Suite struct IntervalMapSearchTests {
    /// The galloping search must find the boundary from any guess, however wrong.
    @Test func searchFromAnyGuessFindsTheFirstRunNotBefore() {
        for count in 0..<20 {
            var runs: [IntMap.Run] = []
            for i in 0..<UInt64(count) { runs.append(IntMap.Run(range: (2 * i)..<(2 * i + 1), value: 0)) }
            runs.withUnsafeBufferPointer { buffer in
                let limit = UInt64(2 * count + 1)
                for threshold in 0...limit {
                    let expected = runs.firstIndex { $0.range.lowerBound >= threshold } ?? count
                    for guess in 0...count {
                        let found = IntMap.firstIndex(in: buffer, near: guess) { $0.range.lowerBound < threshold }
                        #expect(found == expected, "count \(count) threshold \(threshold) guess \(guess)")
                    }
                }
            }
        }
    }
}

// MARK: - Property tests against a per-address reference model

@Suite struct IntervalMapPropertyTests {
    /// The reference: one optional value per address of a small universe starting at `base`.
    struct Reference {
        var base: UInt64
        var cells: [Int?]
        mutating func assign(_ value: Int?, _ range: Range<Int>) { for i in range { cells[i] = value } }
        func address(_ i: Int) -> UInt64 { base + UInt64(i) }
        func range(_ r: Range<Int>) -> Range<UInt64> { address(r.lowerBound)..<address(r.upperBound) }
        /// Maximal runs of set cells.
        var runCount: Int {
            var count = 0
            for i in cells.indices where cells[i] != nil && (i == 0 || cells[i - 1] != cells[i]) { count += 1 }
            return count
        }
    }

    static let universe = 256

    static func randomRange(_ rng: inout LayoutSplitMix64, maxLength: Int = 64) -> Range<Int> {
        let start = Int.random(in: 0..<universe, using: &rng)
        let length = Int.random(in: 0...maxLength, using: &rng)
        return start..<min(universe, start + length)
    }

    /// Random edits applied to both the map and the reference.
    static func randomPair(
        _ rng: inout LayoutSplitMix64, base: UInt64, capacity: Int, edits: Int
    ) -> (IntMap, Reference) {
        var map = IntMap(chunkCapacity: capacity)
        var reference = Reference(base: base, cells: Array(repeating: nil, count: universe))
        for _ in 0..<edits {
            let range = randomRange(&rng)
            if Int.random(in: 0..<5, using: &rng) == 0 {
                map.remove(reference.range(range))
                reference.assign(nil, range)
            } else {
                let value = Int.random(in: 0..<3, using: &rng)
                map.assign(value, to: reference.range(range))
                reference.assign(value, range)
            }
        }
        return (map, reference)
    }

    static let bases: [UInt64] = [0, 1 << 40, UInt64.max - UInt64(universe)]

    @Test(arguments: bases, [4, 8, 128])
    func randomEditsMatchTheReference(base: UInt64, capacity: Int) {
        var rng = LayoutSplitMix64(seed: 0xC0FFEE ^ base ^ UInt64(capacity))
        for _ in 0..<300 {
            let edits = Int.random(in: 0..<60, using: &rng)
            let (map, reference) = Self.randomPair(&rng, base: base, capacity: capacity, edits: edits)
            expectWellFormed(map)
            #expect(map.runCount == reference.runCount)
            for i in 0..<Self.universe where map.value(at: reference.address(i)) != reference.cells[i] {
                Issue.record(
                    "value at \(i) is \(String(describing: map.value(at: reference.address(i)))), expected \(String(describing: reference.cells[i]))"
                )
                break
            }
            // Queries over a random window.
            let window = Self.randomRange(&rng, maxLength: 128)
            var rebuilt = Array<Int?>(repeating: nil, count: Self.universe)
            for run in map.runs(in: reference.range(window)) {
                #expect(reference.range(window).clamped(to: run.range) == run.range)
                for a in run.range { rebuilt[Int(a - base)] = run.value }
            }
            for gap in map.gaps(in: reference.range(window)) {
                for a in gap { #expect(reference.cells[Int(a - base)] == nil) }
            }
            #expect(Array(rebuilt[window]) == Array(reference.cells[window]))
            for value in 0..<3 {
                let uniform = reference.cells[window].allSatisfy { $0 == value }
                #expect(map.isUniform(reference.range(window), value: value) == uniform)
            }
        }
    }

    @Test(arguments: bases, [4, 128])
    func transitionsAreExactMaximalAndApplyToTheTarget(base: UInt64, capacity: Int) {
        var rng = LayoutSplitMix64(seed: 0xBEEF ^ base ^ UInt64(capacity))
        for _ in 0..<300 {
            let (a, refA) = Self.randomPair(
                &rng, base: base, capacity: capacity, edits: Int.random(in: 0..<40, using: &rng))
            let (b, refB) = Self.randomPair(
                &rng, base: base, capacity: capacity, edits: Int.random(in: 0..<40, using: &rng))
            let transitions = IntMap.transitions(from: a, to: b)
            // Exactly the differing addresses, each with the right (from, to).
            var covered = Array(repeating: false, count: Self.universe)
            for t in transitions {
                #expect(t.from != t.to && !t.range.isEmpty)
                for address in t.range {
                    let i = Int(address - base)
                    covered[i] = true
                    #expect(refA.cells[i] == t.from && refB.cells[i] == t.to)
                }
            }
            for i in 0..<Self.universe { #expect(covered[i] == (refA.cells[i] != refB.cells[i])) }
            // Ascending and maximal.
            for (x, y) in zip(transitions, transitions.dropFirst()) {
                #expect(x.range.upperBound <= y.range.lowerBound)
                #expect(!(x.range.upperBound == y.range.lowerBound && x.from == y.from && x.to == y.to))
            }
            var applied = a
            applied.apply(transitions)
            #expect(applied == b)
            expectWellFormed(applied)
        }
    }

    /// Many edits on a larger universe with tiny chunks: thousands of splits and merges.
    @Test func chunkSplitsAndMergesKeepTheMapCorrect() {
        var rng = LayoutSplitMix64(seed: 42)
        let size = 4096
        var map = IntMap(chunkCapacity: 8)
        var cells = Array<Int?>(repeating: nil, count: size)
        var maxChunks = 0
        for step in 0..<20_000 {
            let start = Int.random(in: 0..<size, using: &rng)
            // Mostly short edits (many runs, splits), sometimes a wide one (collapses many chunks).
            let length = step % 500 == 0 ? Int.random(in: 0...size, using: &rng) : Int.random(in: 1...8, using: &rng)
            let range = start..<min(size, start + length)
            let value: Int? = Int.random(in: 0..<6, using: &rng) == 0 ? nil : Int.random(in: 0..<2, using: &rng)
            if let value {
                map.assign(value, to: UInt64(range.lowerBound)..<UInt64(range.upperBound))
            } else {
                map.remove(UInt64(range.lowerBound)..<UInt64(range.upperBound))
            }
            for i in range { cells[i] = value }
            maxChunks = max(maxChunks, map.chunks.count)
        }
        expectWellFormed(map)
        #expect(maxChunks > 50)
        for i in 0..<size { #expect(map.value(at: UInt64(i)) == cells[i]) }
    }
}

@Suite struct IntervalMapBulkBuildTests {
    typealias Reference = IntervalMapPropertyTests.Reference

    static func oneByOne(_ assignments: [(range: Range<UInt64>, value: Int)], capacity: Int = 16) -> IntMap {
        var map = IntMap(chunkCapacity: capacity)
        for assignment in assignments { map.assign(assignment.value, to: assignment.range) }
        return map
    }

    static func built(_ assignments: [(range: Range<UInt64>, value: Int)], capacity: Int = 16) -> IntMap {
        var builder = IntMap.Builder(capacity: assignments.count, chunkCapacity: capacity)
        for assignment in assignments { builder.assign(assignment.value, to: assignment.range) }
        return builder.build()
    }

    /// Random assignments, in any order and overlapping, at the bottom, the middle and the top of the
    /// address space (the sort takes out the minimum start and the starts' common alignment).
    @Test(arguments: IntervalMapPropertyTests.bases, [4, 128])
    func bulkBuildEqualsAssigningOneByOne(base: UInt64, capacity: Int) {
        var rng = LayoutSplitMix64(seed: 0xB01C ^ base ^ UInt64(capacity))
        for _ in 0..<300 {
            var reference = Reference(
                base: base, cells: Array(repeating: nil, count: IntervalMapPropertyTests.universe))
            var assignments: [(range: Range<UInt64>, value: Int)] = []
            // Some rounds use aligned starts, so that the common alignment is shifted out.
            let alignment = [1, 4, 16].randomElement(using: &rng) ?? 1
            for _ in 0..<Int.random(in: 0..<80, using: &rng) {
                var range = IntervalMapPropertyTests.randomRange(&rng)
                range = (range.lowerBound / alignment * alignment)..<range.upperBound
                let value = Int.random(in: 0..<3, using: &rng)
                assignments.append((reference.range(range), value))
                reference.assign(value, range)
            }
            let built = Self.built(assignments, capacity: capacity)
            expectWellFormed(built)
            #expect(built == Self.oneByOne(assignments, capacity: capacity))
            #expect(built.runCount == reference.runCount)
            #expect(IntMap(assigning: assignments) == built)
        }
    }

    @Test func ascendingDisjointInputIsAppendedAndMerged() {
        let map = IntMap(assigning: [(0..<10, 1), (10..<20, 1), (30..<40, 2), (40..<41, 1)])
        #expect(
            map.runs == [
                .init(range: 0..<20, value: 1), .init(range: 30..<40, value: 2), .init(range: 40..<41, value: 1),
            ])
    }

    @Test func laterAssignmentsWinAndEmptyRangesVanish() {
        // A wide early range, a later range inside it, an equal start with a later value, and empty ranges.
        let map = IntMap(assigning: [(0..<100, 1), (50..<50, 9), (10..<20, 2), (10..<15, 3), (90..<90, 9)])
        #expect(
            map.runs == [
                .init(range: 0..<10, value: 1), .init(range: 10..<15, value: 3), .init(range: 15..<20, value: 2),
                .init(range: 20..<100, value: 1),
            ])
        #expect(IntMap(assigning: []).isEmpty)
        #expect(IntMap(assigning: [(5..<5, 1), (3..<3, 2)]).isEmpty)
    }

    /// 50,000 overlapping ranges over a terabyte of 4 KiB pages: buckets of the flag sort, then two radix
    /// passes inside each.
    @Test func manyRandomRangesMatchAssigningOneByOne() {
        var rng = LayoutSplitMix64(seed: 7)
        let page: UInt64 = 4096
        var assignments: [(range: Range<UInt64>, value: Int)] = []
        for _ in 0..<50_000 {
            let start = UInt64.random(in: 0..<(1 << 28), using: &rng) * page
            let length = UInt64.random(in: 1...1024, using: &rng) * page
            assignments.append((start..<(start + length), Int.random(in: 0..<2, using: &rng)))
        }
        let built = Self.built(assignments)
        expectWellFormed(built)
        #expect(built.runCount > 40_000)
        #expect(built == Self.oneByOne(assignments))
    }

    /// Shapes that take the sort's other paths: one start for all, starts over the whole 64-bit space (many
    /// passes), nearly all in one bucket beside a far outlier, and a few records per bucket.
    @Test func unusualStartDistributionsMatchAssigningOneByOne() {
        var rng = LayoutSplitMix64(seed: 12)
        func random(
            _ count: Int, _ start: () -> UInt64, maxLength: UInt64 = 1000
        ) -> [(range: Range<UInt64>, value: Int)] {
            (0..<count).map { _ in
                let low = start()
                let length = UInt64.random(in: 1...maxLength, using: &rng)
                return (low..<(low &+ length < low ? .max : low + length), Int.random(in: 0..<3, using: &rng))
            }
        }
        let shapes: [[(range: Range<UInt64>, value: Int)]] = [
            random(3000, { 77 }),
            random(5000, { UInt64.random(in: 0...(UInt64.max - 1000), using: &rng) }),
            random(5000, { UInt64.random(in: 0..<4096, using: &rng) }) + [((1 << 60)..<((1 << 60) + 10), 1)]
                + random(100, { UInt64.random(in: 0..<4096, using: &rng) }),
            random(40, { UInt64.random(in: 0..<(1 << 40), using: &rng) }, maxLength: 1 << 38),
            [(0..<(1 << 63), 3), ((1 << 62)..<((1 << 62) + 5), 4), (10..<UInt64.max, 5), (0..<1, 6)],
        ]
        for assignments in shapes {
            let built = Self.built(assignments)
            expectWellFormed(built)
            #expect(built == Self.oneByOne(assignments))
        }
    }

    /// Past the number of assignments a record can number, the builder assigns one by one: same map.
    @Test func assignmentsBeyondTheOrderLimitStillWinInTurn() {
        var rng = LayoutSplitMix64(seed: 13)
        var assignments: [(range: Range<UInt64>, value: Int)] = []
        for _ in 0..<500 {
            let start = UInt64.random(in: 0..<10_000, using: &rng)
            assignments.append(
                (start..<(start + UInt64.random(in: 1...300, using: &rng)), Int.random(in: 0..<3, using: &rng)))
        }
        var builder = IntMap.Builder(capacity: 0, chunkCapacity: 8, orderLimit: 100)
        for assignment in assignments { builder.assign(assignment.value, to: assignment.range) }
        let built = builder.build()
        expectWellFormed(built)
        #expect(built == Self.oneByOne(assignments))
    }
}
