#if canImport(Glibc)
import Glibc
#endif

/// Seconds taken by `body`, on the monotonic clock.
func seconds<T>(_ body: () throws -> T) rethrows -> (T, Double) {
    var start = timespec(), end = timespec()
    clock_gettime(CLOCK_MONOTONIC, &start)
    let result = try body()
    clock_gettime(CLOCK_MONOTONIC, &end)
    return (result, Double(end.tv_sec - start.tv_sec) + Double(end.tv_nsec - start.tv_nsec) * 1e-9)
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
