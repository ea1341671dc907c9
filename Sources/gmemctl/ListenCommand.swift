import ArgumentParser
import Config
import Dispatch
import Foundation
import GmemCore
import GmemProtocol

#if canImport(Glibc)
import Glibc
#endif

struct ListenCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "listen",
        abstract:
            "Speak for a guest's listener (the stand-in for a device model): print each map/unmap event and answer it.",
        discussion: """
            Connects to the running agent, registers as listener L of guest NAME (L as declared in the manifest's \
            spec.listeners), prints a line when registered, then a line per event with its answer. Events are \
            accepted unless --reject-unmap or --exec says otherwise. A rejected unmap stops the conversion before \
            the kernel is asked; the agent takes a listener that does not answer within its --listener-timeout \
            (30 s) as rejecting, so --exec commands must be quick.

            --exec runs CMD with /bin/sh -c for every event, with GMEMCTL_EVENT_SEQUENCE, GMEMCTL_EVENT_KIND \
            (map or unmap), GMEMCTL_EVENT_GPA and GMEMCTL_EVENT_SIZE (hex), GMEMCTL_EVENT_LISTENER and \
            GMEMCTL_EVENT_GUEST in its environment. Exit 0 accepts; anything else rejects with the command's first \
            stderr line (or "exit status N"). Its stdout goes to gmemctl's stderr, keeping stdout for events.

            Output is flushed after every line. With --output json each line is one JSON document with \
            formatVersion and "type": "listening", then "event" (sequence, kind, gpa, size, accept, reason), and \
            "closed" when the agent ends the connection.

            Examples:
              gmemctl listen my-vm --listener vfio0
              gmemctl listen my-vm --listener vfio0 --reject-unmap 0xA0000-0xFFFFF
              gmemctl listen my-vm --listener vfio0 --reject-unmap 0x100000+2MiB --count 1
              gmemctl listen my-vm --listener vfio0 --exec './dma-ctl "$GMEMCTL_EVENT_KIND"'
              gmemctl listen my-vm --listener vfio0 --output json | jq -c .

            Exit codes: 0 after --count events, when the agent closes the connection or stops, or on SIGINT/SIGTERM; \
            1 error (no agent, no such guest, listener already connected); 64 usage.
            """)

    @Argument(help: "Guest name (metadata.name).") var name: String

    @Option(
        help: ArgumentHelp(
            "The listener to speak for, as declared in the manifest's spec.listeners.",
            valueName: "name"))
    var listener: String

    @Option(
        name: .customLong("reject-unmap"), parsing: .singleValue,
        help: ArgumentHelp(
            "Reject unmap events that overlap RANGE: START-END with an inclusive end (0xA0000-0xFFFFF) "
                + "or START+SIZE (0x100000+2MiB). Repeatable.",
            valueName: "range"))
    var rejectUnmap: [String] = []

    @Option(
        name: .customLong("exec"),
        help: ArgumentHelp(
            "Decide every event by running CMD with /bin/sh -c: exit 0 accepts, anything else rejects.",
            valueName: "cmd"))
    var command: String?

    @Option(
        help: "Output format: human (a line per event) or json (a JSON document per line, each with formatVersion).")
    var output: OutputFormat = .human

    @Option(
        name: .customLong("agent"),
        help: ArgumentHelp(
            "The agent's socket (default: $XDG_RUNTIME_DIR/gmemctl/agent.sock, else /tmp/gmemctl-UID/agent.sock).",
            valueName: "path"))
    var socket: String?

    @Option(help: ArgumentHelp("Exit 0 after answering N events.", valueName: "n"))
    var count: Int?

    func validate() throws {
        if let count, count < 1 { throw ValidationError("--count must be at least 1") }
        for text in rejectUnmap { _ = try Self.parseRejectRange(text) }
    }

    /// `START-END` (inclusive, as manifests write ranges) or `START+SIZE`, both with the manifests' number syntax.
    static func parseRejectRange(_ text: String) throws -> GuestRange {
        do {
            let parts = text.split(separator: "+", omittingEmptySubsequences: false)
            guard parts.count == 2 else { return try parseRange(text) }
            let range = GuestRange(gpa: try parseSize(String(parts[0])), size: try parseSize(String(parts[1])))
            guard range.size > 0 else {
                throw SizeParseError("range \"\(text)\" is empty", detail: "give a size above 0")
            }
            guard !range.gpa.addingReportingOverflow(range.size).overflow else {
                throw SizeParseError("range \"\(text)\" runs past 2^64", detail: "start + size must fit in 64 bits")
            }
            return range
        } catch {
            throw ValidationError("--reject-unmap \(text): \(error)")
        }
    }

    func run() throws {
        let path = socket ?? AgentPaths.defaultSocket()
        guard AgentProbe.state(of: path) == .live else {
            throw CLIError.unavailable(
                "no agent runs on \(path); start one with `gmemctl agent` (listening needs a running agent)")
        }
        let session = try AgentSession.connect(path)
        var request = AgentRequest.guest(.listen, name: name)
        request.listener = listener
        _ = try session.call(request, as: ListenResult.self, format: output)

        let policy = ListenPolicy(rejectUnmap: try rejectUnmap.map(Self.parseRejectRange), command: command)
        let stop = ListenStop(client: session.client)
        // Dispatch delivers the signals only while they are ignored; the sources must outlive the loop (a
        // source released early silently stops watching, and the signal is then simply ignored).
        let sources = [SIGINT, SIGTERM].map { number -> DispatchSourceSignal in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { stop.trigger() }
            source.resume()
            return source
        }
        try withExtendedLifetime(sources) {
            emit(
                ListenLineJSON(type: "listening", guest: name, listener: listener, socket: path),
                human: "listening as \(listener) of guest \(name) on \(path)")
            try serve(session: session, policy: policy, stop: stop)
        }
    }

    private func serve(session: AgentSession, policy: ListenPolicy, stop: ListenStop) throws {
        session.client.setReadTimeout(seconds: 0)  // a listener waits for events as long as it takes
        var answered = 0
        while count.map({ answered < $0 }) ?? true {
            let line: AgentEventLine
            switch Result(catching: { () throws(AgentClientError) in try session.client.read(AgentEventLine.self) }) {
            case .success(let read): line = read
            case .failure(.closed) where !stop.stopping:
                let stopped = AgentProbe.state(of: session.socket) != .live
                let message = stopped ? "the agent stopped" : "the agent closed the connection"
                emit(
                    ListenLineJSON(type: "closed", guest: name, listener: listener, message: message),
                    human: message + "; no longer listening")
                return
            case .failure(let error):
                if stop.stopping { return }
                throw CLIError.unavailable("the agent on \(session.socket): \(error)")
            }
            let event = line.event
            let reason = policy.decide(event, guest: line.guest, stop: stop)
            if stop.stopping { return }
            var json = ListenLineJSON(type: "event", guest: line.guest, listener: event.listener)
            (json.sequence, json.kind, json.gpa, json.size) = (
                event.sequence, event.kind.rawValue, event.gpa, event.size
            )
            (json.accept, json.reason) = (reason == nil, reason)
            let answer = reason.map { "rejected: \($0)" } ?? "accepted"
            emit(
                json,
                human: "#\(event.sequence) \(event.kind.rawValue) \(hex(event.gpa))+\(hex(event.size)) -> \(answer)")
            do {
                try session.client.send(
                    AgentLine.encode(
                        ListenerAnswer(
                            sequence: event.sequence, accept: reason == nil,
                            reason: reason)))
            } catch {
                if stop.stopping { return }
                // Gone while we answered (it stopped): the next read says so and ends the listener.
                if case .closed = error { continue }
                throw CLIError.unavailable("the agent on \(session.socket): \(error)")
            }
            answered += 1
        }
    }

    /// One line on stdout, flushed: scripts read it through a pipe as it comes.
    private func emit(_ json: ListenLineJSON, human: String) {
        switch output {
        case .human: print(human)
        case .json: print((try? JSONOutput.encoded(json, pretty: false)) ?? #"{"formatVersion":"1.0","type":"error"}"#)
        }
        fflush(nil)
    }
}

