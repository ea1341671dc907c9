import Config
import GmemCore
import GmemKVM
import GmemProtocol
import GmemSimulator

#if canImport(Glibc)
import Glibc
#endif

/// `gmemctl-bench prefault [--sizes 1,4,16] [--reps N]`: provisioning a prefaulted in-place shared guest on
/// the real kernel, gmemctl against a minimal C program issuing the same syscalls.
///
/// gmemctl's side is what `gmemctl apply --host kvm --ephemeral --prefault` runs: `Provisioner.apply(manifest,
/// prefault: true)` on a `KVMHost` (create a default VM, a MMAP|INIT_SHARED guest_memfd, mmap it, bind one
/// memslot at 4 GiB, `fallocate(KEEP_SIZE)` over the whole block), then `Provisioner.destroy` (delete the
/// memslot, munmap, close the guest_memfd, close the VM). The host is opened (capabilities probed) and the
/// manifest parsed once, outside the timing, as the CLI does once per run. The C side (`PrefaultReference`)
/// issues exactly those syscalls, timed inside its own process. Repetitions alternate C and gmemctl so that
/// both see the same machine; medians are printed, then one extra gmemctl run with every kernel call timed
/// shows where gmemctl's time goes (kernel calls vs its own work).
let prefaultBenchmark = Benchmark(
    name: "prefault",
    summary: "apply --prefault of an in-place shared guest (1/4/16 GiB) on /dev/kvm vs the same syscalls in C",
    run: runPrefaultBenchmark)

private let gibibyte: UInt64 = 1 << 30

private func runPrefaultBenchmark(_ options: BenchOptions) throws {
    let sizes = try (options.string("sizes") ?? "1,4,16").split(separator: ",").map { text -> UInt64 in
        guard let value = UInt64(text.filter { $0 != " " }), value > 0 else {
            throw BenchError(description: "--sizes needs GiB counts like 1,4,16, got '\(text)'")
        }
        return value
    }
    let repetitions = try options.integer("reps", default: 5)
    guard repetitions > 0 else { throw BenchError(description: "--reps must be at least 1") }
    guard KVMKernel.canOpen().available else { throw BenchError(description: KVMKernel.canOpen().reason) }

    let (host, hostTime) = try measure { () throws -> KVMHost in try KVMHost() }
    // Skipped, with the reason, where the kernel cannot build the guest: no figure is better than a failure.
    guard host.capabilities.vmType(.default)?.guestMemfd == true else {
        print(
            "prefault benchmark: skipped, this kernel has no guest_memfd for default VMs (\(host.capabilities.summary)), so no in-place guest can be built here"
        )
        return
    }
    let reference = try PrefaultReference.build()
    print(
        "prefault benchmark: in-place shared guest (default VM, guest_memfd MMAP|INIT_SHARED, one memslot at 4 GiB, fallocate(KEEP_SIZE) of the whole block), apply + destroy"
    )
    print(
        "  host: \(host.capabilities.summary); KVMHost open + capability probe \(formatted(hostTime.wall * 1000, 1)) ms (once, not in the figures)"
    )
    print("  \(repetitions) repetitions per size, C and gmemctl alternating; medians of wall time")
    print("  size     C total   C fallocate   gmemctl total   gmemctl/C")

    var ratios: [Double] = []
    for gib in sizes {
        let size = gib * gibibyte
        if let available = availableMemory(), available < size + gibibyte {
            print(
                "  \(gib) GiB: skipped, MemAvailable is \(available >> 20) MiB (needs \(size >> 20) MiB + 1 GiB headroom)"
            )
            continue
        }
        let manifest = try prefaultManifest(gib: gib)
        // One warm-up of each, not counted (first faults of the binary, page allocator state).
        _ = try PrefaultReference.run(binary: reference, size: size, repetitions: 1)
        _ = try gmemctlRun(manifest, host: host)

        var cTotals: [Double] = [], cFallocates: [Double] = [], gTotals: [Double] = []
        for _ in 0..<repetitions {
            let c = try PrefaultReference.run(binary: reference, size: size, repetitions: 1)[0]
            cTotals.append(c.total)
            cFallocates.append(c.fallocate)
            gTotals.append(try gmemctlRun(manifest, host: host))
        }
        let ratio = median(gTotals) / median(cTotals)
        ratios.append(ratio)
        print(
            "  \(pad("\(gib) GiB", 7))  \(pad(seconds(median(cTotals)), 9)) \(pad(seconds(median(cFallocates)), 13)) "
                + "\(pad(seconds(median(gTotals)), 15)) \(pad(formatted(ratio, 3), 11))")
        print(
            "           spread: C \(seconds(cTotals.min() ?? 0))..\(seconds(cTotals.max() ?? 0)), "
                + "gmemctl \(seconds(gTotals.min() ?? 0))..\(seconds(gTotals.max() ?? 0))"
        )
        try phaseBreakdown(manifest, host: host, gib: gib)
    }
    if let worst = ratios.max() {
        let verdict = worst <= 1.10 ? "within" : "OUTSIDE"
        print("  worst ratio gmemctl/C \(formatted(worst, 3)): \(verdict) the 10% target")
    }
}

