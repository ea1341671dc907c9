import Config
import GmemCore
import GmemKVM
import GmemProtocol
import GmemSimulator

#if canImport(Glibc)
import Glibc
#endif

/// `gmemctl-bench scale [--quick 1] [--budget SECONDS] [--kvm 0] [--loader 0]`: how each step grows with its input. One
/// table per row, size against time and peak memory, and the growth exponent between the last two sizes
/// (1 = linear, 0 = flat, 2 = quadratic). Guest size on the simulator (1 GiB ... 16 TiB) and on /dev/kvm
/// (1 GiB ... 1 TiB, beside a C program issuing the same syscalls); mappings (1k ... 32,764) and shared
/// layout ranges (1k ... 100k) through the loader, the planner and the diff. A row stops growing once one
/// size takes longer than the budget.
let scaleBenchmark = Benchmark(
    name: "scale",
    summary: "time and memory against guest size, mapping count and range count, with growth exponents",
    run: runScaleBenchmark)

private let gib: UInt64 = 1 << 30

private func runScaleBenchmark(_ options: BenchOptions) throws {
    let quick = try options.integer("quick", default: 0) != 0
    let budget = Double(try options.integer("budget", default: 30))
    let repetitions = try options.integer("repetitions", default: quick ? 1 : 3)
    print("scale benchmark: best of \(repetitions); a row stops after a size over \(Int(budget)) s")

    let simSizes: [UInt64] = quick ? [1, 64, 1024, 16384] : [1, 16, 256, 1024, 4096, 8192, 16384]
    try row(
        "simulator (\(Profiles.linux618PVM.name)): apply + get + destroy of an empty in-place shared guest",
        unit: "GiB", sizes: simSizes, budget: budget
    ) { size in
        try best(repetitions, by: \.seconds) { try simulatorApply(size: size * gib) }
    }

    guard try options.integer("kvm", default: 1) != 0, KVMKernel.canOpen().available else {
        print("\nkvm rows: /dev/kvm is not available here (or --kvm 0)")
        return try manifestRows(
            quick: quick, budget: budget, repetitions: repetitions,
            loader: try options.integer("loader", default: 1) != 0)
    }
    let kernel = try KVMKernel()
    let readingSizes: [UInt64] = quick ? [1, 64, 1024, 16384] : [1, 16, 256, 1024, 4096, 16384]
    try row(
        "kvm kernel: host-resident reading (PAGEMAP_SCAN, what get and apply report) of an empty memfd mapping",
        unit: "GiB", sizes: readingSizes, budget: budget
    ) { size in
        try best(repetitions, by: \.seconds) { try residentReading(kernel, size: size * gib, old: false) }
    }
    try row(
        "kvm kernel: the same reading by mincore (before: every page looked up)", unit: "GiB",
        sizes: quick ? [1, 16] : [1, 16, 64, 256], budget: budget
    ) { size in
        try best(1, by: \.seconds) { try residentReading(kernel, size: size * gib, old: true) }
    }

    let host = try KVMHost()
    if host.capabilities.vmType(.default)?.guestMemfd != true {
        print(
            "\nkvm apply rows: this kernel has no guest_memfd for default VMs, so no in-place guest can be built here")
    } else {
        let kvmSizes: [UInt64] = quick ? [1, 64, 1024] : [1, 16, 256, 1024]
        try row(
            "kvm: apply --ephemeral (apply, get, destroy) of an empty in-place shared guest",
            unit: "GiB", sizes: kvmSizes, budget: budget
        ) { size in
            try best(repetitions, by: \.seconds) { try kvmApply(host: host, size: size * gib) }
        }
        let reference = try ScaleReference.build()
        try row(
            "kvm: C reference, the same syscalls (create VM, guest_memfd, mmap, memslot, PAGEMAP_SCAN, teardown)",
            unit: "GiB", sizes: kvmSizes, budget: budget
        ) { size in
            let figures = try ScaleReference.runBest(binary: reference, size: size * gib, repetitions: repetitions)
            return Sample(seconds: figures.seconds, peakMiB: figures.peakMiB)
        }
    }
    try manifestRows(
        quick: quick, budget: budget, repetitions: repetitions,
        loader: try options.integer("loader", default: 1) != 0)
}

