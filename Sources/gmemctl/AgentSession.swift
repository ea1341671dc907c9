import ArgumentParser
import Config
import Foundation
import GmemAgent
import GmemCore
import GmemKVM
import GmemProtocol
import GmemSimulator

/// `--agent PATH` and `--no-agent`, for the commands that talk to a running agent when there is one.
struct AgentOptions: ParsableArguments {
    @Option(
        name: .customLong("agent"),
        help: ArgumentHelp(
            "The agent's socket (default: $XDG_RUNTIME_DIR/gmemctl/agent.sock, else /tmp/gmemctl-UID/agent.sock). Commands use a running agent there; with this option one must run.",
            valueName: "path"))
    var socket: String?

    @Flag(name: .customLong("no-agent"), help: "Act on the host in this process even if an agent runs.")
    var noAgent = false

    var socketPath: String { socket ?? AgentPaths.defaultSocket() }
}

/// One command's conversation with a running agent: hello first (to match the host and notice restarts),
/// then requests whose errors become the CLI's usual messages.
final class AgentSession {
    let socket: String
    let client: AgentClient
    let hello: HelloResult
    private var memory: AgentMemory

    var hostView: HostView {
        HostView(label: "\(hello.hostLabel) via agent \(socket)", flagSet: hello.flagSet)
    }

    private init(socket: String, client: AgentClient, hello: HelloResult) {
        self.socket = socket
        self.client = client
        self.hello = hello
        memory = AgentMemory.load()
        memory.met(
            socket: socket, instance: hello.instance, startedAt: hello.startedAt, host: hello.host,
            stateFile: hello.stateFile)
        for guest in hello.guests { memory.guestExists(guest, socket: socket) }
        memory.save()
    }

    /// The running agent this command should use, or nil to act locally as before agents existed: none
    /// runs on the default socket, `--no-agent`, or the agent serves another host than `--host` names.
    static func find(_ options: AgentOptions, host: HostOptions) throws -> AgentSession? {
        let found = try lookup(options, host: host)
        if let note = found.note { printNote(note) }
        return found.session
    }

    /// `find` with its note (why the agent is not used) returned for the caller to print when it chooses.
    static func lookup(_ options: AgentOptions, host: HostOptions) throws -> (session: AgentSession?, note: String?) {
        if options.noAgent { return (nil, nil) }
        let path = options.socketPath
        if options.socket == nil && AgentProbe.state(of: path) != .live { return (nil, nil) }
        let session = try connect(path)
        if host.host != "auto" && host.host != session.hello.host {
            if options.socket != nil {
                throw CLIError(
                    "the agent on \(path) serves \(session.hello.host), not \(host.host); drop --host, or use --no-agent"
                )
            }
            return (nil, "the agent on \(path) serves \(session.hello.host); --host \(host.host) runs in this process")
        }
        return (session, nil)
    }

    /// Seconds a request may wait for its answer: short for reads, long for work that changes guests (a
    /// populate or a listener's answers take their time). `GMEMCTL_AGENT_TIMEOUT` overrides both.
    static func readTimeout(for op: AgentOp) -> Double {
        if let text = ProcessInfo.processInfo.environment["GMEMCTL_AGENT_TIMEOUT"], let seconds = Double(text),
            seconds >= 0
        {
            return seconds
        }
        switch op {
        case .apply, .convert, .destroy, .stop: return 600
        default: return 30
        }
    }

    static func connect(_ path: String) throws -> AgentSession {
        do {
            let client = try AgentClient(socketPath: path)
            client.setReadTimeout(seconds: readTimeout(for: .hello))
            let hello = try client.call(AgentRequest(op: .hello), as: HelloResult.self)
            return AgentSession(socket: path, client: client, hello: hello)
        } catch {
            throw CLIError("cannot use the agent on \(path): \(error)")
        }
    }

    /// Sends a request; an agent error is reported as the CLI reports local errors (exit 1), with manifest
    /// diagnostics in the file's terms and, for a guest lost in an agent restart, the plain reason.
    func call<R: Codable & Sendable>(
        _ request: AgentRequest, as type: R.Type, file: String? = nil, format: OutputFormat
    ) throws -> R {
        client.setReadTimeout(seconds: AgentOp(rawValue: request.op).map(Self.readTimeout(for:)) ?? 30)
        switch Result(catching: { () throws(AgentClientError) in try client.call(request, as: type) }) {
        case .success(let result):
            return result
        case .failure(.agent(let body)):
            if body.code == .notFound, let name = request.name,
                let notice = memory.restartNotice(guest: name, socket: socket)
            {
                throw CLIError.notFound(guest: name, host: hostView.label, suggestion: nil, detail: "; " + notice)
            }
            if body.code == .notFound, let name = request.name {
                throw GuestLookup.notFound(name, among: hello.guests, host: hostView.label)
            }
            try ManifestInput.report(
                ProvisionError(message: body.message, diagnostics: body.diagnostics ?? []), file: file, format: format)
        case .failure(let error):
            throw CLIError("the agent on \(socket): \(error)")
        }
    }

    /// Remembers which guests this agent instance holds, for the restart notice.
    func remember(guest: String, exists: Bool) {
        if exists { memory.guestExists(guest, socket: socket) } else { memory.guestGone(guest, socket: socket) }
        memory.save()
    }
}

extension AgentRequest {
    static func manifest(_ op: AgentOp, file: String) throws -> AgentRequest {
        var request = AgentRequest(op: op)
        guard let text = try? String(contentsOfFile: file, encoding: .utf8) else {
            throw CLIError("cannot read \(file)")
        }
        request.manifest = text
        request.file = file
        return request
    }

    static func guest(_ op: AgentOp, name: String?) -> AgentRequest {
        var request = AgentRequest(op: op)
        request.name = name
        return request
    }
}