/// One in-place block of `gib` GiB in one mapping at 4 GiB, all shared: the one-slot guest the C program builds.
private func prefaultManifest(gib: UInt64) throws -> Manifest {
    let yaml = """
        apiVersion: gmemctl/v1
        kind: GuestMemory
        metadata:
          name: prefault-bench
        spec:
          vm:
            type: default
          blocks:
            - name: ram
              size: \(gib)GiB
              backend:
                type: in-place
          mappings:
            - { block: ram, offset: 0, size: \(gib)GiB, gpa: 0x100000000 }
          layout:
            default: shared
        """
    let loaded = ManifestLoader.load(yaml: yaml, file: "prefault-bench.yaml")
    guard let manifest = loaded.manifest, loaded.isValid else {
        throw BenchError(
            description: "benchmark manifest invalid: \(loaded.diagnostics.map(\.description).joined(separator: "; "))")
    }
    return manifest
}

/// `Provisioner.apply(prefault: true)` then `destroy`, timed as a whole (wall clock, seconds).
private func gmemctlRun(_ manifest: Manifest, host: KVMHost) throws -> Double {
    let provisioner = Provisioner(host: host)
    let start = monotonicSeconds()
    let (plan, report) = try provisioner.apply(manifest, prefault: true)
    guard report.succeeded else {
        throw BenchError(description: "apply failed: \(report.failure.map { "\($0)" } ?? "?")")
    }
    let (_, teardown) = try provisioner.destroy(guest: plan.guest)
    let end = monotonicSeconds()
    guard teardown.succeeded else {
        throw BenchError(description: "destroy failed: \(teardown.failure.map { "\($0)" } ?? "?")")
    }
    return end - start
}

/// One more gmemctl run with every kernel call timed: the time inside the kernel per call, and what is left
/// for gmemctl's own work (planning, state, rendering of nothing).
private func phaseBreakdown(_ manifest: Manifest, host: KVMHost, gib: UInt64) throws {
    let timed = TimedKVMHost(host)
    let provisioner = Provisioner(host: timed)
    let start = monotonicSeconds()
    let (plan, report) = try provisioner.apply(manifest, prefault: true)
    let (_, teardown) = try provisioner.destroy(guest: plan.guest)
    let total = monotonicSeconds() - start
    guard report.succeeded, teardown.succeeded else { throw BenchError(description: "timed run failed") }
    let inKernel = timed.timer.calls.reduce(0) { $0 + $1.seconds }
    let calls = timed.timer.calls.map { "\($0.name) \(milliseconds($0.seconds))" }.joined(separator: ", ")
    print(
        "           timed run \(seconds(total)): kernel calls \(seconds(inKernel)), gmemctl's own work \(milliseconds(total - inKernel))"
    )
    print("           calls: \(calls)")
}

// MARK: - A KVMHost whose kernel calls are timed

private final class CallTimer {
    var calls: [(name: String, seconds: Double)] = []

    func time<T>(_ name: String, _ body: () throws(KernelError) -> T) throws(KernelError) -> T {
        let start = monotonicSeconds()
        defer { calls.append((name, monotonicSeconds() - start)) }
        return try body()
    }
}

private final class TimedKernel: KernelInterface {
    let base: KernelInterface
    let timer: CallTimer

    init(_ base: KernelInterface, timer: CallTimer) {
        self.base = base
        self.timer = timer
    }

