import ArgumentParser
import Foundation
import GmemAgent
import GmemCore
import GmemKVM
import GmemProtocol
import GmemSimulator
import Logging
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

struct AgentCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "agent",
        abstract:
            "Run the agent (a daemon that owns live guests on one host and serves the CLI on a Unix socket), or stop it.",
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
        commandName: "run", abstract: "Run the agent in the foreground (the default).",
        discussion: """
            SIGTERM, SIGINT (Ctrl-C) and SIGHUP stop the agent cleanly however it was started: new requests are refused, answers still awaited from listeners count as rejections, every guest is destroyed, the socket is removed, exit 0. If that takes longer than --shutdown-grace, or a second signal arrives, the agent stops at once (the kernel releases what it still holds; the socket is removed) and exits 1.

            Under systemd: socket activation (the listening socket passed as LISTEN_FDS) is used when present, READY=1, STATUS= and STOPPING=1 go to $NOTIFY_SOCKET, and logs go to the journal with syslog priorities. Units: contrib/systemd; see docs/agent.md.
            """)

    @Option(
        help: ArgumentHelp(
            "Socket path (default: $XDG_RUNTIME_DIR/gmemctl/agent.sock, else /tmp/gmemctl-UID/agent.sock). Ignored when a service manager passes the socket.",
            valueName: "path"))
    var socket: String?
    @OptionGroup var hostOptions: HostOptions
    @Option(
        help: ArgumentHelp(
            "Seconds a listener has to answer an event before it counts as a rejection.", valueName: "seconds"))
    var listenerTimeout: Double = 30
    @Option(
        help: ArgumentHelp(
            "Seconds a stop may take (destroying guests) before the agent ends at once.", valueName: "seconds"))
    var shutdownGrace: Double = 5
    @Option(
        help: ArgumentHelp(
            "Listener events kept per guest for `gmemctl events` (older ones are dropped, and said to be).",
            valueName: "count"))
    var eventHistory: Int = 1024
    enum LogFormat: String, ExpressibleByArgument, CaseIterable {
        case auto, text, journal
    }

    @Option(
        help:
            "Log format: text (timestamped lines), journal (syslog priority prefixes for the systemd journal), or auto (journal when systemd connected stderr to it)."
    )
    var logFormat: LogFormat = .auto

    func validate() throws {
        guard listenerTimeout > 0, shutdownGrace >= 0, eventHistory >= 1 else {
            throw ValidationError(
                "--listener-timeout must be positive, --shutdown-grace not negative, --event-history at least 1")
        }
    }

    func run() throws {
        signal(SIGPIPE, SIG_IGN)
        bootstrapLogging()
        let activated: Int32?
        do {
            activated = try ServiceManager.activatedSocket()
        } catch {
            throw CLIError(error.message)
        }
        let socketPath = activated.flatMap(ServiceManager.boundPath(of:)) ?? socket ?? AgentPaths.defaultSocket()
        // A simulator agent keeps its guests in memory (they go with it, as KVM's do) unless --state names a file.
        let host = try hostOptions.open(persistent: hostOptions.state != nil)
        var logger = Logger(label: "gmemctl.agent")
        logger[metadataKey: "pid"] = "\(getpid())"
        var options = AgentService.Options()
        options.listenerTimeout = listenerTimeout
        options.eventHistory = eventHistory
        options.stateFile = hostOptions.state
        let shared = SharedHost(host)
        let service = AgentService(hostSpec: host.spec, host: shared, options: options, logger: logger)
        let server = AgentServer(socketPath: socketPath, service: service, logger: logger, inheritedSocket: activated)
        let shutdown = AgentShutdown(
            service: service, server: server, host: shared, grace: shutdownGrace, logger: logger)
        // Set before serving: the handler is read on a connection's queue.
        service.onStopRequested { shutdown.request(reason: "stop requested by a client") }
        // The signal sources must live as long as the agent: libdispatch replaces the disposition of each
        // signal it watches, so a source released early (the optimizer may release an unused local at once)
        // leaves the signal swallowed and the agent unstoppable.
        let signals = AgentSignals(shutdown: shutdown)
        do {
            try server.start()
        } catch {
            throw CLIError(error.message)
        }
        logger.notice(
            "agent listening",
            metadata: [
                "socket": "\(socketPath)", "instance": "\(service.hello.instance)", "host": "\(host.label)",
                "activated": "\(activated != nil)",
            ])
        ServiceManager.notify("READY=1\nSTATUS=serving \(host.label) on \(socketPath)\nMAINPID=\(getpid())")
        let outcome = withExtendedLifetime(signals) { shutdown.waitUntilDone() }
        if outcome != .clean { throw ExitCode.failure }
    }

    private func bootstrapLogging() {
        let journal =
            logFormat == .journal
            || (logFormat == .auto && ProcessInfo.processInfo.environment["JOURNAL_STREAM"] != nil)
        guard journal else { return }
        LoggingSystem.bootstrap { JournalLogHandler(label: $0) }
    }
}

