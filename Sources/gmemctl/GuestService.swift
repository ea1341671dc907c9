import Config
import GmemAgent
import GmemCore
import GmemKVM
import GmemProtocol
import GmemSimulator

/// What the commands ask of wherever guests live: this process's host (the simulator's state file, or the
/// kernel for `--ephemeral`) or a running agent. Commands parse, call one of these once, and render once.
protocol GuestService {
    var hostView: HostView { get }
    func plan(_ manifest: Manifest, file: String, prefault: Bool) throws -> Plan
    func diff(_ manifest: Manifest, file: String) throws -> StateDiff
    /// The named guest (not-found when absent), or every guest.
    func guests(named name: String?) throws -> [(live: LiveState, observation: GuestObservation)]
    func convert(guest: String, gpa: Range<UInt64>, to state: MemoryState) throws -> (Plan, ApplyReport)
    func destroy(guest: String) throws -> (Plan, ApplyReport)
}

enum GuestServices {
    /// The running agent when there is one for this host (see `AgentSession.find`), else this process.
    static func open(_ host: HostOptions, _ agent: AgentOptions, format: OutputFormat) throws -> GuestService {
        if let session = try AgentSession.find(agent, host: host) { return AgentGuestService(session: session, format: format) }
        return LocalGuestService(host: try host.open())
    }
}

/// Guests on a host this process opened.
struct LocalGuestService: GuestService {
    let host: GmemCore.Host
    var hostView: HostView { HostView(host) }

    private func workflow<T>(file: String?, _ body: (Provisioner) throws(ProvisionError) -> T) throws -> T {
        do { return try body(Provisioner(host: host)) } catch { throw CLIError(error, file: file) }
    }

    func plan(_ manifest: Manifest, file: String, prefault: Bool) throws -> Plan {
        try workflow(file: file) { provisioner throws(ProvisionError) in try provisioner.plan(manifest, prefault: prefault) }
    }

    func diff(_ manifest: Manifest, file: String) throws -> StateDiff {
        try workflow(file: file) { provisioner throws(ProvisionError) in try provisioner.diff(manifest) }
    }

    func guests(named name: String?) throws -> [(live: LiveState, observation: GuestObservation)] {
        let found = (name.map { [$0] } ?? host.guestNames()).map { host.guest(named: $0) }
        if let name, !(found.first.map { $0.exists || !$0.blocks.isEmpty } ?? false) {
            throw GuestLookup.notFound(name, among: host.guestNames(), host: host.label,
                                       detail: host.outlivesProcess ? "" : "; live KVM objects die with the process that made them")
        }
        return found.map { ($0, Observer.observe($0, kernel: host.kernel)) }
    }

    func convert(guest: String, gpa: Range<UInt64>, to state: MemoryState) throws -> (Plan, ApplyReport) {
        try workflow(file: nil) { provisioner throws(ProvisionError) in try provisioner.convert(guest: guest, gpa: gpa, to: state) }
    }

    func destroy(guest: String) throws -> (Plan, ApplyReport) {
        try workflow(file: nil) { provisioner throws(ProvisionError) in try provisioner.destroy(guest: guest) }
    }
}

/// Guests held by a running agent.
struct AgentGuestService: GuestService {
    let session: AgentSession
    let format: OutputFormat
    var hostView: HostView { session.hostView }

    func plan(_ manifest: Manifest, file: String, prefault: Bool) throws -> Plan {
        var request = try AgentRequest.manifest(.plan, file: file)
        request.prefault = prefault
        return try session.call(request, as: PlanResult.self, file: file, format: format).plan
    }

    func diff(_ manifest: Manifest, file: String) throws -> StateDiff {
        try session.call(try .manifest(.diff, file: file), as: DiffResult.self, file: file, format: format).diff
    }

    func guests(named name: String?) throws -> [(live: LiveState, observation: GuestObservation)] {
        let result = try session.call(.guest(.get, name: name), as: GetResult.self, format: format)
        for guest in result.guests { session.remember(guest: guest.live.name, exists: true) }
        return result.guests.map { ($0.live, $0.observation) }
    }

    func convert(guest: String, gpa: Range<UInt64>, to state: MemoryState) throws -> (Plan, ApplyReport) {
        var request = AgentRequest.guest(.convert, name: guest)
        (request.gpa, request.size, request.to) = (gpa.lowerBound, gpa.upperBound - gpa.lowerBound, state)
        let result = try session.call(request, as: RunResult.self, format: format)
        return (result.plan, result.report)
    }

    func destroy(guest: String) throws -> (Plan, ApplyReport) {
        let result = try session.call(.guest(.destroy, name: guest), as: RunResult.self, format: format)
        if result.report.succeeded { session.remember(guest: guest, exists: false) }
        return (result.plan, result.report)
    }
}
