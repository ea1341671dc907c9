import Foundation
import GmemCore
import GmemProtocol

#if canImport(Glibc)
import Glibc
#endif

/// A bounded soak of one agent on the simulator: `--clients` clients converting and reading for `--seconds`,
/// one listener answering every event, over a loopback Unix socket only. Prints the agent's RSS and open
/// descriptors at the start, once a minute and at the end, and the requests and failures counted.
let soakBenchmark = Benchmark(
    name: "soak",
    summary:
        "agent soak on the simulator: RSS and fds over time, failures [--seconds 600] [--clients 20] [--gmemctl PATH]"
) { options in
    let seconds = try options.integer("seconds", default: 600)
    let clients = try options.integer("clients", default: 20)
    let binary = options.string("gmemctl") ?? siblingGmemctl()
    print("soak: \(clients) clients converting and reading for \(seconds) s, one listener, sim:gmem-attributes2")
    try withAgent(binary: binary, host: "sim:gmem-attributes2") { control in
        try apply(control, file: "examples/auto-listeners.yaml")
        let guest = try control.call(AgentRequest(op: .hello), as: HelloResult.self)
        let pid = guest.pid
        let name = guest.guests.first ?? "auto-listeners"
        let socket = control.socketPath
        let listener = try SoakListener(socket: socket, guest: name, listener: try declaredListener(control, name))
        let counts = SoakCounts()
        let deadline = Date().addingTimeInterval(Double(seconds))
        print("  t(s)  rss(MiB)  fds  requests  failures")
        func row(_ elapsed: Int) {
            let (done, failed) = counts.snapshot
            print(
                "  \(pad(elapsed, 4))  \(pad(Int(rssMiB(pid).rounded()), 8))  \(pad(openFDs(pid), 3))  \(pad(done, 8))  \(pad(failed, 8))"
            )
            fflush(nil)  // rows as they come, also into a file
        }
        row(0)
        let start = (rss: rssMiB(pid), fds: openFDs(pid))
        let group = DispatchGroup()
        for index in 0..<clients {
            DispatchQueue.global().async(group: group) {
                soakClient(index: index, socket: socket, guest: name, until: deadline, counts: counts)
            }
        }
        var minute = 1
        while group.wait(timeout: .now() + 1) == .timedOut {
            let elapsed = Int(Date().timeIntervalSince(deadline) + Double(seconds))
            if elapsed >= minute * 60 {
                row(elapsed)
                minute += 1
            }
        }
        row(seconds)
        let end = (rss: rssMiB(pid), fds: openFDs(pid))
        let (done, failed) = counts.snapshot
        print(
            "  agent RSS \(formatted(start.rss, 1)) -> \(formatted(end.rss, 1)) MiB (\(formatted((end.rss / start.rss - 1) * 100, 1))%), fds \(start.fds) -> \(end.fds); \(done) requests, \(failed) failures, listener answered \(listener.answered) events"
        )
        listener.close()
    }
}

private func declaredListener(_ client: AgentClient, _ guest: String) throws -> String {
    let got = try client.call(named(.get, guest), as: GetResult.self)
    guard let listener = got.guests.first?.live.listeners.first else {
        throw BenchError(description: "\(guest) declares no listener")
    }
    return listener
}

/// One client: converts a 2 MiB range of its own back and forth, then reads the guest and its events.
private func soakClient(index: Int, socket: String, guest: String, until deadline: Date, counts: SoakCounts) {
    guard let client = try? AgentClient(socketPath: socket) else { return counts.add(failed: true) }
    client.setReadTimeout(seconds: 30)
    var toPrivate = true
    while Date() < deadline {
        var convert = named(.convert, guest)
        (convert.gpa, convert.size, convert.to) = (UInt64(index) * 0x20_0000, 0x20_0000, toPrivate ? .private : .shared)
        toPrivate.toggle()
        let converted = (try? client.call(convert, as: RunResult.self))?.report.failure == nil
        let read = (try? client.call(named(.get, guest), as: GetResult.self)) != nil
        var events = named(.events, guest)
        events.since = 0
        let listed = (try? client.call(events, as: EventsResult.self)) != nil
        counts.add(failed: !(converted && read && listed), requests: 3)
    }
}

private final class SoakCounts: @unchecked Sendable {
    private let lock = NSLock()
    private var done = 0, failed = 0
    func add(failed failure: Bool, requests: Int = 1) {
        lock.withLock {
            done += requests; if failure { failed += 1 }
        }
    }
    var snapshot: (Int, Int) { lock.withLock { (done, failed) } }
}

/// A listener that accepts every event on its own thread.
private final class SoakListener: @unchecked Sendable {
    private let client: AgentClient
    private let lock = NSLock()
    private var count = 0

    init(socket: String, guest: String, listener: String) throws {
        client = try AgentClient(socketPath: socket)
        var request = named(.listen, guest)
        request.listener = listener
        _ = try client.call(request, as: ListenResult.self)
        Thread { [self] in
            while let line = try? client.read(AgentEventLine.self) {
                lock.withLock { count += 1 }
                try? client.send(AgentLine.encode(ListenerAnswer(sequence: line.event.sequence, accept: true)))
            }
        }.start()
    }

    var answered: Int { lock.withLock { count } }
    func close() { client.shutdown() }
}

private func rssMiB(_ pid: Int32) -> Double {
    let status = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
    let line = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") }
    return (line.flatMap { Double($0.split(separator: " ").dropFirst().first ?? "") } ?? 0) / 1024
}

private func openFDs(_ pid: Int32) -> Int {
    (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd").count) ?? -1
}

private func pad(_ value: Int, _ width: Int) -> String {
    let text = String(value)
    return String(repeating: " ", count: max(0, width - text.count)) + text
}
