import Config

/// The workflows every front end (CLI, agent) runs: plan, apply, diff, convert, destroy of one guest on one
/// host. Plan and apply share one code path: apply executes exactly the plan that `plan` shows.
public struct Provisioner {
    public let host: Host
    public var executor: Executor
    /// Told as memory is populated (block, bytes done, bytes in all), for progress bars.
    public var populateProgress: (@Sendable (String, UInt64, UInt64) -> Void)?
    /// The last event number already used for a guest, where the host's state may not know it (an agent
    /// numbers events across destroy and re-create of a guest, so listeners never see a number twice).
    public var eventSequenceFloor: (@Sendable (String) -> UInt64)?

    public init(host: Host, executor: Executor = Executor()) {
        self.host = host
        self.executor = executor
    }

    /// The manifest made concrete for this host, or every capability diagnostic.
    public func desiredState(_ manifest: Manifest) throws(DesiredStateError) -> DesiredState {
        try DesiredState(manifest: manifest, capabilities: host.capabilities)
    }

    /// The plan apply runs; with `prefault`, the populate steps of `apply --prefault` are part of it.
    public func plan(_ manifest: Manifest, prefault: Bool = false) throws(ProvisionError) -> Plan {
        let desired = try wrap { () throws(DesiredStateError) in try desiredState(manifest) }
        var plan = try wrap { () throws(PlanError) in
            try Planner.plan(
                desired: desired, observed: host.guest(named: desired.name), capabilities: host.capabilities)
        }
        if prefault { plan.operations += prefaultOperations(plan: plan, manifest: manifest) }
        return plan
    }

    public func diff(_ manifest: Manifest) throws(ProvisionError) -> StateDiff {
        let desired = try wrap { () throws(DesiredStateError) in try desiredState(manifest) }
        return StateDiff(desired: desired, observed: host.guest(named: desired.name))
    }

    /// Plans and applies; the host's state is stored and committed whether or not every step succeeded,
    /// so what the host holds is never lost or misreported.
    public func apply(_ manifest: Manifest, prefault: Bool = false) throws(ProvisionError) -> (Plan, ApplyReport) {
        let run = try apply(manifest, prefault: prefault, delivery: nil)
        return (run.plan, run.report)
    }

    /// `apply`, asking `delivery` about every listener event (the agent's connected listeners): a listener
    /// that rejects an `unmap` stops the conversion before the kernel is asked.
    public func apply(
        _ manifest: Manifest, prefault: Bool, delivery: ListenerDelivery?
    ) throws(ProvisionError) -> WorkflowRun {
        try run(try self.plan(manifest, prefault: prefault), delivery: delivery)
    }

    /// Converts a guest-physical range at run time, as a guest's request would.
    public func convert(
        guest: String, gpa: Range<UInt64>, to state: MemoryState
    ) throws(ProvisionError) -> (Plan, ApplyReport) {
        let run = try convert(guest: guest, gpa: gpa, to: state, delivery: nil)
        return (run.plan, run.report)
    }

    public func convert(
        guest: String, gpa: Range<UInt64>, to state: MemoryState,
        delivery: ListenerDelivery?
    ) throws(ProvisionError) -> WorkflowRun {
        let plan = try wrap { () throws(PlanError) in
            try Planner.convert(
                gpa: gpa, to: state, observed: host.guest(named: guest), capabilities: host.capabilities)
        }
        return try run(plan, delivery: delivery)
    }

    /// Tears a guest down: listeners told, memslots deleted, memory released, VM closed.
    public func destroy(guest: String) throws(ProvisionError) -> (Plan, ApplyReport) {
        let run = try destroy(guest: guest, delivery: nil)
        return (run.plan, run.report)
    }

    public func destroy(guest: String, delivery: ListenerDelivery?) throws(ProvisionError) -> WorkflowRun {
        let observed = host.guest(named: guest)
        guard observed.exists || !observed.blocks.isEmpty else {
            throw ProvisionError.guestNotFound(guest, on: host.label)
        }
        let outcome = try run(Planner.destroy(observed: observed), delivery: delivery)
        if outcome.report.succeeded {
            host.remove(guest: guest)
            try commit()
        }
        return outcome
    }

