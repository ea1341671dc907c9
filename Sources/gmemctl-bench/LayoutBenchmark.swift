import Config
@_spi(Tuning) import GmemCore
import GmemKVM
import GmemProtocol
import GmemSimulator

#if canImport(Glibc)
import Glibc
#endif

/// `gmemctl-bench layout [--ranges N] [--tib T] [--anchor PATH|none] [--capacity C] [--rounds R]`: the layout
/// interval map against the per-page bitmap anchor on identical random ranges, at T TiB and at 16 TiB, each
/// side the best of R rounds (`--anchor none` measures gmemctl alone, e.g. under `perf stat`). gmemctl
/// builds the layout two ways: one range at a time (`assign`, as conversions arrive at run time) and all at
/// once (`Layout.Builder`, as a manifest's layout is loaded).
let layoutBenchmark = Benchmark(
    name: "layout",
    summary:
        "random range assignments and transitions vs the C bitmap anchor; alternating 2 MiB layout; GPA<->block conversion",
    run: runLayoutBenchmark)

private let pageSize: UInt64 = 4096
private let tebibyte: UInt64 = 1 << 40

private func runLayoutBenchmark(_ options: BenchOptions) throws {
    let ranges = try options.integer("ranges", default: 1_000_000)
    let tib = try options.integer("tib", default: 1)
    let capacity = try options.integer("capacity", default: Layout.defaultChunkCapacity)
    let rounds = try options.integer("rounds", default: 3)
    let anchorSource = options.string("anchor") ?? BitmapAnchor.defaultSource
    let anchor = anchorSource == "none" ? nil : try BitmapAnchor.build(source: anchorSource)
    print("layout benchmark: \(ranges) random ranges of 1-1024 pages of 4 KiB, chunk capacity \(capacity)")
    let sizes = tib == 16 ? [16] : [tib, 16]
    for size in sizes {
        try compareWithAnchor(anchor, ranges: ranges, tib: size, capacity: capacity, rounds: rounds)
    }
    alternating(tib: 1, capacity: capacity)
    conversion(ranges: ranges, tib: tib, capacity: capacity)
}

/// The anchor's inputs, reproduced with glibc's rand() in the anchor's call order, handed to `body` one by one.
private func forEachRandomRange(ranges: Int, pages: UInt64, _ body: (MemoryState, Range<UInt64>) -> Void) {
    srand(42)
    for _ in 0..<ranges {
        let high = UInt64(rand())
        let low = UInt64(rand())
        let start = ((high << 16) ^ low) % pages
        var count = 1 + UInt64(rand() % 1024)
        if start + count > pages { count = pages - start }
        let state: MemoryState = rand() & 1 == 1 ? .shared : .private
        body(state, (start * pageSize)..<((start + count) * pageSize))
    }
}

/// The random ranges assigned one at a time, as run-time conversions arrive.
private func randomLayout(ranges: Int, pages: UInt64, capacity: Int) -> Layout {
    var layout = Layout(chunkCapacity: capacity)
    forEachRandomRange(ranges: ranges, pages: pages) { layout.assign($0, to: $1) }
    return layout
}

/// The random ranges handed over at once, as a manifest's layout is: one sort and one sweep.
private func bulkRandomLayout(ranges: Int, pages: UInt64, capacity: Int) -> Layout {
    var builder = Layout.Builder(capacity: ranges, chunkCapacity: capacity)
    forEachRandomRange(ranges: ranges, pages: pages) { builder.assign($0, to: $1) }
    return builder.build()
}

/// One gmemctl way of building the layout, measured: build, then transitions from empty.
private struct LayoutRound {
    var layout: Layout
    var transitions: Int
    var build: Timing
    var diff: Timing
    var peakMiB: Double?
    var total: Timing { build + diff }

    init(_ make: () -> Layout) {
        resetPeakResident()
        let (layout, build) = measure(make)
        let (transitions, diff) = measure { Layout.transitions(from: Layout(), to: layout) }
        self.layout = layout
        self.build = build
        self.transitions = transitions.count
        self.diff = diff
        peakMiB = peakResidentMiB()
    }
}

