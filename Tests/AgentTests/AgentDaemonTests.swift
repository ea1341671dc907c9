import Foundation
import GmemCore
import GmemProtocol
import ProcessSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The agent as a service manager and a script see it: it stops on SIGTERM, SIGINT and SIGHUP however it was
/// started, tears its guests down and removes its socket; it takes a socket from systemd and tells systemd
/// when it is ready and stopping. CI runs this suite against the release build too (GMEMCTL_BINARY), since an
/// optimised build is where a released signal source used to swallow every signal.
@Suite("Agent as a daemon", .serialized)
struct AgentDaemonTests {
    enum Launch: String, CaseIterable, CustomTestStringConvertible {
        /// A child of the test process, as a terminal's foreground job.
        case child
        /// `gmemctl agent &` in a non-interactive shell (which starts it with SIGINT ignored).
        case shellBackground
        /// `setsid gmemctl agent`: a session of its own, no controlling terminal.
        case setsid
        /// systemd-socket-activate: the listening socket handed over as LISTEN_FDS.
        case socketActivated

        var testDescription: String { rawValue }
    }

    static let signals: [Int32] = [SIGTERM, SIGINT, SIGHUP]
    static let host = ["--host", "sim:gmem-attributes2"]
    static let socketActivateTool = "/usr/bin/systemd-socket-activate"

    /// A running agent in one launch context: the wrapper process, the agent's pid, its log.
    struct Launched {
        var wrapper: Process
        var pid: Int32
        var log: String
        var launch: Launch

        /// The agent's exit status (the shell reports it as `exit=N` on stdout).
        func exitStatus(stdout: String) -> Int32? {
            guard launch == .shellBackground || launch == .socketActivated else { return wrapper.terminationStatus }
            return stdout.split(separator: "\n").last { $0.hasPrefix("exit=") }.flatMap { Int32($0.dropFirst(5)) }
        }
    }

    static func start(
        _ launch: Launch, in world: AgentHarness, socket: String, extra: [String] = [],
        environment: [String: String] = [:]
    ) throws -> Launched {
        let binary = try AgentHarness.binary()
        let agentArguments = ["agent", "--socket", socket] + host + extra
        let process = Process()
        // The shells write the agent's stderr next to their own log: `LOG.agent`.
        let log = world.logPath("agent-\(launch.rawValue)")
        switch launch {
        case .child:
            process.executableURL = URL(fileURLWithPath: binary)
            process.arguments = agentArguments
        case .shellBackground:
            process.executableURL = URL(fileURLWithPath: "/bin/bash")
            let quoted = ([binary] + agentArguments).map { "'\($0)'" }.joined(separator: " ")
            process.arguments = ["-c", "\(quoted) 2>'\(log).agent' & pid=$!; wait $pid; echo \"exit=$?\""]
        case .setsid:
            process.executableURL = URL(fileURLWithPath: "/usr/bin/setsid")
            process.arguments = ["--wait", binary] + agentArguments
        case .socketActivated:
            // Through a shell, which reports the exit status: a socket-activate child of the test process
            // itself leaves the test's later children unreaped (seen with Foundation's Process here).
            process.executableURL = URL(fileURLWithPath: "/bin/bash")
            let passed = environment.keys.sorted().flatMap { ["-E", $0] }
            let quoted = ([socketActivateTool, "-l", socket] + passed + [binary] + agentArguments).map { "'\($0)'" }
                .joined(separator: " ")
            process.arguments = ["-c", "\(quoted) 2>'\(log).agent' & pid=$!; wait $pid; echo \"exit=$?\""]
        }
        try world.launch(process, log: log, environment: environment)
        // Socket activation: the first connection makes the tool exec the agent in its own process.
        let live = Wait.until(20) { AgentProbe.state(of: socket) == .live || !process.isRunning }
        guard live, process.isRunning else {
            throw AgentHarness.Failure(
                description: "agent (\(launch)) did not start: " + Self.read(log) + Self.read(log + ".agent"))
        }
        let hello = try world.client(socket).call(AgentRequest(op: .hello), as: HelloResult.self)
        return Launched(wrapper: process, pid: hello.pid, log: log, launch: launch)
    }

    static func read(_ path: String) -> String { (try? String(contentsOfFile: path, encoding: .utf8)) ?? "" }

    static let plainLaunches: [Launch] = [.child, .shellBackground, .setsid]

    @Test("a signal stops the agent cleanly", arguments: plainLaunches, signals)
    func signalStopsTheAgent(launch: Launch, signal number: Int32) throws {
        try expectCleanStop(launch, signal: number)
    }

    @Test(
        "a signal stops a socket-activated agent cleanly",
        .enabled(
            if: FileManager.default.isExecutableFile(atPath: socketActivateTool),
            "needs systemd-socket-activate (Debian package systemd)"),
        arguments: signals)
    func signalStopsASocketActivatedAgent(signal number: Int32) throws {
        try expectCleanStop(.socketActivated, signal: number)
    }

