/// Why a guest run did not produce the guest's view of memory.
public enum GuestRunError: Error, Sendable, Hashable, CustomStringConvertible {
    /// A kernel call made by the runner failed.
    case kernel(KernelError)
    /// The vCPU stopped for a reason other than the expected port-I/O reports and final `hlt`.
    case unexpectedExit(reason: UInt32, name: String, rip: UInt64, detail: String)
    /// `KVM_RUN` failed with a memory-fault exit (EFAULT/EHWPOISON + exit reason 39).
    case memoryFault(gpa: UInt64, size: UInt64, flags: UInt64, rip: UInt64)
    /// The scratch region cannot hold the runner (size, alignment).
    case invalidScratch(gpa: UInt64, size: UInt64, reason: String)
    /// A target the runner's page tables cannot reach, or one inside its own scratch memory.
    case unreachableTarget(gpa: UInt64, reason: String)
    /// More targets (or 1 GiB regions) than the scratch memory has room for.
    case tooManyTargets(requested: Int, reason: String)

    public var description: String {
        func hex(_ value: UInt64) -> String { "0x" + String(value, radix: 16) }
        switch self {
        case .kernel(let error):
            return error.description
        case .unexpectedExit(let reason, let name, let rip, let detail):
            return "guest stopped unexpectedly: exit \(name) (\(reason)) at RIP \(hex(rip))"
                + (detail.isEmpty ? "" : ": \(detail)")
        case .memoryFault(let gpa, let size, let flags, let rip):
            let kind = flags & 8 != 0 ? "private" : "shared"
            return "guest memory fault (\(kind) access) at GPA \(hex(gpa)) size \(hex(size)), RIP \(hex(rip))"
        case .invalidScratch(let gpa, let size, let reason):
            return "guest runner scratch memory at GPA \(hex(gpa)) size \(hex(size)) is unusable: \(reason)"
        case .unreachableTarget(let gpa, let reason):
            return "guest cannot probe GPA \(hex(gpa)): \(reason)"
        case .tooManyTargets(let requested, let reason):
            return "guest runner cannot probe \(requested) targets: \(reason)"
        }
    }
}

/// Names of `kvm_run.exit_reason` values, for error messages.
package enum GuestExitName {
    package static func name(_ reason: UInt32) -> String {
        let names: [UInt32: String] = [
            0: "KVM_EXIT_UNKNOWN", 1: "KVM_EXIT_EXCEPTION", 2: "KVM_EXIT_IO", 3: "KVM_EXIT_HYPERCALL",
            4: "KVM_EXIT_DEBUG", 5: "KVM_EXIT_HLT", 6: "KVM_EXIT_MMIO", 7: "KVM_EXIT_IRQ_WINDOW_OPEN",
            8: "KVM_EXIT_SHUTDOWN", 9: "KVM_EXIT_FAIL_ENTRY", 10: "KVM_EXIT_INTR", 17: "KVM_EXIT_INTERNAL_ERROR",
            24: "KVM_EXIT_SYSTEM_EVENT", 39: "KVM_EXIT_MEMORY_FAULT", 40: "KVM_EXIT_TDX",
        ]
        return names[reason] ?? "exit \(reason)"
    }
}