private func compareWithAnchor(_ anchor: BitmapAnchor?, ranges: Int, tib: Int, capacity: Int, rounds: Int) throws {
    let pages = UInt64(tib) * tebibyte / pageSize
    // The anchor first: a spawned child's maxrss starts from this process's peak (exec keeps the larger
    // of the two), so it is measured while this process is still small.
    resetPeakResident()
    let baseline = peakResidentMiB()
    // Each side the best of `rounds` by CPU time, which other load on the machine disturbs least.
    let figures = try anchor.map { anchor in
        try best(rounds, by: \.processCPUSeconds) { try anchor.run(ranges: ranges, tib: tib) }
    }
    let oneByOne = best(rounds, by: \.total.cpu) {
        LayoutRound { randomLayout(ranges: ranges, pages: pages, capacity: capacity) }
    }
    let atOnce = best(rounds, by: \.total.cpu) {
        LayoutRound { bulkRandomLayout(ranges: ranges, pages: pages, capacity: capacity) }
    }
    // The anchor diffs against an all-zero bitmap: its runs are the maximal runs of bit 1 (shared).
    let sharedRuns = atOnce.layout.runSequence.reduce(0) { $0 + ($1.value == .shared ? 1 : 0) }
    func mebibytes(_ value: Double?) -> String { value.map { formatted($0, 1) } ?? "?" }
    func line(_ name: String, _ round: LayoutRound) -> String {
        "  gmemctl, \(name) build \(round.build.text), transitions \(round.diff.text), total \(round.total.text), "
            + "\(round.layout.runCount) runs, \(round.transitions) transitions from empty, peak RSS \(mebibytes(round.peakMiB)) MiB"
    }
    print("")
    print("\(tib) TiB (\(pages) pages), best of \(max(1, rounds)) rounds by CPU time:")
    print(line("one by one:", oneByOne))
    print(line("at once:   ", atOnce) + (atOnce.layout == oneByOne.layout ? ", same map" : ", DIFFERENT MAP"))
    guard let figures else { return }
    print(
        "  bitmap anchor:       apply \(formatted(figures.applySeconds)) s, diff scan \(formatted(figures.diffSeconds)) s, total \(formatted(figures.totalSeconds)) s (process cpu \(formatted(figures.processCPUSeconds)) s), "
            + "\(figures.transitionRuns) transition runs, peak RSS \(formatted(figures.peakResidentMiB, 1)) MiB"
            + " (floor: this process's \(mebibytes(baseline)) MiB at spawn)")
    print(
        "  ratio anchor/gmemctl: one by one wall \(formatted(figures.totalSeconds / oneByOne.total.wall, 2))x, "
            + "cpu \(formatted(figures.processCPUSeconds / oneByOne.total.cpu, 2))x; "
            + "at once wall \(formatted(figures.totalSeconds / atOnce.total.wall, 2))x, "
            + "cpu \(formatted(figures.processCPUSeconds / atOnce.total.cpu, 2))x"
            + "; shared runs \(sharedRuns) vs anchor runs \(figures.transitionRuns): \(sharedRuns == figures.transitionRuns ? "match" : "MISMATCH")"
    )
}

/// 1 TiB alternating private/shared every 2 MiB (524,288 runs).
private func alternating(tib: Int, capacity: Int) {
    let step: UInt64 = 2 << 20
    let end = UInt64(tib) * tebibyte
    let (layout, buildTime) = measure {
        var layout = Layout(chunkCapacity: capacity)
        var state = MemoryState.private
        for start in stride(from: UInt64(0), to: end, by: Int(step)) {
            layout.assign(state, to: start..<(start + step))
            state = state.opposite
        }
        return layout
    }
    let (fromEmpty, emptyTime) = measure { Layout.transitions(from: Layout(), to: layout) }
    let (fromPrivate, privateTime) = measure { Layout.transitions(from: .filled(0..<end, with: .private), to: layout) }
    print("")
    print(
        "\(tib) TiB alternating every 2 MiB: build \(buildTime.text) (\(layout.runCount) runs), "
            + "transitions from empty \(emptyTime.text) (\(fromEmpty.count)), "
            + "from all-private \(privateTime.text) (\(fromPrivate.count))")
}

/// The random layout translated to an x86-style block (split at 2 GiB around a 2 GiB hole) and back.
private func conversion(ranges: Int, tib: Int, capacity: Int) {
    let size = UInt64(tib) * tebibyte
    let low: UInt64 = 2 << 30
    let addressMap = AddressMap(mappings: [
        Mapping(block: "ram", offset: 0, size: low, gpa: 0),
        Mapping(block: "ram", offset: low, size: size - low, gpa: 4 << 30),
    ])
    // Map the random layout (over [0, size)) into the mapped GPA space: shift everything above 2 GiB.
    let source = randomLayout(ranges: ranges, pages: size / pageSize, capacity: capacity)
    let blocks = ["ram": source]
    let (gpa, toGPATime) = measure { addressMap.gpaLayout(fromBlockLayouts: blocks) }
    let (back, toBlockTime) = measure { try? addressMap.blockLayouts(fromGPALayout: gpa) }
    print("")
    print(
        "conversion of \(source.runCount) runs over 2 mappings: block->gpa \(toGPATime.text), "
            + "gpa->block \(toBlockTime.text), round trip \(back?["ram"] == source ? "exact" : "DIFFERS")")
}