    private func expectCleanStop(_ launch: Launch, signal number: Int32) throws {
        let world = try AgentHarness()
        let socket = "\(world.directory)/run/daemon.sock"
        let agent = try Self.start(launch, in: world, socket: socket)
        let manifest = try world.manifest("signalled", listenedManifest(name: "signalled"))
        let applied = try world.run(["apply", manifest, "--agent", socket] + Self.host)
        #expect(applied.exitCode == 0, "\(applied.all)")

        let sent = Date()
        kill(agent.pid, number)
        let ended = agent.wrapper.waitForExit(within: 2)
        let elapsed = Date().timeIntervalSince(sent)
        if !ended { kill(agent.pid, SIGKILL) }
        #expect(ended, "the agent (\(launch)) still runs 2 s after signal \(number)")
        guard ended else { return }
        let log = Self.read(agent.log) + Self.read(agent.log + ".agent")
        #expect(agent.exitStatus(stdout: Self.read(agent.log)) == 0, "exit status; log:\n\(log)")
        #expect(log.contains("guest destroyed") && log.contains("guest=signalled"), "teardown in the log:\n\(log)")
        #expect(log.contains("agent stopped"), "\(log)")
        // A service manager owns an activated socket's path; otherwise the agent removes its socket.
        #expect(AgentProbe.state(of: socket) == (launch == .socketActivated ? .stale : .absent))
        #expect(elapsed < 2)
    }

    @Test func aListenerThatNeverAnswersDoesNotHoldTheStopBeyondItsGrace() throws {
        let world = try AgentHarness()
        let socket = "\(world.directory)/run/grace.sock"
        // The listener's own timeout is far longer than the grace: only the stop can end the wait.
        let agent = try Self.start(
            .child, in: world, socket: socket, extra: ["--listener-timeout", "120", "--shutdown-grace", "1.5"])
        let manifest = try world.manifest("listened", listenedManifest())
        #expect(try world.run(["apply", manifest, "--agent", socket] + Self.host).exitCode == 0)
        let listener = try world.client(socket)
        var listen = AgentRequest(op: .listen)
        listen.name = "listened"
        listen.listener = "vfio0"
        _ = try listener.call(listen, as: ListenResult.self)

        // A conversion to private asks the listener to unmap first, and the listener never answers.
        let convert = Process()
        convert.executableURL = URL(fileURLWithPath: try AgentHarness.binary())
        convert.arguments =
            ["convert", "listened", "--gpa", "0x0", "--size", "2MiB", "--to", "private", "--agent", socket] + Self.host
        convert.environment = world.environment
        convert.standardOutput = FileHandle.nullDevice
        convert.standardError = FileHandle.nullDevice
        try convert.run()
        let event = try listener.read(AgentEventLine.self)
        #expect(event.event.kind == .unmap)

        let sent = Date()
        kill(agent.pid, SIGTERM)
        let ended = agent.wrapper.waitForExit(within: 3)
        if !ended { kill(agent.pid, SIGKILL) }
        #expect(ended, "the agent waited for the silent listener past its grace")
        #expect(Date().timeIntervalSince(sent) < 3)
        #expect(convert.waitForExit(within: 5))
        #expect(convert.terminationStatus == 1, "the conversion the listener held is refused")
        let log = Self.read(agent.log)
        #expect(log.contains("listener answers cancelled=1"), "\(log)")
        #expect(log.contains("guest=listened") && log.contains("guest destroyed"), "\(log)")
        #expect(agent.wrapper.terminationStatus == 0, "\(log)")
        #expect(AgentProbe.state(of: socket) == .absent)
    }

    @Test(
        .enabled(
            if: FileManager.default.isExecutableFile(atPath: socketActivateTool),
            "needs systemd-socket-activate (Debian package systemd)"))
    func socketActivationAndReadinessNotifications() throws {
        let world = try AgentHarness()
        let notify = try NotifySocket(path: "\(world.directory)/run/notify.sock")
        let socket = "\(world.directory)/run/activated.sock"
        let agent = try Self.start(
            .socketActivated, in: world, socket: socket, environment: ["NOTIFY_SOCKET": notify.path])
        let ready = try notify.next(within: 10)
        #expect(ready.contains("READY=1"), "\(ready)")
        #expect(ready.contains("STATUS=serving"), "\(ready)")
        #expect(ready.contains("MAINPID=\(agent.pid)"), "\(ready)")
        let hello = try world.client(socket).call(AgentRequest(op: .hello), as: HelloResult.self)
        #expect(hello.pid == agent.pid, "the activated process serves the socket itself")

        kill(agent.pid, SIGTERM)
        let stopping = try notify.next(within: 5)
        #expect(stopping.contains("STOPPING=1"), "\(stopping)")
        #expect(agent.wrapper.waitForExit(within: 5))
        #expect(agent.exitStatus(stdout: Self.read(agent.log)) == 0, "\(Self.read(agent.log + ".agent"))")
    }
}

/// A datagram socket standing in for systemd's `$NOTIFY_SOCKET`.
final class NotifySocket {
    let path: String
    private let fd: Int32

    init(path: String) throws {
        self.path = path
        fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: Array(path.utf8) + [0]) }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard fd >= 0, bound == 0 else { throw AgentHarness.Failure(description: "cannot bind \(path)") }
    }

    deinit {
        close(fd)
        unlink(path)
    }

    /// The next notification, or an error after `seconds`.
    func next(within seconds: Int) throws -> String {
        var timeout = timeval(tv_sec: seconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var buffer = [UInt8](repeating: 0, count: 4096)
        let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        guard count > 0 else { throw AgentHarness.Failure(description: "no notification within \(seconds) s") }
        return String(decoding: buffer[..<count], as: UTF8.self)
    }
}