private func manifestRows(quick: Bool, budget: Double, repetitions: Int, loader: Bool) throws {
    let mappingCounts: [UInt64] = quick ? [1000, 4000] : [1000, 4000, 16000, 32764]
    if loader {
        try row(
            "mappings (4 KiB at 8 KiB strides): load + validate the YAML", unit: "mappings", sizes: mappingCounts,
            budget: budget
        ) { count in
            let yaml = mappingsManifest(count: Int(count))
            return try best(repetitions, by: \.seconds) { try loadTime(yaml) }
        }
    }
    // The engine rows take the manifest as the loader returns it, built directly, so that they measure the
    // engine alone (and reach sizes the loader may refuse).
    try row("mappings: desired state + plan from nothing", unit: "mappings", sizes: mappingCounts, budget: budget) {
        count in
        let manifest = mappingsModel(count: Int(count))
        return try best(repetitions, by: \.seconds) { try planTime(manifest) }
    }

    let rangeCounts: [UInt64] = quick ? [1000, 10000] : [1000, 10000, 30000, 100_000]
    if loader {
        try row(
            "shared layout ranges (4 KiB at 8 KiB strides): load + validate the YAML", unit: "ranges",
            sizes: rangeCounts, budget: budget
        ) { count in
            let yaml = rangesManifest(count: Int(count))
            return try best(repetitions, by: \.seconds) { try loadTime(yaml) }
        }
    }
    try row(
        "shared layout ranges: desired state + plan from nothing", unit: "ranges", sizes: rangeCounts,
        budget: budget
    ) { count in
        let manifest = rangesModel(count: Int(count))
        return try best(repetitions, by: \.seconds) { try planTime(manifest) }
    }
    try row(
        "shared layout ranges: diff against a host where every range is the other way", unit: "ranges",
        sizes: rangeCounts, budget: budget
    ) { count in
        let manifest = rangesModel(count: Int(count))
        return try best(repetitions, by: \.seconds) { try diffTime(manifest) }
    }
}

// MARK: - Rows

/// One measurement: seconds (wall clock) and peak resident memory of the process while it ran.
private struct Sample {
    var seconds: Double
    var peakMiB: Double?
}

private func sampled(_ body: () throws -> Void) rethrows -> Sample {
    resetPeakResident()
    let (_, timing) = try measure(body)
    return Sample(seconds: timing.wall, peakMiB: peakResidentMiB())
}

/// Prints one table; the exponent is log(t2/t1) / log(n2/n1) over the last two sizes measured.
private func row(
    _ title: String, unit: String, sizes: [UInt64], budget: Double, _ measureSize: (UInt64) throws -> Sample
) throws {
    print("\n\(title)")
    print("  \(unit.leftPadded(9))  \("time".leftPadded(12))  \("peak RSS".leftPadded(10))")
    var measured: [(size: UInt64, sample: Sample)] = []
    for size in sizes {
        if let last = measured.last, last.sample.seconds > budget {
            print("  \(String(size).leftPadded(9))  skipped: \(String(last.size)) took over \(Int(budget)) s")
            continue
        }
        let sample: Sample
        do {
            sample = try measureSize(size)
        } catch {
            // A refusal (the kernel's or the simulator's) ends the row; it is a figure too.
            print("  \(String(size).leftPadded(9))  refused: \(error)")
            break
        }
        measured.append((size, sample))
        let memory = sample.peakMiB.map { formatted($0, 1) + " MiB" } ?? "n/a"
        print(
            "  \(String(size).leftPadded(9))  \((formatted(sample.seconds * 1000, 2) + " ms").leftPadded(12))  \(memory.leftPadded(10))"
        )
    }
    if measured.count >= 2 {
        let (a, b) = (measured[measured.count - 2], measured[measured.count - 1])
        let exponent =
            log(max(b.sample.seconds, 1e-9) / max(a.sample.seconds, 1e-9)) / log(Double(b.size) / Double(a.size))
        print("  growth exponent \(a.size) -> \(b.size): \(formatted(exponent, 2))")
    }
}