/// SIGTERM, SIGINT and SIGHUP, each watched by a dispatch source for as long as this value lives. The first
/// asks for a clean stop; a later one ends at once.
final class AgentSignals {
    private let sources: [DispatchSourceSignal]

    init(shutdown: AgentShutdown) {
        // A launcher may hand the agent these signals blocked (systemd-socket-activate execs its child with
        // its own mask, which blocks them): a blocked signal stays pending and no source ever sees it.
        // Unblock them on this (the main) thread, which waits for the stop and can always take them.
        var mask = sigset_t()
        sigemptyset(&mask)
        for number in [SIGTERM, SIGINT, SIGHUP] { sigaddset(&mask, number) }
        pthread_sigmask(SIG_UNBLOCK, &mask, nil)
        sources = [SIGTERM, SIGINT, SIGHUP].map { number in
            // Ignored first, so the default action (death without teardown) cannot run before the source
            // sees the signal; a background job of a non-interactive shell starts with SIGINT ignored anyway.
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { shutdown.request(reason: "signal \(Self.name(number))") }
            source.resume()
            return source
        }
    }

    deinit {
        for source in sources { source.cancel() }
    }

    static func name(_ number: Int32) -> String {
        switch number {
        case SIGTERM: return "SIGTERM"
        case SIGINT: return "SIGINT"
        case SIGHUP: return "SIGHUP"
        default: return "\(number)"
        }
    }
}

/// Ends the agent once: new requests refused, listener waits cancelled, every guest destroyed through the
/// Provisioner, the state written, then the socket closed and removed. Bounded by a grace period; a
/// second request (another signal) ends the wait at once.
final class AgentShutdown: Sendable {
    enum Outcome: Sendable, Equatable {
        case clean, teardownFailed, forced
    }

    private struct State {
        var requests = 0
        var reason = ""
    }

    private let service: AgentService
    private let server: AgentServer
    private let host: SharedHost
    private let grace: Double
    private let logger: Logger
    private let state = Mutex(State())
    /// Signalled for every request: the first starts the stop, a later one cuts the grace short.
    private let wake = DispatchSemaphore(value: 0)

    init(service: AgentService, server: AgentServer, host: SharedHost, grace: Double, logger: Logger) {
        self.service = service
        self.server = server
        self.host = host
        self.grace = grace
        self.logger = logger
    }

    func request(reason: String) {
        let count = state.withLock { state -> Int in
            state.requests += 1
            if state.requests == 1 { state.reason = reason }
            return state.requests
        }
        if count > 1 { logger.warning("second stop request: ending now", metadata: ["reason": "\(reason)"]) }
        wake.signal()
    }

    /// Blocks the main thread until the agent has stopped; returns how.
    func waitUntilDone() -> Outcome {
        wake.wait()
        let reason = state.withLock { $0.reason }
        ServiceManager.notify("STOPPING=1\nSTATUS=stopping: \(reason)")
        let cancelled = service.beginStopping(reason: "the agent is stopping (\(reason))")
        logger.notice(
            "agent stopping",
            metadata: [
                "reason": "\(reason)", "guests": "\(host.guestNames().count)",
                "listener answers cancelled": "\(cancelled)", "grace": "\(grace) s",
            ])
        // No new connections while guests go; a client still connected is answered `stopping`.
        server.stopAccepting()
        let group = DispatchGroup()
        let failures = TeardownFailures()
        service.destroyAll(group: group, failures: failures)
        group.notify(queue: .global()) { self.wake.signal() }
        let deadline = DispatchTime.now() + grace
        var forced = false
        while group.wait(timeout: .now()) == .timedOut {
            if DispatchTime.now() >= deadline {
                logger.error(
                    "grace period over: ending without finishing teardown",
                    metadata: ["waiting for": "\(service.busyGuests)"])
                forced = true
                break
            }
            if state.withLock({ $0.requests }) > 1 {
                logger.error("ending without finishing teardown", metadata: ["waiting for": "\(service.busyGuests)"])
                forced = true
                break
            }
            // Woken by the teardown's end, a second request, or once a second to say what it waits for.
            if wake.wait(timeout: min(deadline, .now() + 1)) == .timedOut {
                logger.notice("waiting for guests", metadata: ["busy": "\(service.busyGuests)"])
            }
        }
        let failed = failures.all
        for failure in failed { logger.error("teardown failed", metadata: ["guest": "\(failure)"]) }
        if !forced {
            do { try host.flush() } catch { logger.error("state file not written", metadata: ["error": "\(error)"]) }
        }
        // Forced: the loop may still have work queued by busy guests; the process exit releases everything.
        if forced { server.stopAccepting() } else { server.close() }
        logger.notice(
            "agent stopped", metadata: ["socket": "\(server.socketPath)", "clean": "\(!forced && failed.isEmpty)"])
        if forced { return .forced }
        return failed.isEmpty ? .clean : .teardownFailed
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
        let guests =
            stopped.guests.isEmpty ? "no guests" : "guests destroyed: " + stopped.guests.joined(separator: ", ")
        print("agent \(session.hello.instance) (pid \(session.hello.pid)) on \(path) stopped; \(guests)")
    }
}
