import Config
import Foundation
import GmemCore
import GmemProtocol
import Logging
import Synchronization

// Foundation has a `Host` too; this one is meant.
import protocol GmemCore.Host

#if canImport(Glibc)
import Glibc
#endif

/// The agent's behaviour, independent of the transport: takes request lines from connections and answers
/// them. Requests for one guest run one at a time on that guest's queue; different guests run in parallel.
/// Work is never tied to the connection that asked: a client that goes away mid-request does not cancel it,
/// and the outcome is recorded on the guest (`lastFailure`, or the new state) for `get` to show.
public final class AgentService: @unchecked Sendable {
    public struct Options: Sendable {
        /// Seconds a listener has to answer an event before it counts as a rejection.
        public var listenerTimeout: TimeInterval = 30
        /// Events kept per guest for `events` (older ones are dropped, and `events --since` says so).
        public var eventHistory = 1024
        /// The state file a simulator agent serves (shown in `hello`, so a client can restart it alike).
        public var stateFile: String?

        public init() {}
    }

    public let hello: HelloResult
    private let host: Host
    private var provisioner: Provisioner
    private let links: ListenerRegistry
    private let logger: Logger
    private let options: Options
    private let lock = NSLock()
    private var slots: [String: AgentGuest] = [:]
    private var stopping = false
    private let stopHandler = Mutex<(@Sendable () -> Void)?>(nil)

    /// - Parameters:
    ///   - hostSpec: the host as `--host` takes it (`kvm`, `sim:PROFILE`), for clients to match.
    ///   - host: used from many threads; wrap it in `SharedHost` unless it is safe as it is.
    public init(hostSpec: String, host: Host, options: Options = Options(), logger: Logger) {
        self.host = host
        self.options = options
        provisioner = Provisioner(host: host)
        links = ListenerRegistry(timeout: options.listenerTimeout)
        self.logger = logger
        let formatter = ISO8601DateFormatter()
        hello = HelloResult(
            protocolVersion: AgentProtocol.version, instance: AgentService.randomInstanceID(),
            host: hostSpec, hostLabel: host.label, flagSet: host.capabilities.guestMemfdFlagSet,
            pid: getpid(), startedAt: formatter.string(from: Date()), guests: [],
            stateFile: options.stateFile)
        // Event numbers continue across destroy and re-create: the guest's ring remembers the last one.
        // Called on the guest's queue, where its ring is kept.
        provisioner.eventSequenceFloor = { [unowned self] name in self.slot(name).lastSequence }
    }

    /// Called once when a client asks the agent to stop (after its answer is sent). Set it before serving.
    public func onStopRequested(_ handler: @escaping @Sendable () -> Void) {
        stopHandler.withLock { $0 = handler }
    }

    static func randomInstanceID() -> String {
        (0..<8).map { _ in String(format: "%02x", UInt8.random(in: 0...255)) }.joined()
    }

    // MARK: Lines in

    /// A line the transport framed (without its newline). Decoded and dispatched on the connection's own
    /// queue: the event loop only frames.
    public func receive(_ line: [UInt8], from connection: AgentConnection) {
        connection.lines.async { self.handle(line, from: connection) }
    }

    private func handle(_ line: [UInt8], from connection: AgentConnection) {
        let request: AgentRequest
        switch RequestDecoding.decode(line) {
        case .request(let decoded):
            request = decoded
        case .answer(let answer):
            links.answer(answer, from: connection)
            connection.settle()
            return
        case .invalid(let id, let problem):
            reply(connection, id: id, error: AgentErrorBody(.badRequest, problem))
            return
        }
        guard request.v == AgentProtocol.version else {
            reply(
                connection, id: request.id,
                error: AgentErrorBody(
                    .unsupportedVersion,
                    "protocol version \(request.v) is not served; this agent speaks v\(AgentProtocol.version)"))
            return
        }
        guard let op = AgentOp(rawValue: request.op) else {
            reply(
                connection, id: request.id,
                error: AgentErrorBody(
                    .unknownOp,
                    "unknown op \(request.op); known: \(AgentOp.allCases.map(\.rawValue).joined(separator: ", "))"))
            return
        }
        if lock.withLock({ stopping }) && op != .hello {
            reply(connection, id: request.id, error: AgentErrorBody(.stopping, "the agent is stopping"))
            return
        }
        logger.debug(
            "request",
            metadata: [
                "op": "\(op.rawValue)", "id": "\(request.id?.description ?? "-")",
                "connection": "\(connection.connectionID)",
            ])
        dispatch(op, request, from: connection)
    }