private extension String {
    func leftPadded(_ width: Int) -> String { String(repeating: " ", count: max(0, width - count)) + self }
}

// MARK: - Guest size

/// One in-place block of `size`, all shared, at 4 GiB: what a 6.18 kernel can build. Mapped in pieces of at
/// most 4 TiB, since KVM refuses memslots of 2^31 pages (8 TiB) or more.
private func sharedGuest(size: UInt64) -> Manifest {
    let piece: UInt64 = 4 << 40
    let mappings = stride(from: UInt64(0), to: size, by: Int(piece)).map {
        Mapping(block: "ram", offset: $0, size: min(piece, size - $0), gpa: 4 * gib + $0)
    }
    let spec = Spec(
        vm: VMSpec(type: .default),
        blocks: [Block(name: "ram", size: size, backend: Backend(type: .inPlace))],
        mappings: mappings,
        layout: LayoutSpec(defaultState: .shared))
    return Manifest(metadata: Metadata(name: "scale"), spec: spec)
}

/// Apply, observe (what `apply` and `get` print) and destroy, as `apply --ephemeral` runs them.
private func applyObserveDestroy(_ host: Host, size: UInt64) throws {
    let provisioner = Provisioner(host: host)
    let (plan, report) = try provisioner.apply(sharedGuest(size: size))
    _ = Observer.observe(host.guest(named: plan.guest), kernel: host.kernel)
    let (_, teardown) = try provisioner.destroy(guest: plan.guest)
    guard report.succeeded, teardown.succeeded else {
        throw BenchError(description: (report.failure ?? teardown.failure).map { "\($0)" } ?? "apply did not finish")
    }
}

private func simulatorApply(size: UInt64) throws -> Sample {
    let host = SimulatedHost(profile: Profiles.linux618PVM)
    return try sampled { try applyObserveDestroy(host, size: size) }
}

/// Maps an empty memfd of `size` and reads how much of it is resident, by the new or the old reading.
private func residentReading(_ kernel: KVMKernel, size: UInt64, old: Bool) throws -> Sample {
    let fd = try kernel.createMemfd(name: "gmemctl-bench-scale", size: size, hugePageSize: nil)
    defer { try? kernel.close(fd) }
    let address = try kernel.mmap(fd: fd, length: size, offset: 0, shared: true, hugePageSize: nil)
    defer { try? kernel.munmap(address: address, length: size) }
    var resident: UInt64 = 0
    let sample = try sampled {
        resident =
            old
            ? try kernel.residentPages(address: address, length: size) * kernel.pageSize
            : try kernel.residentBytes(address: address, length: size).bytes
    }
    guard resident == 0 else {
        throw BenchError(description: "an empty memfd mapping reads \(resident) bytes resident")
    }
    return sample
}

private func kvmApply(host: KVMHost, size: UInt64) throws -> Sample {
    try sampled { try applyObserveDestroy(host, size: size) }
}

// MARK: - Manifests of many items

private func header(blockSize: UInt64, vm: String) -> String {
    """
    apiVersion: gmemctl/v1
    kind: GuestMemory
    metadata:
      name: scale
    spec:
      vm:
        type: \(vm)
      blocks:
        - { name: ram, size: \(blockSize), backend: { type: in-place } }
      mappings:

    """
}

/// `count` mappings of 4 KiB of one block, at 8 KiB strides in guest-physical space.
private func mappingsManifest(count: Int) -> String {
    var text = header(blockSize: UInt64(count) * 4096, vm: "default")
    text.reserveCapacity(count * 80)
    for index in 0..<count {
        text += "    - { block: ram, offset: \(index * 4096), size: 4096, gpa: \(UInt64(index) * 8192) }\n"
    }
    text += "  layout:\n    default: shared\n"
    return text
}

