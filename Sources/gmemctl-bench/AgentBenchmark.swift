import Config
import Foundation
import GmemCore
import GmemKVM
import GmemProtocol
import GmemSimulator

#if canImport(Glibc)
import Glibc
#endif

/// Request latency through a real agent process on a Unix socket: `get` on the simulator and on /dev/kvm,
/// and a single-range `convert` (a 2 MiB range toggled between private and shared) on the simulator.
let agentBenchmark = Benchmark(
    name: "agent",
    summary:
        "agent request latency (median, p99): get on sim and kvm, 2 MiB convert on sim [--requests N] [--gmemctl PATH]"
) { options in
    let requests = try options.integer("requests", default: 2000)
    guard requests > 0 else { throw BenchError(description: "--requests must be positive") }
    let binary = options.string("gmemctl") ?? siblingGmemctl()
    print("agent benchmark: \(requests) requests per figure, one client, \(binary)")

    try withAgent(binary: binary, host: "sim:gmem-attributes2") { client in
        try apply(client, file: "examples/in-place-mixed.yaml")
        report(
            "get (sim:gmem-attributes2)",
            try timeRequests(requests) { _ in
                _ = try client.call(named(.get, "tdx-in-place"), as: GetResult.self)
            })
        report(
            "convert 2 MiB (sim:gmem-attributes2)",
            try timeRequests(requests) { index in
                var convert = named(.convert, "tdx-in-place")
                (convert.gpa, convert.size, convert.to) = (0x1000_0000, 0x20_0000, index % 2 == 0 ? .private : .shared)
                let run = try client.call(convert, as: RunResult.self)
                if let failure = run.report.failure { throw BenchError(description: "convert failed: \(failure)") }
            })
    }

    let kvmManifest = "examples/shared-in-place.yaml"
    if let reason = kvmUnavailable(for: kvmManifest) {
        print("  get (kvm): skipped, \(reason)")
        return
    }
    try withAgent(binary: binary, host: "kvm") { client in
        try apply(client, file: kvmManifest)
        report(
            "get (kvm)",
            try timeRequests(requests) { _ in
                _ = try client.call(named(.get, "shared-in-place"), as: GetResult.self)
            })
    }
}

/// Why the kvm rows cannot run here, if they cannot: /dev/kvm does not open, or this kernel lacks what the
/// manifest needs (a /dev/kvm without guest_memfd cannot build an in-place guest), as the scale benchmark
/// checks before its kvm apply rows.
private func kvmUnavailable(for file: String) -> String? {
    let (available, reason) = KVMKernel.canOpen()
    guard available else { return reason }
    let loaded = ManifestLoader.load(file: file)
    guard let manifest = loaded.manifest, loaded.isValid else { return "\(file) does not load" }
    let capabilities: Capabilities
    do { capabilities = try KVMHost().capabilities } catch { return "cannot probe /dev/kvm: \(error)" }
    let missing = CapabilityCheck.check(manifest, against: capabilities).filter { $0.severity == .error }
    guard let first = missing.first else { return nil }
    return "this kernel cannot provide what \(file) needs: \(first.summary)"
}

func named(_ op: AgentOp, _ name: String) -> AgentRequest {
    var request = AgentRequest(op: op)
    request.name = name
    return request
}

func apply(_ client: AgentClient, file: String) throws {
    var request = AgentRequest(op: .apply)
    request.manifest = try String(contentsOfFile: file, encoding: .utf8)
    request.file = file
    let result = try client.call(request, as: ApplyResult.self)
    if let failure = result.report.failure { throw BenchError(description: "apply \(file) failed: \(failure)") }
}

/// Seconds per request, in order.
private func timeRequests(_ count: Int, _ body: (Int) throws -> Void) throws -> [Double] {
    for index in 0..<min(50, count) { try body(index) }  // warm-up
    return try (0..<count).map { index in
        var start = timespec(), end = timespec()
        clock_gettime(CLOCK_MONOTONIC, &start)
        try body(index)
        clock_gettime(CLOCK_MONOTONIC, &end)
        return Double(end.tv_sec - start.tv_sec) + Double(end.tv_nsec - start.tv_nsec) * 1e-9
    }
}

private func report(_ label: String, _ samples: [Double]) {
    let sorted = samples.sorted()
    let median = sorted[sorted.count / 2]
    let p99 = sorted[min(sorted.count - 1, Int(Double(sorted.count) * 0.99))]
    let total = samples.reduce(0, +)
    print(
        "  \(label): median \(formatted(median * 1e6, 1)) us, p99 \(formatted(p99 * 1e6, 1)) us, \(formatted(Double(samples.count) / total, 0)) requests/s"
    )
}

/// Runs an agent on `host` on a socket in a fresh directory, hands a client to `body`, then stops it.
func withAgent(binary: String, host: String, _ body: (AgentClient) throws -> Void) throws {
    let directory = "/tmp/gmemctl-bench-agent-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
    mkdir(directory, 0o700)
    defer { try? FileManager.default.removeItem(atPath: directory) }
    let socket = directory + "/agent.sock"
    let process = Process()
    process.executableURL = URL(fileURLWithPath: binary)
    process.arguments = ["agent", "--socket", socket, "--host", host]
    process.standardOutput = FileHandle.nullDevice
    process.standardError = FileHandle.nullDevice
    process.standardInput = FileHandle.nullDevice
    try process.run()
    defer {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }
    let deadline = Date().addingTimeInterval(20)
    while AgentProbe.state(of: socket) != .live {
        guard process.isRunning, Date() < deadline else {
            throw BenchError(description: "the agent on \(host) did not start")
        }
        usleep(10_000)
    }
    let client = try AgentClient(socketPath: socket)
    try body(client)
    _ = try client.call(AgentRequest(op: .stop), as: StopResult.self)
    let stopDeadline = Date().addingTimeInterval(20)
    while process.isRunning && Date() < stopDeadline { usleep(10_000) }
}

/// `gmemctl` built next to this benchmark binary.
func siblingGmemctl() -> String {
    let own = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    return (own as NSString).deletingLastPathComponent + "/gmemctl"
}