    /// A line over the size limit was skipped.
    public func receiveTooLong(bytes: Int, from connection: AgentConnection) {
        connection.lines.async { self.tooLong(bytes: bytes, from: connection) }
    }

    private func tooLong(bytes: Int, from connection: AgentConnection) {
        logger.warning("line too long", metadata: ["bytes": "\(bytes)", "connection": "\(connection.connectionID)"])
        reply(
            connection, id: nil,
            error: AgentErrorBody(
                .lineTooLong,
                "a request line of \(bytes) bytes exceeds the limit of \(AgentProtocol.maxLineBytes) bytes; it was skipped"
            ))
    }

    public func disconnected(_ connection: AgentConnection) {
        links.disconnected(connection)
        for slot in lock.withLock({ Array(slots.values) }) {
            slot.queue.async { slot.unfollow(connection.connectionID) }
        }
    }

    // MARK: Ops

    /// One request being answered: what was asked, and by whom.
    private struct Call: Sendable {
        let op: AgentOp
        let request: AgentRequest
        let connection: AgentConnection
        var id: AgentRequestID? { request.id }
    }

    private func dispatch(_ op: AgentOp, _ request: AgentRequest, from connection: AgentConnection) {
        let call = Call(op: op, request: request, connection: connection)
        if let problem = Self.requestProblem(request) {
            fail(call, AgentErrorBody(.badRequest, problem))
            return
        }
        switch op {
        case .hello: hello(call)
        case .plan, .diff, .apply: manifestOp(call)
        case .get: get(call)
        case .convert: convert(call)
        case .destroy: destroy(call)
        case .events: events(call)
        case .listen: listen(call)
        case .stop: stop(call)
        }
    }

    private func hello(_ call: Call) {
        var hello = self.hello
        hello.guests = host.guestNames()
        answer(call, hello)
    }

    /// plan, diff and apply: the manifest is loaded here (the connection's queue), the work runs on the guest's.
    private func manifestOp(_ call: Call) {
        guard let manifest = loadManifest(call) else { return }
        let name = manifest.metadata.name, prefault = call.request.prefault ?? false
        onGuest(name, call) { slot in
            switch call.op {
            case .plan:
                self.answer(
                    call,
                    PlanResult(
                        hostLabel: self.host.label, plan: try self.provisioner.plan(manifest, prefault: prefault)))
            case .diff:
                self.answer(call, DiffResult(hostLabel: self.host.label, diff: try self.provisioner.diff(manifest)))
            default:
                let run = try self.provisioner.apply(
                    manifest, prefault: prefault, delivery: self.links.delivery(for: name))
                self.record(run, call, slot)
                let inspection = self.provisioner.inspect(
                    run.finalState, after: run.report, verify: call.request.verify ?? false)
                let guest = GuestView(live: run.finalState, observation: inspection.observation)
                self.answer(
                    call,
                    ApplyResult(
                        hostLabel: self.host.label, plan: run.plan, report: run.report, guest: guest,
                        verification: inspection.verification))
            }
        }
    }

    private func get(_ call: Call) {
        guard let name = call.request.name else {
            // Every guest, each read on its own queue (after the work queued for it).
            DispatchQueue.global().async {
                let views = self.host.guestNames().map { name in
                    self.slot(name).queue.sync { self.view(self.host.guest(named: name)) }
                }
                self.answer(call, GetResult(hostLabel: self.host.label, guests: views))
            }
            return
        }
        onGuest(name, call) { _ in
            self.answer(call, GetResult(hostLabel: self.host.label, guests: [self.view(try self.existing(name))]))
        }
    }

    private func convert(_ call: Call) {
        let request = call.request
        guard let name = required(request.name, "name", call), let gpa = required(request.gpa, "gpa", call),
            let size = required(request.size, "size", call), let to = required(request.to, "to", call)
        else { return }
        guard size > 0, !gpa.addingReportingOverflow(size).overflow else {
            fail(call, AgentErrorBody(.badRequest, "gpa + size must be a non-empty range without overflow"))
            return
        }
        onGuest(name, call) { slot in
            guard self.host.guest(named: name).exists else { throw self.notFound(name) }
            let run = try self.provisioner.convert(
                guest: name, gpa: gpa..<(gpa + size), to: to, delivery: self.links.delivery(for: name))
            self.record(run, call, slot)
            self.answer(call, RunResult(hostLabel: self.host.label, plan: run.plan, report: run.report))
        }
    }

