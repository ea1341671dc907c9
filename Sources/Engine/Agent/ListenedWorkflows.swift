import Config

/// The outcome of a workflow run by the agent: the plan, what ran, and the guest's state right after the
/// run (also for destroy, whose final `unmap` events would otherwise vanish with the guest).
public struct WorkflowRun: Sendable {
    public var plan: Plan
    public var report: ApplyReport
    public var finalState: LiveState
}

/// The Provisioner's apply, convert and destroy with listener delivery: the agent's runtimes ask connected
/// listeners about each event (`GuestRuntime.delivery`), so a listener that rejects an `unmap` stops the
/// conversion before the kernel is asked. Planning stays the Provisioner's own (same plan as `plan` shows).
extension Provisioner {
    public func apply(_ manifest: Manifest, prefault: Bool, delivery: ListenerDelivery?) throws(ProvisionError) -> WorkflowRun {
        var plan = try self.plan(manifest)
        if prefault { plan.operations += populateEverything(manifest, plan: plan) }
        return try run(plan, delivery: delivery)
    }

    public func convert(guest: String, gpa: Range<UInt64>, to state: MemoryState, delivery: ListenerDelivery?) throws(ProvisionError) -> WorkflowRun {
        let plan: Plan
        do {
            plan = try Planner.convert(gpa: gpa, to: state, observed: host.guest(named: guest), capabilities: host.capabilities)
        } catch {
            throw ProvisionError(message: error.description, diagnostics: [])
        }
        return try run(plan, delivery: delivery)
    }

    public func destroy(guest: String, delivery: ListenerDelivery?) throws(ProvisionError) -> WorkflowRun {
        let observed = host.guest(named: guest)
        guard observed.exists || !observed.blocks.isEmpty else {
            throw ProvisionError(message: "guest \(guest) does not exist on \(host.label)", diagnostics: [])
        }
        let outcome = try run(Planner.destroy(observed: observed), delivery: delivery)
        if outcome.report.succeeded {
            host.remove(guest: guest)
            try commitHost()
        }
        return outcome
    }

    private func run(_ plan: Plan, delivery: ListenerDelivery?) throws(ProvisionError) -> WorkflowRun {
        let runtime = host.runtime(for: plan.guest)
        runtime.delivery = delivery
        let report = executor.apply(plan, on: runtime)
        host.store(runtime.state)
        try commitHost()
        return WorkflowRun(plan: plan, report: report, finalState: runtime.state)
    }

    private func commitHost() throws(ProvisionError) {
        do { try host.commit() } catch { throw ProvisionError(message: error.message, diagnostics: []) }
    }

    /// As `apply --prefault`: guest_memfd by fallocate (in-place blocks), shared backings by MADV_POPULATE_WRITE.
    private func populateEverything(_ manifest: Manifest, plan: Plan) -> [PlanOperation] {
        manifest.spec.blocks.map { block in
            let created = plan.operations.contains { if case .createGuestMemfd(block.name, _, _, .inPlace) = $0 { return true }; return false }
            let inPlace = created || host.guest(named: manifest.metadata.name).block(named: block.name)?.backend.isInPlace == true
            return .populate(block: block.name, memory: inPlace ? .guestMemfd : .sharedBacking, offset: 0, size: block.size)
        }
    }
}
