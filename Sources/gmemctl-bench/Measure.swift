#if canImport(Glibc)
import Glibc
#endif

/// Time taken: wall clock, and CPU time of this process (user + system), which stays meaningful when
/// other work competes for the cores.
struct Timing {
    var wall: Double
    var cpu: Double

    static func + (a: Timing, b: Timing) -> Timing { Timing(wall: a.wall + b.wall, cpu: a.cpu + b.cpu) }
    var text: String { "\(formatted(wall)) s (cpu \(formatted(cpu)) s)" }
}

func measure<T>(_ body: () throws -> T) rethrows -> (T, Timing) {
    var start = timespec(), end = timespec()
    let cpuStart = processCPUSeconds()
    clock_gettime(CLOCK_MONOTONIC, &start)
    let result = try body()
    clock_gettime(CLOCK_MONOTONIC, &end)
    let wall = Double(end.tv_sec - start.tv_sec) + Double(end.tv_nsec - start.tv_nsec) * 1e-9
    return (result, Timing(wall: wall, cpu: processCPUSeconds() - cpuStart))
}

/// The run of `rounds` (at least one) with the smallest `cost`: benchmarks quote the best of several runs,
/// the one least disturbed by other work on the machine.
func best<T>(_ rounds: Int, by cost: (T) -> Double, _ run: () throws -> T) rethrows -> T {
    var best = try run()
    for _ in 1..<max(1, rounds) {
        let round = try run()
        if cost(round) < cost(best) { best = round }
    }
    return best
}

func processCPUSeconds() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return cpuSeconds(usage)
}

func cpuSeconds(_ usage: rusage) -> Double {
    Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec)
        * 1e-6
}

/// This process's peak resident set (VmHWM) in MiB, from /proc/self/status.
func peakResidentMiB() -> Double? {
    guard let file = fopen("/proc/self/status", "r") else { return nil }
    defer { fclose(file) }
    var line = [CChar](repeating: 0, count: 256)
    while fgets(&line, Int32(line.count), file) != nil {
        let text = String(decoding: line.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        if text.hasPrefix("VmHWM:") {
            let kib = text.split(separator: " ").compactMap { Double($0) }.first
            return kib.map { $0 / 1024 }
        }
    }
    return nil
}

/// Resets the peak resident set so that the next `peakResidentMiB()` covers only what follows
/// (Linux: writing 5 to clear_refs). Returns false where the kernel does not allow it.
@discardableResult
func resetPeakResident() -> Bool {
    guard let file = fopen("/proc/self/clear_refs", "w") else { return false }
    defer { fclose(file) }
    return fputs("5", file) >= 0
}

func formatted(_ value: Double, _ digits: Int = 3) -> String {
    var buffer = [CChar](repeating: 0, count: 64)
    _ = withVaList([value]) { vsnprintf(&buffer, buffer.count, "%.\(digits)f", $0) }
    return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}
