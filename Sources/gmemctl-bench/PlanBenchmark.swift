import Config
import GmemCore
import GmemKVM
import GmemProtocol
import GmemSimulator

#if canImport(Glibc)
import Glibc
#endif

/// `gmemctl-bench plan [--tib T] [--ranges N]`: planning and diffing at scale, through the same code the CLI
/// runs (DesiredState, Planner, StateDiff). Two layouts on a T TiB guest (one in-place block split around
/// a hole below 4 GiB, as x86 guests are): private/shared alternating every 2 MiB, and N random ranges
/// drawn exactly as the bitmap anchor draws them.
let planBenchmark = Benchmark(
    name: "plan",
    summary: "plan and diff of a 1 TiB guest: 2 MiB alternating layout, and 1,000,000 random ranges",
    run: runPlanBenchmark)

private func runPlanBenchmark(_ options: BenchOptions) throws {
    let tib = try options.integer("tib", default: 1)
    let ranges = try options.integer("ranges", default: 1_000_000)
    let profile = Profiles.gmemAttributes2
    print(
        "plan benchmark: \(tib) TiB in-place guest on \(profile.name), block mapped at 0 (2 GiB) and at 4 GiB (the rest)"
    )

    let alternating = guestManifest(tib: tib) { size in
        (stride(from: UInt64(2 << 20), to: size, by: 4 << 20).map { GuestRange(gpa: $0, size: 2 << 20) }, [])
    }
    try report("alternating 2 MiB", manifest: alternating, profile: profile)

    let random = guestManifest(tib: tib) { size in randomRanges(count: ranges, guestSize: size) }
    try report("\(ranges) random ranges", manifest: random, profile: profile)
}

/// Times desired-state construction, planning from nothing, planning against a converged host, planning a
/// changed layout against a converged host, and the diff of that change.
private func report(_ title: String, manifest: Manifest, profile: Capabilities) throws {
    resetPeakResident()
    let (desired, desiredTime) = try measure { try DesiredState(manifest: manifest, capabilities: profile) }
    let runs = desired.blockLayouts.values.reduce(0) { $0 + $1.runCount }
    let (fresh, freshTime) = try measure {
        try Planner.plan(desired: desired, observed: LiveState(name: desired.name), capabilities: profile)
    }

    // A converged host: what applying `fresh` leaves behind, built directly (no kernel needed).
    var converged = LiveState(name: desired.name)
    converged.vmType = desired.vmType
    converged.vmFD = 1
    converged.blocks = desired.blocks.enumerated().map { index, block in
        var live = LiveBlock(
            name: block.name, size: block.size, backend: block.backend, guestMemfdFlags: block.guestMemfdFlags,
            layout: desired.blockLayouts[block.name] ?? Layout())
        // The kernel objects apply would have made (in-place blocks: a guest_memfd and its host mapping).
        live.guestMemfd = Int32(10 + index)
        live.guestMemfdAddress = 0x7f00_0000_0000 + UInt64(index) << 44
        return live
    }
    converged.memslots = desired.mappings.enumerated().map {
        LiveMemslot(
            slot: UInt32($0.offset), mapping: $0.element, flags: KVMConstants.memGuestMemfd, userspaceAddress: 0)
    }
    let (replan, replanTime) = try measure {
        try Planner.plan(desired: desired, observed: converged, capabilities: profile)
    }

    // Every range flipped: the worst case for a diff of two states with this many runs.
    var flipped = converged
    for index in flipped.blocks.indices {
        var layout = Layout()
        for run in flipped.blocks[index].layout.runs { layout.assign(run.value.opposite, to: run.range) }
        flipped.blocks[index].layout = layout
    }
    let (change, changeTime) = try measure {
        try Planner.plan(desired: desired, observed: flipped, capabilities: profile)
    }
    let (diff, diffTime) = measure { StateDiff(desired: desired, observed: flipped) }
    let peak = peakResidentMiB().map { formatted($0, 1) + " MiB" } ?? "n/a"

    print("\n\(title): \(runs) runs in the desired layout")
    print("  desired state (layout in block space)  \(desiredTime.text)")
    print("  plan from nothing: \(fresh.operations.count) operations  \(freshTime.text)")
    print("  plan against a converged host: \(replan.operations.count) operations  \(replanTime.text)")
    print(
        "  plan with every run flipped: \(change.operations.count) operations, \(change.transitions.count) transitions  \(changeTime.text)"
    )
    print("  diff with every run flipped: \(diff.entries.count) entries  \(diffTime.text)")
    let total = desiredTime + freshTime
    print("  manifest -> full plan total: \(total.text); peak RSS \(peak)")
}

/// One in-place block of `tib` TiB: 2 GiB at GPA 0, the rest at 4 GiB; default private plus shared and
/// private ranges given in block-offset terms and placed at their GPAs.
private func guestManifest(tib: Int, ranges: (UInt64) -> (shared: [GuestRange], private: [GuestRange])) -> Manifest {
    let size = UInt64(tib) << 40
    let low: UInt64 = 2 << 30
    let mappings = [
        Mapping(block: "ram", offset: 0, size: low, gpa: 0),
        Mapping(block: "ram", offset: low, size: size - low, gpa: 4 << 30),
    ]
    func placed(_ range: GuestRange) -> [GuestRange] {
        // Block offsets at or above 2 GiB sit 2 GiB higher in guest-physical space.
        let end = range.gpa + range.size
        if end <= low { return [range] }
        if range.gpa >= low { return [GuestRange(gpa: range.gpa + low, size: range.size)] }
        return [GuestRange(gpa: range.gpa, size: low - range.gpa), GuestRange(gpa: 4 << 30, size: end - low)]
    }
    let (shared, privateRanges) = ranges(size)
    let spec = Spec(
        vm: VMSpec(type: .tdx),
        blocks: [Block(name: "ram", size: size, backend: Backend(type: .inPlace))],
        mappings: mappings,
        layout: LayoutSpec(
            defaultState: .private, shared: shared.flatMap(placed), private: privateRanges.flatMap(placed)))
    return Manifest(metadata: Metadata(name: "bench"), spec: spec)
}

/// The anchor's random ranges (glibc rand, seed 42, 1-1024 pages of 4 KiB): drawn "set" -> shared, else
/// private. (The manifest applies all shared ranges, then all private ones, rather than in draw order.)
private func randomRanges(count: Int, guestSize: UInt64) -> (shared: [GuestRange], private: [GuestRange]) {
    let pages = guestSize / 4096
    srand(42)
    var shared: [GuestRange] = [], privateRanges: [GuestRange] = []
    shared.reserveCapacity(count / 2 + 1)
    privateRanges.reserveCapacity(count / 2 + 1)
    for _ in 0..<count {
        let high = UInt64(rand())
        let low = UInt64(rand())
        let start = ((high << 16) ^ low) % pages
        var length = 1 + UInt64(rand() % 1024)
        if start + length > pages { length = pages - start }
        let range = GuestRange(gpa: start * 4096, size: length * 4096)
        if rand() & 1 == 1 { shared.append(range) } else { privateRanges.append(range) }
    }
    return (shared, privateRanges)
}
