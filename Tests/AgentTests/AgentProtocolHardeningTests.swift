import Foundation
import GmemCore
import GmemProtocol
import ProcessSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Listener numbering, request decoding and who may listen, against a real agent process.
@Suite struct AgentProtocolHardeningTests {
    typealias Listener = AgentListenerTests.Listener
    static let host = ["--host", "sim:gmem-attributes2"]

    func events(_ world: AgentHarness, _ guest: String, since: UInt64 = 0) throws -> EventsResult {
        var request = AgentRequest(op: .events)
        request.name = guest
        request.since = since
        return try world.client().call(request, as: EventsResult.self)
    }

    @Test func sequenceNumbersAreNeverReusedAfterARejectionOrARecreate() throws {
        let world = try AgentHarness()
        try world.startAgent(Self.host)
        let manifest = try world.manifest("listened", listenedManifest())
        #expect(try world.run(["apply", manifest] + Self.host).exitCode == 0)
        let listener = try Listener(world: world, guest: "listened", name: "vfio0") { event in
            event.kind == .unmap && event.gpa == 0x400000 ? "busy" : nil
        }
        defer { listener.close() }

        let rejected = try world.run(
            ["convert", "listened", "--gpa", "0x400000", "--size", "2MiB", "--to", "private"] + Self.host)
        #expect(rejected.exitCode == 1, "\(rejected.all)")
        let accepted = try world.run(
            ["convert", "listened", "--gpa", "0x600000", "--size", "2MiB", "--to", "private"] + Self.host)
        #expect(accepted.exitCode == 0, "\(accepted.all)")
        let asked = listener.events
        #expect(asked.count == 2, "\(asked)")
        if asked.count == 2 {
            #expect(
                asked[1].sequence == asked[0].sequence + 1,
                "the rejected event's number is not handed out again: \(asked)")
            #expect(asked[1].gpa == 0x600000)
        }

