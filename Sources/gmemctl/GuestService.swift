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
    /// The manifest is an autoclosure: an agent reads the file itself and does not need it loaded here.
    func plan(_ manifest: @autoclosure () throws -> Manifest, file: String, prefault: Bool) throws -> Plan
    func diff(_ manifest: @autoclosure () throws -> Manifest, file: String) throws -> StateDiff
    /// The named guest (not-found when absent), or every guest.
    func guests(named name: String?) throws -> [(live: LiveState, observation: GuestObservation)]
    func convert(guest: String, gpa: Range<UInt64>, to state: MemoryState) throws -> (Plan, ApplyReport)
    func destroy(guest: String) throws -> (Plan, ApplyReport)
}

enum GuestServices {
    /// The running agent when there is one for this host (see `AgentSession.find`), else this process.
    static func open(_ host: HostOptions, _ agent: AgentOptions, format: OutputFormat) throws -> GuestService {
        if let session = try AgentSession.find(agent, host: host) {
            return AgentGuestService(session: session, format: format)
        }
        return LocalGuestService(host: try host.open())
    }

    /// The service for a command that sends `file`, and the manifest loaded here when this process acts on
    /// it (nil for an agent). An agent parses and validates the text itself, so loading it here as well
    /// doubled the work of every agent call; the outputs are those of loading it first, as before (a
    /// manifest error is reported before an agent or host problem, and an agent's refusal as the local load
    /// reports it: see `AgentGuestService`).
    static func open(
        for file: String, _ host: HostOptions, _ agent: AgentOptions,
        format: OutputFormat
    ) throws -> (service: GuestService, manifest: Manifest?) {
        let found: (session: AgentSession?, note: String?)
        do {
            found = try AgentSession.lookup(agent, host: host)
        } catch {
            _ = try ManifestInput.load(file, format: format)
            throw error
        }
        if let session = found.session { return (AgentGuestService(session: session, format: format), nil) }
        let manifest = try ManifestInput.load(file, format: format)
        if let note = found.note { printNote(note) }
        return (LocalGuestService(host: try host.open()), manifest)
    }
}

/// Guests on a host this process opened.
struct LocalGuestService: GuestService {
    let host: GmemCore.Host
    var hostView: HostView { HostView(host) }

    private func workflow<T>(file: String?, _ body: (Provisioner) throws(ProvisionError) -> T) throws -> T {
        do { return try body(Provisioner(host: host)) } catch { throw CLIError(error, file: file) }
    }

    func plan(_ manifest: @autoclosure () throws -> Manifest, file: String, prefault: Bool) throws -> Plan {
        let manifest = try manifest()
        return try workflow(file: file) { provisioner throws(ProvisionError) in
            try provisioner.plan(manifest, prefault: prefault)
        }
    }

    func diff(_ manifest: @autoclosure () throws -> Manifest, file: String) throws -> StateDiff {
        let manifest = try manifest()
        return try workflow(file: file) { provisioner throws(ProvisionError) in try provisioner.diff(manifest) }
    }

    func guests(named name: String?) throws -> [(live: LiveState, observation: GuestObservation)] {
        let found = (name.map { [$0] } ?? host.guestNames()).map { host.guest(named: $0) }
        if let name, !(found.first.map { $0.exists || !$0.blocks.isEmpty } ?? false) {
            throw GuestLookup.notFound(
                name, among: host.guestNames(), host: host.label,
                detail: host.outlivesProcess ? "" : "; live KVM objects die with the process that made them")
        }
        return found.map { ($0, Observer.observe($0, kernel: host.kernel)) }
    }

    func convert(guest: String, gpa: Range<UInt64>, to state: MemoryState) throws -> (Plan, ApplyReport) {
        try workflow(file: nil) { provisioner throws(ProvisionError) in
            try provisioner.convert(guest: guest, gpa: gpa, to: state)
        }
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

    func plan(_ manifest: @autoclosure () throws -> Manifest, file: String, prefault: Bool) throws -> Plan {
        try explainingRefusal(file) {
            var request = try AgentRequest.manifest(.plan, file: file)
            request.prefault = prefault
            return try session.call(request, as: PlanResult.self, file: file, format: format).plan
        }
    }

    func diff(_ manifest: @autoclosure () throws -> Manifest, file: String) throws -> StateDiff {
        try explainingRefusal(file) {
            try session.call(try .manifest(.diff, file: file), as: DiffResult.self, file: file, format: format).diff
        }
    }

    /// The manifest is not loaded here before the agent reads it. When the call fails (the agent refuses
    /// the manifest, the file cannot be sent, ...), loading it here first reports what a command that loaded
    /// it first reported: its own problems before any other.
    private func explainingRefusal<T>(_ file: String, _ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch {
            _ = try ManifestInput.load(file, format: format)
            throw error
        }
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