    var pageSize: UInt64 { base.pageSize }
    func checkExtension(_ capability: UInt32, vm: Int32?) throws(KernelError) -> Int64 {
        try timer.time("CHECK_EXTENSION") { () throws(KernelError) in try base.checkExtension(capability, vm: vm) }
    }
    func createVM(type: UInt64) throws(KernelError) -> Int32 {
        try timer.time("CREATE_VM") { () throws(KernelError) in try base.createVM(type: type) }
    }
    func createGuestMemfd(vm: Int32, size: UInt64, flags: UInt64) throws(KernelError) -> Int32 {
        try timer.time("CREATE_GUEST_MEMFD") { () throws(KernelError) in
            try base.createGuestMemfd(vm: vm, size: size, flags: flags)
        }
    }
    func createMemfd(name: String, size: UInt64, hugePageSize: UInt64?) throws(KernelError) -> Int32 {
        try timer.time("memfd_create") { () throws(KernelError) in
            try base.createMemfd(name: name, size: size, hugePageSize: hugePageSize)
        }
    }
    func mmap(
        fd: Int32?, length: UInt64, offset: UInt64, shared: Bool, hugePageSize: UInt64?
    ) throws(KernelError) -> UInt64 {
        try timer.time("mmap") { () throws(KernelError) in
            try base.mmap(fd: fd, length: length, offset: offset, shared: shared, hugePageSize: hugePageSize)
        }
    }
    func munmap(address: UInt64, length: UInt64) throws(KernelError) {
        try timer.time("munmap") { () throws(KernelError) in try base.munmap(address: address, length: length) }
    }
    func setUserMemoryRegion2(vm: Int32, _ region: MemoryRegion2) throws(KernelError) {
        try timer.time(region.memorySize == 0 ? "REGION2(delete)" : "REGION2") { () throws(KernelError) in
            try base.setUserMemoryRegion2(vm: vm, region)
        }
    }
    func setMemoryAttributes(
        vm: Int32, address: UInt64, size: UInt64, attributes: UInt64, flags: UInt64
    ) throws(KernelError) {
        try timer.time("SET_MEMORY_ATTRIBUTES") { () throws(KernelError) in
            try base.setMemoryAttributes(vm: vm, address: address, size: size, attributes: attributes, flags: flags)
        }
    }
    func gmemConvert(gmem: Int32, offset: UInt64, size: UInt64, toPrivate: Bool) throws(KernelError) {
        try timer.time("GMEM_CONVERT") { () throws(KernelError) in
            try base.gmemConvert(gmem: gmem, offset: offset, size: size, toPrivate: toPrivate)
        }
    }
    func setMemoryAttributes2(
        gmem: Int32, offset: UInt64, size: UInt64, attributes: UInt64, flags: UInt64
    ) throws(KernelError) {
        try timer.time("SET_MEMORY_ATTRIBUTES2") { () throws(KernelError) in
            try base.setMemoryAttributes2(gmem: gmem, offset: offset, size: size, attributes: attributes, flags: flags)
        }
    }
    func fallocate(fd: Int32, mode: Int32, offset: UInt64, length: UInt64) throws(KernelError) {
        try timer.time("fallocate") { () throws(KernelError) in
            try base.fallocate(fd: fd, mode: mode, offset: offset, length: length)
        }
    }
    func madvise(address: UInt64, length: UInt64, advice: Int32) throws(KernelError) {
        try timer.time("madvise") { () throws(KernelError) in
            try base.madvise(address: address, length: length, advice: advice)
        }
    }
    func read(address: UInt64, count: Int) throws(KernelError) -> [UInt8] {
        try timer.time("read") { () throws(KernelError) in try base.read(address: address, count: count) }
    }
    func write(address: UInt64, bytes: [UInt8]) throws(KernelError) {
        try timer.time("write") { () throws(KernelError) in try base.write(address: address, bytes: bytes) }
    }
    func residentPages(address: UInt64, length: UInt64) throws(KernelError) -> UInt64 {
        try timer.time("mincore") { () throws(KernelError) in try base.residentPages(address: address, length: length) }
    }
    func residentBytes(address: UInt64, length: UInt64) throws(KernelError) -> ResidentReading {
        try timer.time("PAGEMAP_SCAN") { () throws(KernelError) in
            try base.residentBytes(address: address, length: length)
        }
    }
    func close(_ fd: Int32) throws(KernelError) {
        try timer.time("close") { () throws(KernelError) in try base.close(fd) }
    }
}

private final class TimedKVMHost: Host {
    let base: KVMHost
    let timer = CallTimer()
    let timedKernel: TimedKernel

    init(_ base: KVMHost) {
        self.base = base
        timedKernel = TimedKernel(base.kernel, timer: timer)
    }

    var label: String { base.label }
    var spec: String { base.spec }
    var capabilities: Capabilities { base.capabilities }
    var kernel: KernelInterface { timedKernel }
    var outlivesProcess: Bool { base.outlivesProcess }
    func guestNames() -> [String] { base.guestNames() }
    func guest(named name: String) -> LiveState { base.guest(named: name) }
    func store(_ state: LiveState) { base.store(state) }
    func remove(guest name: String) { base.remove(guest: name) }
    func commit() throws(HostError) { try base.commit() }
}

// MARK: - Small helpers

private func monotonicSeconds() -> Double {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return Double(now.tv_sec) + Double(now.tv_nsec) * 1e-9
}

private func median(_ values: [Double]) -> Double {
    let sorted = values.sorted()
    let middle = sorted.count / 2
    return sorted.count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
}

private func seconds(_ value: Double) -> String { value.isNaN ? "-" : formatted(value, 3) + " s" }
private func milliseconds(_ value: Double) -> String { formatted(value * 1000, 2) + " ms" }
private func pad(_ text: String, _ width: Int) -> String {
    text.count >= width ? text : String(repeating: " ", count: width - text.count) + text
}

/// MemAvailable from /proc/meminfo, in bytes.
private func availableMemory() -> UInt64? {
    guard let text = try? readFile("/proc/meminfo") else { return nil }
    for line in text.split(separator: "\n") where line.hasPrefix("MemAvailable:") {
        return line.split(separator: " ").compactMap { UInt64($0) }.first.map { $0 * 1024 }
    }
    return nil
}
