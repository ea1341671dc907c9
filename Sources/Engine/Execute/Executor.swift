import Config

#if canImport(Glibc)
import Glibc
#endif

/// What an apply did: every step that ran, the one that failed (if any), and the ones never tried.
public struct ApplyReport: Sendable, Codable {
    public var completed: [PlanOperation] = []
    public var failure: ExecutionError?
    public var notRun: [PlanOperation] = []
    /// `EAGAIN` retries taken (transient refcounts on to-private conversions).
    public var retries: Int = 0
    /// Compensating `map` events sent after a failed to-private conversion, so listeners match reality.
    public var compensations: [ListenerEvent] = []

    public var succeeded: Bool { failure == nil }
}

/// Runs a plan step by step on a guest runtime. Retries `EAGAIN` a bounded number of times; on any other
/// failure it stops, leaves the tracked state exactly as the kernel left it, tells listeners that saw an
/// `unmap` for a conversion that then failed that the range is still shared, and reports what was and was
/// not done.
public struct Executor {
    public var maxRetries: Int
    public var retryDelayMicroseconds: UInt32
    public var progress: (@Sendable (_ done: Int, _ total: Int, _ operation: PlanOperation) -> Void)?

    public init(
        maxRetries: Int = 5, retryDelayMicroseconds: UInt32 = 1_000,
        progress: (@Sendable (Int, Int, PlanOperation) -> Void)? = nil
    ) {
        self.maxRetries = maxRetries
        self.retryDelayMicroseconds = retryDelayMicroseconds
        self.progress = progress
    }

    public func apply(_ plan: Plan, on runtime: GuestRuntime) -> ApplyReport {
        var report = ApplyReport()
        // unmap notifications sent for the conversion that has not happened yet.
        var pendingUnmaps: [PlanOperation] = []
        for (index, operation) in plan.operations.enumerated() {
            progress?(index, plan.operations.count, operation)
            do {
                try performWithRetry(operation, on: runtime, report: &report)
            } catch {
                report.failure = error
                report.notRun = Array(plan.operations[(index + 1)...])
                if operation.isConversion || isUnmap(operation) {
                    report.compensations = compensate(pendingUnmaps, on: runtime)
                }
                runtime.recordFailure("\(error) (after \(report.completed.count) of \(plan.operations.count) steps)")
                return report
            }
            report.completed.append(operation)
            switch operation {
            case .notify(_, .unmap, _, _):
                pendingUnmaps.append(operation)
            case .setVMAttributes(let gpa, let size, _):
                // Per-VM attributes convert one window at a time: only that window's unmaps are settled.
                let converted = gpa..<(gpa + size)
                pendingUnmaps.removeAll {
                    guard case .notify(_, _, let start, let length) = $0 else { return true }
                    return converted.lowerBound <= start && start + length <= converted.upperBound
                }
            case .convertGuestMemfd:
                // One guest_memfd conversion covers every window of the range.
                pendingUnmaps.removeAll()
            default:
                break
            }
        }
        if let listeners = plan.listeners { runtime.setListeners(listeners) }
        runtime.recordFailure(nil)
        progress?(plan.operations.count, plan.operations.count, plan.operations.last ?? .destroyVM)
        return report
    }

    private func performWithRetry(
        _ operation: PlanOperation, on runtime: GuestRuntime, report: inout ApplyReport
    ) throws(ExecutionError) {
        var attempt = 0
        while true {
            do {
                try runtime.perform(operation)
                return
            } catch {
                let transient = error.kernelError?.errno == .eagain && operation.isConversion
                guard transient, attempt < maxRetries else { throw error }
                attempt += 1
                report.retries += 1
                usleep(retryDelayMicroseconds << UInt32(min(attempt, 10)))
            }
        }
    }

    private func isUnmap(_ operation: PlanOperation) -> Bool {
        if case .notify(_, .unmap, _, _) = operation { return true }
        return false
    }

    /// Re-announces as shared the ranges whose `unmap` was sent for a conversion that did not happen.
    private func compensate(_ unmaps: [PlanOperation], on runtime: GuestRuntime) -> [ListenerEvent] {
        var sent: [ListenerEvent] = []
        for case .notify(let listener, _, let gpa, let size) in unmaps {
            let undo = PlanOperation.notify(listener: listener, kind: .map, gpa: gpa, size: size)
            if (try? runtime.perform(undo)) != nil, let event = runtime.state.events.last { sent.append(event) }
        }
        return sent
    }
}
