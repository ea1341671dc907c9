import Config
@_spi(Tuning) import GmemCore
import GmemKVM
import GmemProtocol
import GmemSimulator

#if canImport(Glibc)
import Glibc
#endif

/// `gmemctl-bench layout [--ranges N] [--tib T] [--anchor PATH|none] [--capacity C]`: the layout interval
/// map against the per-page bitmap anchor on identical random ranges, at T TiB and at 16 TiB
/// (`--anchor none` measures gmemctl alone, e.g. under `perf stat`).
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
    let anchorSource = options.string("anchor") ?? BitmapAnchor.defaultSource
    let anchor = anchorSource == "none" ? nil : try BitmapAnchor.build(source: anchorSource)
    print("layout benchmark: \(ranges) random ranges of 1-1024 pages of 4 KiB, chunk capacity \(capacity)")
    let sizes = tib == 16 ? [16] : [tib, 16]
    for size in sizes {
        try compareWithAnchor(anchor, ranges: ranges, tib: size, capacity: capacity)
    }
    alternating(tib: 1, capacity: capacity)
    conversion(ranges: ranges, tib: tib, capacity: capacity)
}

/// The anchor's inputs, reproduced with glibc's rand() in the anchor's call order.
private func randomLayout(ranges: Int, pages: UInt64, capacity: Int) -> Layout {
    var layout = Layout(chunkCapacity: capacity)
    srand(42)
    for _ in 0..<ranges {
        let high = UInt64(rand())
        let low = UInt64(rand())
        let start = ((high << 16) ^ low) % pages
        var count = 1 + UInt64(rand() % 1024)
        if start + count > pages { count = pages - start }
        let state: MemoryState = rand() & 1 == 1 ? .shared : .private
        layout.assign(state, to: (start * pageSize)..<((start + count) * pageSize))
    }
    return layout
}

private func compareWithAnchor(_ anchor: BitmapAnchor?, ranges: Int, tib: Int, capacity: Int) throws {
    let pages = UInt64(tib) * tebibyte / pageSize
    // The anchor first: a spawned child's maxrss starts from this process's peak (exec keeps the larger
    // of the two), so it is measured while this process is still small.
    resetPeakResident()
    let baseline = peakResidentMiB()
    let figures = try anchor?.run(ranges: ranges, tib: tib)
    resetPeakResident()
    let (layout, applyTime) = measure { randomLayout(ranges: ranges, pages: pages, capacity: capacity) }
    let (transitions, diffTime) = measure { Layout.transitions(from: Layout(), to: layout) }
    let peak = peakResidentMiB()
    // The anchor diffs against an all-zero bitmap: its runs are the maximal runs of bit 1 (shared).
    let sharedRuns = layout.runSequence.reduce(0) { $0 + ($1.value == .shared ? 1 : 0) }
    let total = applyTime + diffTime
    print("")
    print("\(tib) TiB (\(pages) pages):")
    print(
        "  gmemctl layout: apply \(applyTime.text), transitions \(diffTime.text), total \(total.text), "
            + "\(layout.runCount) runs, \(transitions.count) transitions from empty, peak RSS \(peak.map { formatted($0, 1) } ?? "?") MiB"
    )
    guard let figures else { return }
    print(
        "  bitmap anchor:  apply \(formatted(figures.applySeconds)) s, diff scan \(formatted(figures.diffSeconds)) s, total \(formatted(figures.totalSeconds)) s (process cpu \(formatted(figures.processCPUSeconds)) s), "
            + "\(figures.transitionRuns) transition runs, peak RSS \(formatted(figures.peakResidentMiB, 1)) MiB"
            + " (floor: this process's \(baseline.map { formatted($0, 1) } ?? "?") MiB at spawn)")
    print(
        "  ratio anchor/gmemctl: wall \(formatted(figures.totalSeconds / total.wall, 2))x, "
            + "cpu \(formatted(figures.processCPUSeconds / total.cpu, 2))x"
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
