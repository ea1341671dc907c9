import Foundation
import GmemCore
import GmemProtocol
import ProcessSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// One client cannot stall or exhaust the agent for the others, and the CLI starts and stops agents only
/// as it can justify. CI also runs this suite against the release build (GMEMCTL_BINARY).
@Suite("Agent isolation and lifecycle", .serialized)
struct AgentIsolationTests {
    static let host = ["--host", "sim:gmem-attributes2"]

    /// A manifest of about `bytes` bytes: many shared ranges in a private guest.
    static func largeManifest(name: String, bytes: Int) -> String {
        var shared: [String] = []
        var length = 0
        while length < bytes {
            shared.append("{ gpa: 0x\(String(UInt64(shared.count) * 0x400000, radix: 16)), size: 2MiB }")
            length += shared[shared.count - 1].utf8.count + 9
        }
        return guestManifest(name: name, size: "1TiB", defaultState: "private", shared: shared)
    }

    static func rssMiB(_ pid: Int32) throws -> Double {
        let status = try String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)
        guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
            let kib = Double(line.split(separator: " ").dropFirst().first ?? "")
        else {
            throw AgentHarness.Failure(description: "no VmRSS in /proc/\(pid)/status")
        }
        return kib / 1024
    }

    static func milliseconds(_ body: () throws -> Void) rethrows -> Double {
        let start = DispatchTime.now().uptimeNanoseconds
        try body()
        return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6
    }

    /// 100 KB as the issue measured it, and 2 MB, whose parsing alone takes longer than the bound: only a
    /// parse off the event loop keeps the other client's hello fast.
    @Test(arguments: [100_000, 2_000_000])
    func aLargePlanDoesNotDelayAnotherClientsHello(bytes: Int) throws {
        let world = try AgentHarness()
        try world.startAgent(Self.host)
        // The 2 MB one ends with a mistake: the agent parses it all and answers at once, without planning.
        let text = Self.largeManifest(name: "large", bytes: bytes) + (bytes > 1_000_000 ? "  bogus: 1\n" : "")
        let planner = try world.client()
        var plan = AgentRequest(op: .plan, id: .number(7))
        (plan.manifest, plan.file) = (text, "large.yaml")
        let other = try world.client()
        _ = try other.call(AgentRequest(op: .hello), as: HelloResult.self)  // connected and served once

        try planner.send(AgentLine.encode(plan))
        let latencies = try (0..<20).map { _ in
            try Self.milliseconds { _ = try other.call(AgentRequest(op: .hello), as: HelloResult.self) }
        }
        let answer = try planner.read(AgentResponse<PlanResult>.self)
        #expect(answer.ok == (bytes < 1_000_000), "\(String(describing: answer.error))")
        let sorted = latencies.sorted()
        let median = sorted[sorted.count / 2]
        print("hello beside a \(bytes / 1000) KB plan: median \(median) ms, max \(sorted.last ?? 0) ms")
        #expect(median < 50, "hello latencies (ms) while a \(bytes / 1000) KB plan was parsed: \(sorted)")
        #expect((sorted.last ?? 0) < 250, "\(sorted)")
    }

    @Test func aClientThatPipelinesWithoutReadingIsHeldBack() throws {
        let world = try AgentHarness()
        let agent = try world.startAgent(Self.host)
        let manifest = try world.manifest("listened", listenedManifest())
        #expect(try world.run(["apply", manifest] + Self.host).exitCode == 0)
        let before = try Self.rssMiB(agent.processIdentifier)

        // 20,000 gets written as fast as the socket takes them, and none of the answers read.
        let hog = UncheckedClient(try world.client())
        let line = AgentLine.encode(AgentRequest.guestGet("listened"))
        let written = Counter()
        let writer = Thread {
            for _ in 0..<20_000 {
                guard (try? hog.client.send(line)) != nil else { return }
                written.increment()
            }
        }
        writer.start()
        // The agent stops reading from the hog: its writes stall well short of 20,000.
        let stalled = Wait.until(30) {
            let now = written.value
            return Wait.until(1) { written.value != now } == false && now > 0
        }
        #expect(stalled, "the hog's writes never stalled (\(written.value) written)")

        let other = try world.client()
        let latency = try Self.milliseconds {
            _ = try other.call(AgentRequest.guestGet("listened"), as: GetResult.self)
        }
        let rss = try Self.rssMiB(agent.processIdentifier)
        print(
            "pipelining hog: \(written.value) requests written before the agent stopped reading; agent RSS \(before) -> \(rss) MiB; another client's get \(latency) ms"
        )
        #expect(written.value < 20_000)
        #expect(latency < 1000, "another client's get took \(latency) ms")
        #expect(rss < 200, "agent RSS \(rss) MiB")
        hog.client.shutdown()
        #expect(try world.stopAgent().exitCode == 0)
    }

    @Test func aDeadAgentIsReplacedWithTheHostAndStateItServed() throws {
        let world = try AgentHarness()
        let socket = "\(world.directory)/run/sim.sock"
        let state = "\(world.directory)/state/sim-agent.json"
        let manifest = try world.manifest("listened", listenedManifest())
        let first = try world.run(["apply", manifest, "--agent", socket, "--state", state] + Self.host)
        #expect(first.exitCode == 0, "\(first.all)")
        #expect(first.stderr.contains("chosen by --host sim:gmem-attributes2"), "\(first.stderr)")
        let hello = try world.client(socket).call(AgentRequest(op: .hello), as: HelloResult.self)
        kill(hello.pid, SIGKILL)
        #expect(Wait.until(10) { AgentProbe.state(of: socket) != .live })

        // No --host: the new agent serves what the dead one served, state file included, and says why.
        let again = try world.run(["apply", manifest, "--agent", socket])
        #expect(again.exitCode == 0, "\(again.all)")
        #expect(
            again.stderr.contains("chosen by the host of the agent that served this socket before"), "\(again.stderr)")
        let replaced = try world.client(socket).call(AgentRequest(op: .hello), as: HelloResult.self)
        #expect(replaced.host == "sim:gmem-attributes2")
        #expect(replaced.stateFile == state)
        #expect(replaced.pid != hello.pid)
        #expect(try world.stopAgent(socket: socket).exitCode == 0)

        // A socket nobody served before, with nothing to say which host: no guess that turns it into kvm.
        let fresh = try world.run(["apply", manifest, "--agent", "\(world.directory)/run/fresh.sock"])
        let justified =
            fresh.exitCode == 1 && fresh.stderr.contains("give --host kvm or --host sim:PROFILE")
            || fresh.exitCode == 0 && fresh.stderr.contains("chosen by --host auto (/dev/kvm offers guest_memfd)")
        #expect(justified, "\(fresh.all)")
        if fresh.exitCode == 0 { _ = try world.stopAgent(socket: "\(world.directory)/run/fresh.sock") }
    }

    @Test(.enabled(if: access("/dev/kvm", R_OK | W_OK) == 0, "needs /dev/kvm"))
    func aFailedKVMApplyLeavesNoAgentBehind() throws {
        let world = try AgentHarness()
        // A TDX guest: the capability check fails on a host without TDX, after the agent was started.
        let manifest = try world.manifest("tdx", guestManifest(name: "tdx-nowhere", vmType: "tdx"))
        let applied = try world.run(["apply", manifest, "--host", "kvm"])
        try #require(applied.exitCode == 1, "a host with TDX would build this guest: \(applied.all)")
        #expect(applied.stderr.contains("started an agent"), "\(applied.all)")
        #expect(applied.stderr.contains("stopped the agent it started"), "\(applied.all)")
        #expect(AgentProbe.state(of: world.socket) == .absent, "the agent's socket is gone")
    }
}

/// A count shared between a writer thread and the test.
final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    func increment() { lock.withLock { count += 1 } }
    var value: Int { lock.withLock { count } }
}

/// A client handed to one writer thread (the test only shuts it down after the writes stalled).
struct UncheckedClient: @unchecked Sendable {
    let client: AgentClient
    init(_ client: AgentClient) { self.client = client }
}