/// `count` shared ranges of 4 KiB at 8 KiB strides in one mapping of a block just large enough.
private func rangesManifest(count: Int) -> String {
    let size = max(gib, (UInt64(count) * 8192 + gib - 1) / gib * gib)
    var text = header(blockSize: size, vm: "sw-protected")
    text += "    - { block: ram, offset: 0, size: \(size), gpa: 0 }\n  layout:\n    default: private\n    shared:\n"
    text.reserveCapacity(count * 48)
    for index in 0..<count {
        text += "      - { gpa: \(UInt64(index) * 8192), size: 4096 }\n"
    }
    return text
}

/// The manifests above as the loader returns them.
private func mappingsModel(count: Int) -> Manifest {
    let mappings = (0..<UInt64(count)).map { Mapping(block: "ram", offset: $0 * 4096, size: 4096, gpa: $0 * 8192) }
    let spec = Spec(
        vm: VMSpec(type: .default),
        blocks: [Block(name: "ram", size: UInt64(count) * 4096, backend: Backend(type: .inPlace))],
        mappings: mappings, layout: LayoutSpec(defaultState: .shared))
    return Manifest(metadata: Metadata(name: "scale"), spec: spec)
}

private func rangesModel(count: Int) -> Manifest {
    let size = max(gib, (UInt64(count) * 8192 + gib - 1) / gib * gib)
    let shared = (0..<UInt64(count)).map { GuestRange(gpa: $0 * 8192, size: 4096) }
    let spec = Spec(
        vm: VMSpec(type: .swProtected),
        blocks: [Block(name: "ram", size: size, backend: Backend(type: .inPlace))],
        mappings: [Mapping(block: "ram", offset: 0, size: size, gpa: 0)],
        layout: LayoutSpec(defaultState: .private, shared: shared))
    return Manifest(metadata: Metadata(name: "scale"), spec: spec)
}

private func load(_ yaml: String) throws -> Manifest {
    let result = ManifestLoader.load(yaml: yaml, file: "scale.yaml")
    guard let manifest = result.manifest, result.isValid else {
        let first = result.diagnostics.prefix(3).map(\.description).joined(separator: "; ")
        throw BenchError(description: "the generated manifest is refused: \(first)")
    }
    return manifest
}

private func loadTime(_ yaml: String) throws -> Sample {
    try sampled { _ = try load(yaml) }
}

/// Capabilities with in-place conversion, so that the layout's private ranges are plannable.
private let planProfile = Profiles.gmemAttributes2

private func planTime(_ manifest: Manifest) throws -> Sample {
    var spec = manifest.spec
    spec.vm = VMSpec(type: .swProtected)
    let convertible = Manifest(metadata: manifest.metadata, spec: spec)
    return try sampled {
        let desired = try DesiredState(manifest: convertible, capabilities: planProfile)
        _ = try Planner.plan(desired: desired, observed: LiveState(name: desired.name), capabilities: planProfile)
    }
}

private func diffTime(_ manifest: Manifest) throws -> Sample {
    var spec = manifest.spec
    spec.vm = VMSpec(type: .swProtected)
    let desired = try DesiredState(
        manifest: Manifest(metadata: manifest.metadata, spec: spec), capabilities: planProfile)
    var flipped = LiveState(name: desired.name)
    flipped.vmType = desired.vmType
    flipped.vmFD = 1
    flipped.blocks = desired.blocks.enumerated().map { index, block in
        var layout = Layout()
        for run in (desired.blockLayouts[block.name] ?? Layout()).runs {
            layout.assign(run.value.opposite, to: run.range)
        }
        var live = LiveBlock(
            name: block.name, size: block.size, backend: block.backend, guestMemfdFlags: block.guestMemfdFlags,
            layout: layout)
        live.guestMemfd = Int32(10 + index)
        live.guestMemfdAddress = 0x7f00_0000_0000 + UInt64(index) << 44
        return live
    }
    flipped.memslots = desired.mappings.enumerated().map {
        LiveMemslot(
            slot: UInt32($0.offset), mapping: $0.element, flags: KVMConstants.memGuestMemfd, userspaceAddress: 0)
    }
    return sampled { _ = StateDiff(desired: desired, observed: flipped) }
}