/// A line of `listen --output json`; fields absent where they do not apply to the line's type.
struct ListenLineJSON: Encodable {
    var formatVersion = JSONOutput.formatVersion
    var type: String
    var guest: String
    var listener: String
    var socket: String?
    var sequence: UInt64?
    var kind: String?
    var gpa: UInt64?
    var size: UInt64?
    var accept: Bool?
    var reason: String?
    var message: String?

    init(type: String, guest: String, listener: String, socket: String? = nil, message: String? = nil) {
        self.type = type
        self.guest = guest
        self.listener = listener
        self.socket = socket
        self.message = message
    }
}

/// How `listen` answers: nil accepts, a string is the rejection's reason.
struct ListenPolicy {
    var rejectUnmap: [GuestRange]
    var command: String?

    func decide(_ event: ListenerEvent, guest: String, stop: ListenStop) -> String? {
        if event.kind == .unmap, let range = rejectUnmap.first(where: { overlaps($0, event) }) {
            return "unmap overlaps \(formatRange(range.range)) (--reject-unmap)"
        }
        guard let command else { return nil }
        let environment = [
            "GMEMCTL_EVENT_SEQUENCE": "\(event.sequence)", "GMEMCTL_EVENT_KIND": event.kind.rawValue,
            "GMEMCTL_EVENT_GPA": hex(event.gpa), "GMEMCTL_EVENT_SIZE": hex(event.size),
            "GMEMCTL_EVENT_LISTENER": event.listener, "GMEMCTL_EVENT_GUEST": guest,
        ]
        return ShellCommand.run(command, environment: environment, stop: stop)
    }

