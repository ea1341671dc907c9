import Config

/// One check of the verification report.
public struct VerificationCheck: Sendable, Hashable, Codable {
    public enum Kind: String, Sendable, Hashable, Codable {
        /// The host touched the range through its mapping.
        case hostAccess = "host-access"
        /// A guest vCPU read the host's marker there and wrote its own, which the host then read.
        case guestAccess = "guest-access"
    }

    public var kind: Kind
    public var block: String
    public var gpa: UInt64
    public var expected: String
    public var observed: String
    public var passed: Bool
}

public struct VerificationReport: Sendable, Hashable, Codable {
    public var checks: [VerificationCheck] = []
    /// Checks that could not run on this host, and why (never silently skipped).
    public var skipped: [String] = []

    public var passed: Bool { checks.allSatisfy(\.passed) }
}

/// Verifies a built guest against its tracked layout: host probes of every run (a private page of an
/// in-place guest_memfd must SIGBUS, a shared page must be readable and writable), and, on the real kernel,
/// a tiny guest that reads the host's markers in every shared range and writes its own back.
public enum Verifier {
    static let hostMarker: UInt8 = 0xA5
    static let guestMarker: UInt8 = 0x5A

    public static func verify(_ state: LiveState, kernel: KernelInterface) -> VerificationReport {
        var report = VerificationReport()
        var guestTargets: [(block: String, gpa: UInt64, host: UInt64)] = []
        let addressMap = state.addressMap
        for block in state.blocks {
            guard let base = block.hostAddress else {
                report.skipped.append("block \(block.name): no host mapping")
                continue
            }
            for run in block.layout.runs {
                // Probe the first and last page of the run in every guest window that shows it.
                for window in addressMap.gpaRanges(block: block.name, offsets: run.range) {
                    let pages = Set([window.offsets.lowerBound, window.offsets.upperBound - kernel.pageSize]).sorted()
                    for offset in pages {
                        let gpa = window.gpaRange.lowerBound + (offset - window.offsets.lowerBound)
                        let check = probeHost(
                            block: block, address: base + offset, gpa: gpa, state: run.value, kernel: kernel)
                        report.checks.append(check)
                        if run.value == .shared, check.passed { guestTargets.append((block.name, gpa, base + offset)) }
                    }
                }
            }
        }
        if let prober = kernel.guestProber, let vm = state.vmFD {
            verifyInGuest(guestTargets, state: state, kernel: kernel, prober: prober, vm: vm, into: &report)
        } else if !guestTargets.isEmpty {
            report.skipped.append("guest access: needs a vCPU on the real kernel (this host is simulated)")
        }
        return report
    }

    /// Writes and reads back a marker through the host mapping: shared pages (and every page of a legacy
    /// block's shared backing) must be accessible, private pages of an in-place guest_memfd must SIGBUS.
    private static func probeHost(
        block: LiveBlock, address: UInt64, gpa: UInt64, state: MemoryState,
        kernel: KernelInterface
    ) -> VerificationCheck {
        let expectAccessible = state == .shared || !block.backend.isInPlace
        let outcome: String
        do {
            try kernel.write(address: address, bytes: [hostMarker])
            let back = try kernel.read(address: address, count: 1)
            outcome = back == [hostMarker] ? "accessible" : "accessible, read back \(back)"
        } catch {
            outcome = error.failure == .sigbus ? "SIGBUS" : "\(error)"
        }
        let expected = expectAccessible ? "accessible" : "SIGBUS"
        return VerificationCheck(
            kind: .hostAccess, block: block.name, gpa: gpa, expected: expected, observed: outcome,
            passed: outcome == expected)
    }

    private static func verifyInGuest(
        _ targets: [(block: String, gpa: UInt64, host: UInt64)], state: LiveState,
        kernel: KernelInterface, prober: GuestProber, vm: Int32,
        into report: inout VerificationReport
    ) {
        guard !targets.isEmpty else { return }
        guard let scratch = freeScratchGPA(state, size: prober.probeScratchSize) else {
            report.skipped.append(
                "guest access: no free 64 KiB of guest-physical space below 512 GiB for the probe's code")
            return
        }
        let slot = UInt32(32763)
        do {
            let bytes = try prober.probeInGuest(
                vm: vm, scratchGPA: scratch, scratchSlot: slot,
                targets: targets.map { (gpa: $0.gpa, writeMarker: guestMarker) })
            for (target, read) in zip(targets, bytes) {
                let back = (try? kernel.read(address: target.host, count: 1)) ?? []
                let passed = read == hostMarker && back == [guestMarker]
                report.checks.append(
                    VerificationCheck(
                        kind: .guestAccess, block: target.block, gpa: target.gpa,
                        expected:
                            "guest reads 0x\(String(hostMarker, radix: 16)), host reads back 0x\(String(guestMarker, radix: 16))",
                        observed:
                            "guest read 0x\(String(read, radix: 16)), host read back \(back.map { "0x" + String($0, radix: 16) }.joined())",
                        passed: passed))
            }
        } catch {
            report.checks.append(
                VerificationCheck(
                    kind: .guestAccess, block: targets[0].block, gpa: targets[0].gpa,
                    expected: "the probe guest runs", observed: "\(error)", passed: false))
        }
    }

    /// A 64 KiB-aligned hole in guest-physical space for the probe guest's own memory.
    static func freeScratchGPA(_ state: LiveState, size: UInt64) -> UInt64? {
        let taken = state.memslots.map(\.mapping.gpaRange).sorted { $0.lowerBound < $1.lowerBound }
        var candidate: UInt64 = 0x10000
        for range in taken {
            if candidate + size <= range.lowerBound { break }
            if range.upperBound > candidate {
                candidate = (range.upperBound + size - 1) / size * size
            }
        }
        return candidate + size <= (512 << 30) ? candidate : nil
    }
}

/// A kernel that can run a small guest on a VM and see memory the way the guest sees it (the real kernel
/// has vCPUs; the simulator has none). Offered through `KernelInterface.guestProber`, so the verifier asks
/// for the ability instead of testing the kernel's type.
public protocol GuestProber: AnyObject {
    /// Guest-physical space (64 KiB-aligned) the probe guest needs for its own code and page tables.
    var probeScratchSize: UInt64 { get }
    /// Runs the probe guest: for each target it reads the byte at the GPA (returned in order), then writes
    /// `writeMarker` there. The probe's memory goes in memslot `scratchSlot` at `scratchGPA`.
    func probeInGuest(
        vm: Int32, scratchGPA: UInt64, scratchSlot: UInt32,
        targets: [(gpa: UInt64, writeMarker: UInt8)]
    ) throws(GuestRunError) -> [UInt8]
}