        // Destroy and re-create: the new guest's events continue the numbering.
        let before = try events(world, "listened").events.map(\.sequence).max() ?? 0
        #expect(try world.run(["destroy", "listened"] + Self.host).exitCode == 0)
        #expect(try world.run(["apply", manifest] + Self.host).exitCode == 0)
        let after = try events(world, "listened", since: before).events
        #expect(!after.isEmpty, "the re-created guest's shared range is announced (map)")
        #expect(after.allSatisfy { $0.sequence > before }, "numbers continue past \(before): \(after.map(\.sequence))")
        #expect(after.map(\.sequence) == after.map(\.sequence).sorted())
        let all = try events(world, "listened").events.map(\.sequence)
        #expect(Set(all).count == all.count, "no number twice: \(all)")
    }

    @Test func historyIsBoundedAndTheDropIsReported() throws {
        let world = try AgentHarness()
        try world.startAgent(Self.host + ["--event-history", "4"])
        let manifest = try world.manifest("listened", listenedManifest())
        #expect(try world.run(["apply", manifest] + Self.host).exitCode == 0)
        for index in 0..<4 {
            let gpa = "0x\(String(index * 0x200000, radix: 16))"
            #expect(
                try world.run(["convert", "listened", "--gpa", gpa, "--size", "2MiB", "--to", "private"] + Self.host)
                    .exitCode == 0)
        }
        let kept = try events(world, "listened")
        #expect(kept.events.count == 4, "\(kept.events)")
        #expect(kept.droppedBefore == kept.events.first?.sequence)
        let printed = try world.run(["events", "listened"] + Self.host)
        #expect(printed.stderr.contains("were dropped"), "\(printed.all)")
        // A get carries only the guest's most recent events, not its history.
        let got = try world.client().call(AgentRequest.guestGet("listened"), as: GetResult.self)
        #expect((got.guests.first?.live.events.count ?? .max) <= LiveState.recentEventLimit)
    }

    @Test func errorsEchoTheIDAndNameTheField() throws {
        let world = try AgentHarness()
        try world.startAgent(Self.host)
        let client = try world.client()
        func answer(_ line: String) throws -> AgentResponse<AgentNoResult> {
            try client.send(Array(line.utf8) + [10])
            return try client.read(AgentResponse<AgentNoResult>.self)
        }
        let negative = try answer(#"{"v":1,"id":41,"op":"convert","name":"g","gpa":-1,"size":4096,"to":"private"}"#)
        #expect(negative.id == .number(41))
        #expect(negative.error?.code == .badRequest)
        #expect(negative.error?.message.contains("field \"gpa\"") == true, "\(String(describing: negative.error))")
        let oversized = try answer(
            #"{"v":1,"id":"big","op":"convert","name":"g","gpa":1,"size":99999999999999999999999,"to":"private"}"#)
        #expect(oversized.id == .text("big"))
        #expect(oversized.error?.message.contains("field \"size\"") == true, "\(String(describing: oversized.error))")
        let duplicate = try answer(#"{"v":1,"id":43,"op":"get","op":"stop"}"#)
        #expect(duplicate.id == .number(43))
        #expect(
            duplicate.error?.message.contains("\"op\" appears twice") == true, "\(String(describing: duplicate.error))")
        let escaped = try answer(#"{"v":1,"id":44,"op":"get","o\u0070":"stop"}"#)
        #expect(escaped.error?.message.contains("appears twice") == true, "an escaped key is the same key")
        let wrongType = try answer(#"{"v":1,"id":45,"op":"get","name":7}"#)
        #expect(wrongType.id == .number(45))
        #expect(wrongType.error?.message.contains("field \"name\"") == true, "\(String(describing: wrongType.error))")
        // Still serving after all of that.
        #expect(
            try client.call(AgentRequest(op: .hello), as: HelloResult.self).protocolVersion == AgentProtocol.version)
    }

    /// What validates offline is what the agent accepts, and nothing a client sends can trap it.
    @Test func hostileValuesAreRefusedAndTheAgentServesOn() throws {
        let world = try AgentHarness()
        let agent = try world.startAgent(Self.host)
        let client = try world.client()
        func expectRefused(_ request: AgentRequest, _ code: AgentErrorCode, _ words: String) {
            do {
                _ = try client.call(request, as: AgentNoResult.self)
                Issue.record("accepted: \(request)")
            } catch .agent(let body) {
                #expect(body.code == code, "\(body)")
                #expect(
                    body.message.contains(words)
                        || (body.diagnostics ?? []).contains { $0.description.contains(words) }, "\(body)")
            } catch {
                Issue.record("\(error)")
            }
        }
        let huge = try String(
            contentsOfFile: AgentHarness.repositoryRoot.appendingPathComponent("Fuzz/regressions/two-to-the-63.yaml")
                .path, encoding: .utf8)
        var plan = AgentRequest(op: .plan)
        (plan.manifest, plan.file) = (huge, "two-to-the-63.yaml")
        expectRefused(plan, .invalidManifest, "2^57")
        var convert = AgentRequest(op: .convert)
        (convert.name, convert.gpa, convert.size, convert.to) = ("g", 0x1000, 1 << 63, .private)
        expectRefused(convert, .badRequest, "guest-physical limit")
        for name in ["esc\u{1B}[31m", "nul\u{0}", "line\nbreak"] {
            var get = AgentRequest(op: .get)
            get.name = name
            expectRefused(get, .badRequest, "is not a valid name")
        }
        #expect(try client.call(AgentRequest(op: .hello), as: HelloResult.self).pid == agent.processIdentifier)
    }

    @Test func onlyDeclaredListenersOfExistingGuestsMayListen() throws {
        let world = try AgentHarness()
        try world.startAgent(Self.host)
        let client = try world.client()
        func listen(_ guest: String, _ listener: String) -> AgentClientError? {
            var request = AgentRequest(op: .listen)
            (request.name, request.listener) = (guest, listener)
            do {
                _ = try client.call(request, as: ListenResult.self)
                return nil
            } catch {
                return error
            }
        }
        // Nobody can hold a listener of a guest before it exists.
        guard case .agent(let early)? = listen("listened", "vfio0") else {
            Issue.record("listening to a guest that does not exist was accepted")
            return
        }
        #expect(early.code == .notFound)
        let manifest = try world.manifest("listened", listenedManifest())
        #expect(try world.run(["apply", manifest] + Self.host).exitCode == 0)
        guard case .agent(let undeclared)? = listen("listened", "gpu9") else {
            Issue.record("an undeclared listener was accepted")
            return
        }
        #expect(undeclared.message.contains("declares vfio0"), "\(undeclared.message)")
        #expect(listen("listened", "vfio0") == nil)
    }

    @Test func aSocketDirectoryTheAgentCreatesIsPrivate() throws {
        let world = try AgentHarness()
        let previous = umask(0o022)
        defer { umask(previous) }
        let socket = "\(world.directory)/fresh/nested/agent.sock"
        try world.startAgent(Self.host, socket: socket)
        var status = stat()
        #expect(stat("\(world.directory)/fresh/nested", &status) == 0)
        #expect(status.st_mode & 0o777 == 0o700, "mode \(String(status.st_mode & 0o777, radix: 8))")
        // The socket itself is 0600 whatever the umask: bind creates it under a umask of 0177.
        #expect(stat(socket, &status) == 0)
        #expect(status.st_mode & 0o777 == 0o600, "mode \(String(status.st_mode & 0o777, radix: 8))")
        _ = try world.stopAgent(socket: socket)
    }
}

extension AgentClientError: Equatable {
    public static func == (lhs: AgentClientError, rhs: AgentClientError) -> Bool { lhs.description == rhs.description }
}

extension AgentRequest {
    static func guestGet(_ name: String) -> AgentRequest {
        var request = AgentRequest(op: .get)
        request.name = name
        return request
    }
}