    private func overlaps(_ range: GuestRange, _ event: ListenerEvent) -> Bool {
        let eventRange = GuestRange(gpa: event.gpa, size: event.size).range
        return range.range.overlaps(eventRange)
    }
}

/// Ends `listen` from a signal handler's queue: the blocking read returns when the socket is shut down, and a
/// running --exec command is told to stop so the answer loop does not wait for it.
final class ListenStop: @unchecked Sendable {
    private let lock = NSLock()
    private let client: AgentClient
    private var stopped = false
    private var child: pid_t?

    init(client: AgentClient) { self.client = client }

    var stopping: Bool { lock.withLock { stopped } }

    func trigger() {
        let running = lock.withLock { () -> pid_t? in
            stopped = true
            return child
        }
        if let running { kill(running, SIGTERM) }
        client.shutdown()
    }

    /// Records the running child; false when already stopping (the caller then ends it itself).
    func started(_ pid: pid_t) -> Bool {
        lock.withLock {
            child = pid
            return !stopped
        }
    }

    func ended() { lock.withLock { child = nil } }
}

/// `/bin/sh -c CMD` for one event: nil when it exits 0, else its first stderr line or its exit status.
enum ShellCommand {
    static func run(_ command: String, environment extra: [String: String], stop: ListenStop) -> String? {
        var pipeFDs: [Int32] = [-1, -1]
        guard pipe(&pipeFDs) == 0 else { return "cannot run --exec: pipe: \(String(cString: strerror(errno)))" }
        // Close-on-exec: the command gets the write end as its stderr only (dup2 clears the flag there).
        for fd in pipeFDs { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        defer { if pipeFDs[0] >= 0 { close(pipeFDs[0]) } }

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        // The command's stdout joins gmemctl's stderr: gmemctl's stdout carries only event lines.
        posix_spawn_file_actions_adddup2(&actions, 2, 1)
        posix_spawn_file_actions_adddup2(&actions, pipeFDs[1], 2)

        // gmemctl ignores SIGINT/SIGTERM (Dispatch watches them); the command gets the default actions back.
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for number in [SIGINT, SIGTERM, SIGPIPE] { sigaddset(&defaults, number) }
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGDEF))

        var environment = ProcessInfo.processInfo.environment
        environment.merge(extra) { _, new in new }
        let words: [String] = ["/bin/sh", "-c", command]
        let arguments = words.map { strdup($0) }
        let variables = environment.map { strdup("\($0.key)=\($0.value)") }
        defer { (arguments + variables).forEach { free($0) } }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, "/bin/sh", &actions, &attributes, arguments + [nil], variables + [nil])
        close(pipeFDs[1])
        guard spawned == 0 else { return "cannot run --exec: /bin/sh: \(String(cString: strerror(spawned)))" }
        if !stop.started(pid) { kill(pid, SIGTERM) }
        defer { stop.ended() }

        let firstLine = readFirstLine(pipeFDs[0])
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        // WIFEXITED/WEXITSTATUS by hand: the C macros do not reach Swift.
        let signalNumber = status & 0x7f
        let exitStatus = (status >> 8) & 0xff
        if signalNumber == 0 && exitStatus == 0 { return nil }
        if let firstLine { return firstLine }
        return signalNumber == 0 ? "exit status \(exitStatus)" : "killed by signal \(signalNumber)"
    }

    /// The first non-empty stderr line (up to 4 KiB); the rest is read and dropped so the command never blocks.
    private static func readFirstLine(_ fd: Int32) -> String? {
        var kept: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            if count <= 0 { break }
            if kept.count < 4096 { kept += chunk[..<min(count, 4096 - kept.count)] }
        }
        let text = String(decoding: kept, as: UTF8.self)
        return text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }
            .first { !$0.isEmpty }
    }
}