    private func destroy(_ call: Call) {
        guard let name = required(call.request.name, "name", call) else { return }
        onGuest(name, call) { slot in
            _ = try self.existing(name)
            let run = try self.provisioner.destroy(guest: name, delivery: self.links.delivery(for: name))
            self.record(run, call, slot)
            self.answer(call, RunResult(hostLabel: self.host.label, plan: run.plan, report: run.report))
        }
    }

    private func events(_ call: Call) {
        guard let name = required(call.request.name, "name", call) else { return }
        let follow = call.request.follow ?? false
        onGuest(name, call) { slot in
            if slot.isEmpty && !self.host.guest(named: name).exists && !follow { throw self.notFound(name) }
            let (events, droppedBefore) = slot.events(since: call.request.since ?? 0)
            self.answer(
                call,
                EventsResult(
                    guest: name, events: events, following: follow, droppedBefore: droppedBefore,
                    kept: self.options.eventHistory))
            if follow { slot.follow(call.connection, requestID: call.id) }
        }
    }

    /// Only a listener the guest declares, of a guest that exists: nobody can hold a name in advance and make
    /// a later apply's events go to the wrong place.
    private func listen(_ call: Call) {
        guard let name = required(call.request.name, "name", call),
            let listener = required(call.request.listener, "listener", call)
        else { return }
        let live = host.guest(named: name)
        guard live.exists else { return fail(call, notFound(name)) }
        guard live.listeners.contains(listener) else {
            let declared =
                live.listeners.isEmpty ? "it declares none" : "it declares " + live.listeners.joined(separator: ", ")
            return fail(
                call,
                AgentErrorBody(.notFound, "guest \(name) has no listener \(listener) (\(declared) in spec.listeners)"))
        }
        guard links.register(guest: name, listener: listener, connection: call.connection) else {
            return fail(
                call, AgentErrorBody(.listenerTaken, "listener \(listener) of guest \(name) is already connected"))
        }
        logger.info(
            "listener connected",
            metadata: ["guest": "\(name)", "listener": "\(listener)", "connection": "\(call.connection.connectionID)"])
        answer(call, ListenResult(guest: name, listener: listener))
    }

    private func stop(_ call: Call) {
        let first = lock.withLock { () -> Bool in
            defer { stopping = true }
            return !stopping
        }
        answer(call, StopResult(guests: host.guestNames()))
        if first, let handler = stopHandler.withLock({ $0 }) { handler() }
    }

    /// After a run on the guest's queue: its events into the ring (and to followers), and a log line.
    private func record(_ run: WorkflowRun, _ call: Call, _ slot: AgentGuest) {
        slot.record(run.events, lastSequence: run.finalState.lastEventSequence)
        log(run, op: call.op)
    }

    /// The guest's live state, or `not-found`.
    private func existing(_ name: String) throws(AgentErrorBody) -> LiveState {
        let live = host.guest(named: name)
        guard live.exists || !live.blocks.isEmpty else { throw notFound(name) }
        return live
    }

    /// Refuses new requests and ends every wait for a listener's answer as a rejection (a conversion waiting
    /// for one stops now). Returns how many answers were still awaited.
    public func beginStopping(reason: String) -> Int {
        lock.withLock { stopping = true }
        return links.close(reason: reason)
    }

    /// What each busy guest is doing, for the shutdown log (`guest: op`).
    public var busyGuests: [String] {
        lock.withLock { Array(slots.values) }.compactMap { slot in slot.busy.map { "\(slot.name): \($0)" } }.sorted()
    }

    /// Destroys every guest through the Provisioner (KVM objects released), each on its own queue after the
    /// requests already queued for it; `group` is left when all are done. `failures` collects what could not
    /// be destroyed cleanly.
    public func destroyAll(group: DispatchGroup, failures: TeardownFailures) {
        lock.withLock { stopping = true }
        for name in host.guestNames() {
            let slot = self.slot(name)
            group.enter()
            slot.queue.async {
                defer { group.leave() }
                slot.busy = "destroy"
                defer { slot.busy = nil }
                do {
                    let run = try self.provisioner.destroy(guest: name, delivery: self.links.delivery(for: name))
                    slot.record(run.events, lastSequence: run.finalState.lastEventSequence)
                    if let failure = run.report.failure { failures.append("\(name): \(failure)") }
                    self.logger.info(
                        "guest destroyed", metadata: ["guest": "\(name)", "ok": "\(run.report.succeeded)"])
                } catch {
                    failures.append("\(name): \(error)")
                }
            }
        }
    }

