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

/// Hostile and careless clients, restarts, other users, and load: the agent answers and lives on.
@Suite struct AgentRobustnessTests {
    let host = ["--host", "sim:gmem-attributes2"]

    func errorCode(_ client: AgentClient) throws -> (AgentRequestID?, AgentErrorCode?) {
        let response = try client.read(AgentResponse<AgentNoResult>.self)
        return (response.id, response.error?.code)
    }

    @Test func garbageTruncatedHugeAndUnknownRequestsGetErrorsAndTheAgentLivesOn() throws {
        let world = try AgentHarness()
        let agent = try world.startAgent(host)
        let client = try world.client()

        try client.send(Array("this is not json\n".utf8))
        #expect(try errorCode(client).1 == .badRequest)
        try client.send(Array(#"{"v":1,"id":2,"op":"get""#.utf8) + [10])  // truncated JSON
        #expect(try errorCode(client).1 == .badRequest)
        try client.send(Array(#"{"v":1,"id":3,"op":"frobnicate"}"#.utf8) + [10])
        #expect(try errorCode(client) == (.number(3), .unknownOp))
        try client.send(Array(#"{"v":2,"id":4,"op":"hello"}"#.utf8) + [10])
        #expect(try errorCode(client) == (.number(4), .unsupportedVersion))
        try client.send(Array(#"{"v":1,"id":5,"op":"convert","name":"x"}"#.utf8) + [10])
        #expect(try errorCode(client) == (.number(5), .badRequest))

        // A 100 MB line: skipped as it streams in, not buffered.
        let chunk = [UInt8](repeating: UInt8(ascii: "x"), count: 1 << 20)
        for _ in 0..<100 { try client.send(chunk) }
        try client.send([10])
        #expect(try errorCode(client).1 == .lineTooLong)
        let resident = try #require(residentMiB(agent.processIdentifier), "the agent's VmRSS is readable in /proc")
        #expect(resident < 100, "the agent did not buffer the line (\(resident) MiB resident)")

        // Same connection, still served.
        let hello = try client.call(AgentRequest(op: .hello), as: HelloResult.self)
        #expect(
            hello.protocolVersion == 1 && hello.pid == agent.processIdentifier && hello.host == "sim:gmem-attributes2")

        // A client that disconnects mid-request: the agent finishes the apply and records it.
        let quitter = try world.client()
        var apply = AgentRequest(op: .apply, id: .text("gone"))
        apply.manifest = try String(
            contentsOfFile: AgentHarness.repositoryRoot.path + "/examples/in-place-mixed.yaml", encoding: .utf8)
        apply.file = "in-place-mixed.yaml"
        try quitter.send(AgentLine.encode(apply))
        quitter.shutdown()
        let applied = try Wait.until(10) { try world.run(["get", "tdx-in-place"] + host).exitCode == 0 }
        #expect(applied, "the abandoned apply was finished")
        #expect(try world.run(["diff", "examples/in-place-mixed.yaml"] + host).exitCode == 0)
        #expect(agent.isRunning)
        #expect(try world.stopAgent().exitCode == 0)
    }

    @Test func aSecondAgentRefusesALiveSocketAndReplacesAStaleOne() throws {
        let world = try AgentHarness()
        let first = try world.startAgent(host)
        let second = try world.run(["agent"] + host, timeout: 20)
        #expect(second.exitCode == 1)
        #expect(second.all.contains("another agent is already running on \(world.socket)"), "\(second.all)")

        kill(first.processIdentifier, SIGKILL)
        first.waitUntilExit()
        #expect(AgentProbe.state(of: world.socket) == .stale)
        try world.startAgent(host)
        #expect(AgentProbe.state(of: world.socket) == .live)
        #expect(try world.stopAgent().exitCode == 0)
    }

    @Test func aRestartedAgentIsNamedWhenItsGuestsAreGone() throws {
        let world = try AgentHarness()
        let first = try world.startAgent(host)
        #expect(try world.run(["apply", "examples/in-place-mixed.yaml"] + host).exitCode == 0)
        let oldInstance = try world.client().call(AgentRequest(op: .hello), as: HelloResult.self).instance
        kill(first.processIdentifier, SIGKILL)
        first.waitUntilExit()
        try world.startAgent(host)

        let got = try world.run(["get", "tdx-in-place"] + host)
        #expect(got.exitCode == 1)
        #expect(got.stderr.contains("the agent was restarted (instance \(oldInstance), started "), "\(got.all)")
        #expect(got.stderr.contains("guests it held are gone: apply again"), "\(got.all)")
        #expect(
            try world.run(["convert", "tdx-in-place", "--gpa", "0x0", "--size", "2MiB", "--to", "shared"] + host).stderr
                .contains("the agent was restarted"))
        // Applied again, the guest is simply there.
        #expect(try world.run(["apply", "examples/in-place-mixed.yaml"] + host).exitCode == 0)
        #expect(try world.run(["get", "tdx-in-place"] + host).exitCode == 0)
        #expect(try world.stopAgent().exitCode == 0)
    }

    @Test(
        .enabled(
            if: getuid() == 0 && FileManager.default.isExecutableFile(atPath: "/usr/bin/setpriv"),
            "needs root and setpriv to connect as another user (the policy itself is unit-tested)"))
    func anotherUsersConnectionIsRefused() throws {
        let world = try AgentHarness()
        // A directory and socket others can reach, so that only the credential check stands in the way.
        let open = "/tmp/gmemctl-peer-\(getpid())-\(UInt16.random(in: 0...UInt16.max))"
        mkdir(open, 0o755)
        chmod(open, 0o755)
        defer { try? FileManager.default.removeItem(atPath: open) }
        let socket = open + "/agent.sock"
        try world.startAgent(host, socket: socket)
        chmod(socket, 0o666)

        let other = try world.runBinary(
            "/usr/bin/setpriv",
            [
                "--reuid=65534", "--regid=65534", "--clear-groups",
                try AgentHarness.binary(), "get", "--agent", socket,
            ])
        #expect(other.exitCode == 1, "\(other.all)")
        #expect(other.all.contains("uid 65534"), "\(other.all)")
        #expect(other.all.contains("may not use this agent"), "\(other.all)")
        #expect(try world.run(["get", "--agent", socket]).exitCode == 0, "root is still served")
        #expect(try world.stopAgent(socket: socket).exitCode == 0)
    }

    @Test func fiftyConcurrentClientsOnTwoGuestsWithoutFailureOrFDLeak() throws {
        let seconds = Double(ProcessInfo.processInfo.environment["GMEMCTL_AGENT_STRESS_SECONDS"] ?? "") ?? 30
        let world = try AgentHarness()
        let agent = try world.startAgent(host)
        let manifests = try ["alpha", "beta"].map { name in
            (name, try world.manifest(name, listenedManifest(name: name)))
        }
        for (_, path) in manifests { #expect(try world.run(["apply", path] + host).exitCode == 0) }
        // A connection of an apply may still be open here; it only makes the bound below looser.
        let fdsBefore = AgentHarness.openFDs(agent.processIdentifier)

        let failures = LockedList()
        let counts = LockedList()
        let deadline = Date().addingTimeInterval(seconds)
        let group = DispatchGroup()
        for index in 0..<50 {
            let (guest, path) = manifests[index % 2]
            let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
            group.enter()
            Thread {
                defer { group.leave() }
                do {
                    let client = try world.client()
                    var done = 0
                    while Date() < deadline {
                        try oneMixedRequest(client, guest: guest, manifest: text, step: index + done)
                        done += 1
                    }
                    counts.append("\(done)")
                } catch {
                    failures.append("client \(index): \(error)")
                }
            }.start()
        }
        group.wait()
        let total = counts.items.compactMap(Int.init).reduce(0, +)
        print("agent stress: 50 clients, \(Int(seconds)) s, \(total) requests, \(failures.items.count) failures")
        #expect(failures.items.isEmpty, "\(failures.items.prefix(5))")
        #expect(total > 50)

        // Closed connections are reaped by the event loop once it reads their end.
        var fdsAfter = AgentHarness.openFDs(agent.processIdentifier)
        let reaped = Wait.until(10) {
            fdsAfter = AgentHarness.openFDs(agent.processIdentifier)
            return fdsAfter <= fdsBefore
        }
        #expect(reaped, "agent fds before \(fdsBefore), after \(fdsAfter)")
        #expect(agent.isRunning)
        #expect(try world.stopAgent().exitCode == 0)
    }

    private func oneMixedRequest(_ client: AgentClient, guest: String, manifest: String, step: Int) throws {
        switch step % 6 {
        case 0, 3:
            _ = try client.call(AgentRequest.named(.get, guest), as: GetResult.self)
        case 1:
            var convert = AgentRequest.named(.convert, guest)
            convert.gpa = UInt64(step % 8) * 0x200000
            convert.size = 0x200000
            convert.to = step % 4 < 2 ? .private : .shared
            let run = try client.call(convert, as: RunResult.self)
            if let failure = run.report.failure {
                throw AgentHarness.Failure(description: "convert failed: \(failure)")
            }
        case 2:
            var diff = AgentRequest(op: .diff)
            diff.manifest = manifest
            diff.file = guest
            _ = try client.call(diff, as: DiffResult.self)
        case 4:
            _ = try client.call(AgentRequest.named(.events, guest), as: EventsResult.self)
        default:
            _ = try client.call(AgentRequest(op: .hello), as: HelloResult.self)
        }
    }

    /// The resident memory of a process, nil when /proc does not say (the check then fails, it never passes).
    private func residentMiB(_ pid: Int32) -> Double? {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
            let kib = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).compactMap({ Double($0) }).first
        else { return nil }
        return kib / 1024
    }
}

final class LockedList: @unchecked Sendable {
    private let lock = NSLock()
    private var list: [String] = []
    func append(_ item: String) { lock.withLock { list.append(item) } }
    var items: [String] { lock.withLock { list } }
}

extension AgentRequest {
    static func named(_ op: AgentOp, _ name: String) -> AgentRequest {
        var request = AgentRequest(op: op)
        request.name = name
        return request
    }
}
