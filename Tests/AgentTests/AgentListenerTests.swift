import Foundation
import GmemAgent
import GmemCore
import GmemKVM
import GmemProtocol
import ProcessSupport
import Testing

/// Listeners on the agent: the order of map/unmap around conversions, and a rejected unmap stopping one.
@Suite struct AgentListenerTests {
    /// A listener connection answering every event with `decide`, recording what it saw.
    final class Listener: @unchecked Sendable {
        let client: AgentClient
        private let lock = NSLock()
        private var seen: [ListenerEvent] = []

        init(
            world: AgentHarness, guest: String, name: String, decide: @escaping @Sendable (ListenerEvent) -> String?
        ) throws {
            client = try world.client()
            var request = AgentRequest(op: .listen)
            request.name = guest
            request.listener = name
            _ = try client.call(request, as: ListenResult.self)
            client.setReadTimeout(seconds: 0)
            Thread { [self] in
                while let line = try? client.read(AgentEventLine.self) {
                    lock.withLock { seen.append(line.event) }
                    let reason = decide(line.event)
                    try? client.send(
                        AgentLine.encode(
                            ListenerAnswer(sequence: line.event.sequence, accept: reason == nil, reason: reason)))
                }
            }.start()
        }

        var events: [ListenerEvent] { lock.withLock { seen } }
        func close() { client.shutdown() }
    }

    func events(_ world: AgentHarness, _ guest: String) throws -> [ListenerEvent] {
        var request = AgentRequest(op: .events)
        request.name = guest
        return try world.client().call(request, as: EventsResult.self).events
    }

    @Test func orderingOfToPrivateAndToSharedConversions() throws {
        let world = try AgentHarness()
        let host = ["--host", "sim:gmem-attributes2"]
        try world.startAgent(host)
        let manifest = try world.manifest("listened", listenedManifest())
        #expect(try world.run(["apply", manifest] + host).exitCode == 0)
        let listener = try Listener(world: world, guest: "listened", name: "vfio0") { _ in nil }
        defer { listener.close() }
        let before = try events(world, "listened").count
        // A follower sees the same events streamed as they happen.
        let follower = try world.client()
        var follow = AgentRequest(op: .events)
        (follow.name, follow.since, follow.follow) = ("listened", UInt64(before), true)
        let followed = try follower.call(follow, as: EventsResult.self)
        #expect(followed.following && followed.events.isEmpty)

        // To private: unmap BEFORE the kernel converts.
        let toPrivate = try world.run(
            ["convert", "listened", "--gpa", "0x200000", "--size", "2MiB", "--to", "private", "--output", "json"] + host
        )
        #expect(toPrivate.exitCode == 0, "\(toPrivate.all)")
        let privateCalls = operationCalls(toPrivate.stdout)
        #expect(privateCalls == ["notify unmap", "KVM_SET_MEMORY_ATTRIBUTES2"], "\(privateCalls)")

        // To shared: map AFTER the kernel converts.
        let toShared = try world.run(
            ["convert", "listened", "--gpa", "0x200000", "--size", "2MiB", "--to", "shared", "--output", "json"] + host)
        #expect(toShared.exitCode == 0, "\(toShared.all)")
        #expect(operationCalls(toShared.stdout) == ["KVM_SET_MEMORY_ATTRIBUTES2", "notify map"])

        let recorded = try events(world, "listened").dropFirst(before)
        #expect(recorded.map(\.kind) == [.unmap, .map])
        #expect(recorded.allSatisfy { $0.gpa == 0x200000 && $0.size == 0x200000 && $0.listener == "vfio0" })
        #expect(recorded.map(\.sequence) == recorded.map(\.sequence).sorted(), "sequences ascend")
        // The connected listener was asked about exactly these, in the same order.
        #expect(listener.events.map(\.sequence) == recorded.map(\.sequence))
        let streamed = try (0..<2).map { _ in try follower.read(AgentEventLine.self) }
        #expect(streamed.map(\.event) == Array(recorded))
        #expect(
            streamed.allSatisfy { $0.id == .number(1) && $0.guest == "listened" },
            "the lines carry the events request's id")

        // `gmemctl events` prints the same stream, one line per event.
        let printed = try world.run(["events", "listened", "--since", "\((recorded.first?.sequence ?? 1) - 1)"] + host)
        let lines = printed.stdout.split(separator: "\n")
        #expect(lines.count == 2, "\(printed.all)")
        #expect(lines.first?.contains("unmap gpa 0x200000-0x3fffff") == true, "\(printed.stdout)")
        #expect(lines.last?.contains("map") == true && lines.last?.contains("unmap") == false)
        let json = try world.run(["events", "listened", "--output", "json"] + host)
        #expect(
            json.stdout.split(separator: "\n").allSatisfy { $0.hasPrefix("{\"formatVersion\":\"1.0\",\"gpa\"") },
            "\(json.stdout)")
    }

    @Test func rejectedUnmapStopsTheConversion() throws {
        let world = try AgentHarness()
        let host = ["--host", "sim:gmem-attributes2"]
        try world.startAgent(host)
        let manifest = try world.manifest("listened", listenedManifest())
        #expect(try world.run(["apply", manifest] + host).exitCode == 0)
        let listener = try Listener(world: world, guest: "listened", name: "vfio0") { event in
            event.kind == .unmap ? "DMA still mapped" : nil
        }
        defer { listener.close() }

        let refused = try world.run(
            ["convert", "listened", "--gpa", "0x400000", "--size", "2MiB", "--to", "private"] + host)
        #expect(refused.exitCode == 1, "\(refused.all)")
        #expect(refused.all.contains("rejected unmap"), "\(refused.all)")
        #expect(refused.all.contains("DMA still mapped"), "\(refused.all)")
        // State unchanged: no drift, the failure recorded on the guest, the kernel never asked.
        #expect(try world.run(["diff", manifest] + host).exitCode == 0)
        let got = try world.run(["get", "listened"] + host)
        #expect(got.stdout.contains("last operation did not finish"), "\(got.stdout)")
        #expect(got.stdout.contains("rejected unmap"), "\(got.stdout)")

        // A listener that disconnects is taken as accepting.
        // Until the agent has read the close, the listener still counts; a refused retry changes nothing.
        listener.close()
        let accepted = try Wait.until(10) {
            try world.run(["convert", "listened", "--gpa", "0x400000", "--size", "2MiB", "--to", "private"] + host)
                .exitCode == 0
        }
        #expect(accepted, "the conversion was still refused 10 s after the listener disconnected")
        #expect(try world.run(["diff", manifest] + host).exitCode == 2)
    }

    /// The `call` of each operation in a JSON run document, in order.
    private func operationCalls(_ json: String) -> [String] {
        guard let document = try? JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any],
            let plan = document["plan"] as? [String: Any],
            let operations = plan["operations"] as? [[String: Any]]
        else { return [] }
        return operations.compactMap { $0["call"] as? String }
    }
}