    /// Destroys every guest and waits for it (tests and embedders; the agent command bounds its wait).
    public func destroyAll() -> [String] {
        let group = DispatchGroup()
        let failures = TeardownFailures()
        destroyAll(group: group, failures: failures)
        group.wait()
        return failures.all
    }

    // MARK: Helpers

    private func slot(_ name: String) -> AgentGuest {
        lock.withLock {
            if let slot = slots[name] { return slot }
            let slot = AgentGuest(name: name, capacity: options.eventHistory)
            slots[name] = slot
            return slot
        }
    }

    /// Runs `body` on the guest's queue; a thrown error becomes the error response.
    private func onGuest(_ name: String, _ call: Call, _ body: @escaping @Sendable (AgentGuest) throws -> Void) {
        let slot = self.slot(name)
        slot.queue.async {
            slot.busy = call.op.rawValue
            defer { slot.busy = nil }
            do {
                try body(slot)
            } catch let error as AgentErrorBody {
                self.fail(call, error)
            } catch let error as ProvisionError {
                self.fail(
                    call,
                    AgentErrorBody(
                        .failed, error.message, diagnostics: error.diagnostics.isEmpty ? nil : error.diagnostics))
            } catch {
                self.fail(call, AgentErrorBody(.failed, "\(error)"))
            }
        }
    }

    private func loadManifest(_ call: Call) -> Manifest? {
        guard let text = required(call.request.manifest, "manifest", call) else { return nil }
        let file = call.request.file ?? "<manifest>"
        let loaded = ManifestLoader.load(yaml: text, file: file, pageSize: host.kernel.pageSize)
        guard loaded.isValid, let manifest = loaded.manifest else {
            fail(
                call,
                AgentErrorBody(.invalidManifest, "\(file) is not a valid manifest", diagnostics: loaded.diagnostics))
            return nil
        }
        return manifest
    }

    /// Names and addresses checked before anything uses them: names follow the manifest's name rule, and a
    /// range lies below the guest-physical limit (so no length computed from it can overflow).
    static func requestProblem(_ request: AgentRequest) -> String? {
        for (field, value) in [("name", request.name), ("listener", request.listener)] {
            if let value, let problem = NameRule.problem(value) {
                return
                    "field \"\(field)\" `\(NameRule.printable(value))` is not a valid name: \(problem) (names are \(NameRule.description))"
            }
        }
        let (end, overflow) = (request.gpa ?? 0).addingReportingOverflow(request.size ?? 0)
        if overflow || end > Manifest.guestAddressLimit {
            return "gpa + size ends past \(Manifest.guestAddressLimitName), the guest-physical limit"
        }
        return nil
    }

    private func required<T>(_ value: T?, _ field: String, _ call: Call) -> T? {
        if value == nil { fail(call, AgentErrorBody(.badRequest, "op \(call.request.op) needs field \"\(field)\"")) }
        return value
    }

    private func notFound(_ name: String) -> AgentErrorBody {
        AgentErrorBody(
            .notFound,
            "guest \(name) does not exist on \(host.label) (agent instance \(hello.instance), started \(hello.startedAt))"
        )
    }

    private func view(_ live: LiveState) -> GuestView {
        GuestView(live: live, observation: Observer.observe(live, kernel: host.kernel))
    }

    private func log(_ run: WorkflowRun, op: AgentOp) {
        var metadata: Logger.Metadata = [
            "op": "\(op.rawValue)", "guest": "\(run.plan.guest)", "steps": "\(run.report.completed.count)",
        ]
        if let failure = run.report.failure {
            metadata["failure"] = "\(failure)"
            logger.warning("operation failed", metadata: metadata)
        } else {
            logger.info("operation done", metadata: metadata)
        }
    }

    private func answer<R: Codable & Sendable>(_ call: Call, _ result: R) {
        call.connection.respond(AgentLine.encode(AgentResponse(id: call.id, result: result)))
    }

    private func fail(_ call: Call, _ error: AgentErrorBody) {
        reply(call.connection, id: call.id, error: error)
    }

    private func reply(_ connection: AgentConnection, id: AgentRequestID?, error: AgentErrorBody) {
        connection.respond(AgentLine.encode(AgentResponse<AgentNoResult>(id: id, error: error)))
    }

}

/// What a teardown could not destroy cleanly, collected from the guests' queues.
public final class TeardownFailures: Sendable {
    private let list = Mutex<[String]>([])

    public init() {}

    public func append(_ failure: String) { list.withLock { $0.append(failure) } }
    public var all: [String] { list.withLock { $0 } }
}