    /// What a finished apply is shown with: what the host holds of the guest and, when asked and the apply
    /// succeeded, the verification. The one place observe and verify are chained (the CLI and the agent).
    public func inspect(_ live: LiveState, after report: ApplyReport, verify: Bool) -> GuestInspection {
        let observation = Observer.observe(live, kernel: host.kernel)
        let verification = verify && report.succeeded ? Verifier.verify(live, kernel: host.verificationKernel) : nil
        return GuestInspection(observation: observation, verification: verification)
    }

    private func run(_ plan: Plan, delivery: ListenerDelivery?) throws(ProvisionError) -> WorkflowRun {
        let runtime = host.runtime(for: plan.guest)
        runtime.populateProgress = populateProgress
        runtime.delivery = delivery
        if let floor = eventSequenceFloor?(plan.guest) { runtime.continueEventSequence(after: floor) }
        let report = executor.apply(plan, on: runtime)
        host.store(runtime.state)
        try commit()
        return WorkflowRun(plan: plan, report: report, finalState: runtime.state, events: runtime.emittedEvents)
    }

    private func commit() throws(ProvisionError) {
        do { try host.commit() } catch { throw ProvisionError(.hostCommit(error), message: error.message) }
    }

    /// Populating every block up front: guest_memfd by fallocate, shared backings by MADV_POPULATE_WRITE.
    private func prefaultOperations(plan: Plan, manifest: Manifest) -> [PlanOperation] {
        manifest.spec.blocks.map { block in
            let created = plan.operations.contains {
                if case .createGuestMemfd(block.name, _, _, .inPlace) = $0 { return true }; return false
            }
            let inPlace =
                created || host.guest(named: manifest.metadata.name).block(named: block.name)?.backend.isInPlace == true
            return .populate(
                block: block.name, memory: inPlace ? .guestMemfd : .sharedBacking, offset: 0, size: block.size)
        }
    }

    private func wrap<T, E: Error>(_ body: () throws(E) -> T) throws(ProvisionError) -> T {
        do {
            return try body()
        } catch let error as DesiredStateError {
            throw ProvisionError(
                .unsatisfiable, message: "the host cannot provide what the manifest needs",
                diagnostics: error.diagnostics)
        } catch let error as PlanError {
            throw ProvisionError(.plan(error), message: error.description)
        } catch {
            throw ProvisionError(.other, message: "\(error)")
        }
    }
}

/// The outcome of a workflow: the plan, what ran, and the guest's state right after the run (also for
/// destroy, whose final `unmap` events would otherwise vanish with the guest).
public struct WorkflowRun: Sendable {
    public var plan: Plan
    public var report: ApplyReport
    public var finalState: LiveState
    /// The listener events this run delivered, in order.
    public var events: [ListenerEvent]
}

/// Why a workflow could not run: the reason as a value, a message, and the manifest diagnostics behind it
/// where there are any.
public struct ProvisionError: Error, Sendable, CustomStringConvertible {
    public enum Reason: Sendable {
        /// The host holds no guest of that name.
        case guestNotFound(guest: String)
        /// The manifest asks for what the host's kernel cannot provide (see `diagnostics`).
        case unsatisfiable
        /// The planner refused (the guest's live state does not allow the change).
        case plan(PlanError)
        /// The host could not make its state durable.
        case hostCommit(HostError)
        /// Anything else, described by `message` (e.g. an error relayed from an agent).
        case other
    }

    public var reason: Reason
    public var message: String
    public var diagnostics: [Diagnostic]

    public init(_ reason: Reason, message: String, diagnostics: [Diagnostic] = []) {
        self.reason = reason
        self.message = message
        self.diagnostics = diagnostics
    }

    public init(message: String, diagnostics: [Diagnostic]) {
        self.init(.other, message: message, diagnostics: diagnostics)
    }

    /// The one wording of "no such guest" for every workflow.
    public static func guestNotFound(_ guest: String, on hostLabel: String) -> ProvisionError {
        ProvisionError(.guestNotFound(guest: guest), message: "guest \(guest) does not exist on \(hostLabel)")
    }

    public var description: String {
        ([message] + diagnostics.map(\.description)).joined(separator: "\n")
    }
}

/// A guest after an apply: what the host shows of it, and the verification if one ran.
public struct GuestInspection: Sendable {
    public var observation: GuestObservation
    public var verification: VerificationReport?
}
