import Foundation
import GmemAgent
import GmemCore
import GmemKVM
import GmemProtocol
import ProcessSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A private world for one test: temp dirs for XDG_STATE_HOME and XDG_RUNTIME_DIR, the built `gmemctl`
/// binary, a real agent process on a socket there, and CLI runs in the same environment.
final class AgentHarness: @unchecked Sendable {
    typealias Output = ProcessRunner.Output

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    static var repositoryRoot: URL { GmemctlBinary.repositoryRoot }

    let directory: String
    let environment: [String: String]
    private(set) var agent: Process?

    var socket: String { AgentPaths.defaultSocket(environment: environment) }

    init() throws {
        directory =
            FileManager.default.temporaryDirectory.appendingPathComponent(
                "gmemctl-agent-\(UUID().uuidString.prefix(8))"
            ).path
        for sub in ["state", "run", "manifests"] {
            try FileManager.default.createDirectory(
                atPath: "\(directory)/\(sub)", withIntermediateDirectories: true,
                attributes: [.posixPermissions: 0o700])
        }
        var environment = ProcessInfo.processInfo.environment
        environment["XDG_STATE_HOME"] = "\(directory)/state"
        environment["XDG_RUNTIME_DIR"] = "\(directory)/run"
        environment["NO_COLOR"] = "1"
        self.environment = environment
    }

    deinit {
        // No stray agents: whatever a test left running ends here.
        if let agent, agent.isRunning {
            kill(agent.processIdentifier, SIGKILL)
            agent.waitUntilExit()
        }
        // Agents started on demand by the CLI are not our children: find them through their hello.
        if AgentProbe.state(of: socket) == .live, let client = try? AgentClient(socketPath: socket),
            let hello = try? client.call(AgentRequest(op: .hello), as: HelloResult.self)
        {
            kill(hello.pid, SIGKILL)
        }
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// The `gmemctl` executable's path (ProcessSupport finds it).
    static func binary() throws -> String { try GmemctlBinary.url().path }

    /// Starts `gmemctl agent ARGUMENTS` and waits until its socket answers.
    @discardableResult
    func startAgent(_ arguments: [String], socket: String? = nil) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try Self.binary())
        process.arguments = ["agent"] + arguments + (socket.map { ["--socket", $0] } ?? [])
        let log = logPath("agent")
        try launch(process, log: log)
        agent = process
        let path = socket ?? self.socket
        let live = Wait.until(20) { !process.isRunning || AgentProbe.state(of: path) == .live }
        guard live, process.isRunning else {
            let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            throw Failure(description: "agent did not start: " + text)
        }
        return process
    }

    /// A new log file's path in this world.
    func logPath(_ name: String) -> String { "\(directory)/\(name)-\(UUID().uuidString.prefix(4)).log" }

    /// Runs `process` in this world: its environment (plus `extra`), the repository root, stdin from
    /// /dev/null, stdout and stderr into `log`.
    func launch(_ process: Process, log: String, environment extra: [String: String] = [:]) throws {
        process.environment = environment.merging(extra) { $1 }
        process.currentDirectoryURL = Self.repositoryRoot
        FileManager.default.createFile(atPath: log, contents: nil)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        process.standardOutput = handle
        process.standardError = handle
        process.standardInput = FileHandle.nullDevice
        try process.run()
    }

    /// Runs `gmemctl ARGUMENTS` in the repository root with this world's environment.
    func run(_ arguments: [String], timeout: Double = 60) throws -> Output {
        try runBinary(try Self.binary(), arguments, timeout: timeout)
    }

    func runBinary(_ executable: String, _ arguments: [String], timeout: Double = 60) throws -> Output {
        try ProcessRunner.run(
            URL(fileURLWithPath: executable), arguments, environment: environment,
            directory: Self.repositoryRoot, timeout: timeout)
    }

    /// Writes a manifest into this world and returns its path.
    func manifest(_ name: String, _ text: String) throws -> String {
        let path = "\(directory)/manifests/\(name).yaml"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    func client(_ socket: String? = nil) throws -> AgentClient {
        let client = try AgentClient(socketPath: socket ?? self.socket)
        client.setReadTimeout(seconds: 30)
        return client
    }

    /// Open file descriptors of a process.
    static func openFDs(_ pid: Int32) -> Int {
        (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd").count) ?? -1
    }

    /// Stops the agent with `gmemctl agent stop` and waits for the process to end.
    func stopAgent(socket: String? = nil) throws -> Output {
        let output = try run(["agent", "stop"] + (socket.map { ["--socket", $0] } ?? []))
        if let agent { _ = agent.waitForExit(within: 20) }
        return output
    }
}

/// A manifest with a listener, for event ordering and rejection tests (in-place on gmem-attributes2).
func listenedManifest(name: String = "listened") -> String {
    guestManifest(name: name, listeners: ["vfio0"])
}

/// A one-block in-place guest mapped at GPA 0.
func guestManifest(
    name: String, vmType: String = "sw-protected", size: String = "64MiB", defaultState: String = "shared",
    shared: [String] = [], listeners: [String] = []
) -> String {
    manifestYAML(
        name: name, vm: vmType, blocks: ["{ name: ram, size: \(size), backend: { type: in-place } }"],
        mappings: ["{ block: ram, offset: 0, size: \(size), gpa: 0x0 }"], defaultState: defaultState,
        shared: shared, listeners: listeners)
}

extension ProcessRunner.Output {
    var all: String { stdout + stderr }
}
