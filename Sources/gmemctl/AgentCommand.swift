import ArgumentParser
import GmemAgent
import GmemCore
import GmemKVM
import GmemProtocol
import GmemSimulator
import Foundation
import Logging
#if canImport(Glibc)
import Glibc
#endif

struct AgentCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "agent",
        abstract: "Run the agent (a daemon that owns live guests on one host and serves the CLI on a Unix socket), or stop it.",
        discussion: """
            KVM objects die with the process that holds them. The agent is that process: `apply` on kvm starts one on demand, and the other commands talk to it while it runs. Protocol: docs/agent-protocol.md.

            Examples:
              gmemctl agent --host kvm                     # foreground; Ctrl-C stops it
              gmemctl agent --host sim:gmem-attributes2 --socket /tmp/a.sock
              gmemctl agent stop

            Exit codes: 0 stopped cleanly, 1 error (another agent runs there, cannot listen, a guest failed to tear down), 64 usage.
            """,
        subcommands: [AgentRunCommand.self, AgentStopCommand.self],
        defaultSubcommand: AgentRunCommand.self)
}

struct AgentRunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run", abstract: "Run the agent in the foreground (the default).")

    @Option(help: ArgumentHelp("Socket path (default: $XDG_RUNTIME_DIR/gmemctl/agent.sock, else /tmp/gmemctl-UID/agent.sock).", valueName: "path"))
    var socket: String?
    @OptionGroup var hostOptions: HostOptions
    @Option(help: ArgumentHelp("Seconds a listener has to answer an event before it counts as a rejection.", valueName: "seconds"))
    var listenerTimeout: Double = 30

    func run() throws {
        signal(SIGPIPE, SIG_IGN)
        let socketPath = socket ?? AgentPaths.defaultSocket()
        // A simulator agent keeps its guests in memory (they go with it, as KVM's do) unless --state names a file.
        let host = try hostOptions.open(persistent: hostOptions.state != nil)
        let hostSpec = host.spec
        var logger = Logger(label: "gmemctl.agent")
        logger[metadataKey: "pid"] = "\(getpid())"
        let service = AgentService(hostSpec: hostSpec, host: SerializedHost(host), listenerTimeout: listenerTimeout, logger: logger)
        let server = AgentServer(socketPath: socketPath, service: service, logger: logger)
        do {
            try server.start()
        } catch {
            throw CLIError(error.message)
        }
        logger.notice("agent listening", metadata: [
            "socket": "\(socketPath)", "instance": "\(service.hello.instance)", "host": "\(host.label)",
        ])

        let shutdown = AgentShutdown(service: service, server: server, logger: logger)
        service.onStopRequested = { shutdown.begin(reason: "stop requested") }
        let signals = [SIGTERM, SIGINT, SIGHUP].map { number -> DispatchSourceSignal in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { shutdown.begin(reason: "signal \(number)") }
            source.resume()
            return source
        }
        server.wait()
        shutdown.finished.wait()
        _ = signals
        if shutdown.failures > 0 { throw ExitCode.failure }
    }
}

/// Ends the agent once: every guest destroyed through the Provisioner, then the socket closed and removed.
final class AgentShutdown: @unchecked Sendable {
    private let service: AgentService
    private let server: AgentServer
    private let logger: Logger
    private let lock = NSLock()
    private var started = false
    let finished = DispatchSemaphore(value: 0)
    private(set) var failures = 0

    init(service: AgentService, server: AgentServer, logger: Logger) {
        self.service = service
        self.server = server
        self.logger = logger
    }

    func begin(reason: String) {
        let first = lock.withLock { () -> Bool in
            defer { started = true }
            return !started
        }
        guard first else { return }
        // Off the event loop: destroying guests and shutting the loop down both wait.
        DispatchQueue.global().async { [self] in
            logger.notice("agent stopping", metadata: ["reason": "\(reason)"])
            let failed = service.destroyAll()
            for failure in failed { logger.error("teardown failed", metadata: ["guest": "\(failure)"]) }
            failures = failed.count
            server.close()
            logger.notice("agent stopped", metadata: ["socket": "\(server.socketPath)"])
            finished.signal()
        }
    }
}

struct AgentStopCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stop",
        abstract: "Stop a running agent: every guest it holds is destroyed, then the socket is removed.")

    @Option(help: ArgumentHelp("The agent's socket (default as for `gmemctl agent`).", valueName: "path"))
    var socket: String?
    @Option(help: ArgumentHelp("Seconds to wait for the agent to finish.", valueName: "seconds"))
    var timeout: Double = 60

    func run() throws {
        let path = socket ?? AgentPaths.defaultSocket()
        guard AgentProbe.state(of: path) == .live else {
            throw CLIError("no agent runs on \(path)")
        }
        let session = try AgentSession.connect(path)
        let stopped = try session.call(AgentRequest(op: .stop), as: StopResult.self, format: .human)
        let deadline = Date().addingTimeInterval(timeout)
        while AgentProbe.state(of: path) != .absent && Date() < deadline { usleep(20_000) }
        guard AgentProbe.state(of: path) == .absent else {
            throw CLIError("the agent (pid \(session.hello.pid)) did not finish within \(Int(timeout)) s")
        }
        let guests = stopped.guests.isEmpty ? "no guests" : "guests destroyed: " + stopped.guests.joined(separator: ", ")
        print("agent \(session.hello.instance) (pid \(session.hello.pid)) on \(path) stopped; \(guests)")
    }
}
