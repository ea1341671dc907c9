import ArgumentParser
import Config
import Foundation
import GmemAgent
import GmemCore
import GmemKVM
import GmemProtocol
import GmemSimulator

struct EventsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "events",
        abstract: "Print a guest's listener events (map/unmap), in order; --follow keeps printing them as they happen.",
        discussion: """
            Listeners get `unmap` before a range turns private and `map` after it turns shared. Without an agent the events the host recorded are printed (its state keeps a guest's 64 most recent); an agent keeps more (`gmemctl agent --event-history`, 1024 by default) and says when older ones were dropped. Following needs an agent.

            Examples:
              gmemctl events my-guest
              gmemctl events my-guest --follow --output json

            Exit codes: 0 success, 1 error (no such guest, no agent to follow), 64 usage.
            """)

    @Argument(help: "Guest name (metadata.name).") var name: String
    @Flag(help: "Keep printing events as they happen, until interrupted.") var follow = false
    @Option(help: "Only events with a larger sequence number.") var since: UInt64 = 0
    @OptionGroup var hostOptions: HostOptions
    @OptionGroup var agentOptions: AgentOptions
    @Option(
        help: "Output format: human (a line per event) or json (a JSON document per line, each with formatVersion).")
    var output: OutputFormat = .human

    func run() throws {
        guard let session = try AgentSession.find(agentOptions, host: hostOptions) else {
            if follow {
                throw CLIError.unavailable(
                    "following events needs a running agent (none on \(agentOptions.socketPath)); start one with `gmemctl agent`"
                )
            }
            let host = try hostOptions.open()
            let live = host.guest(named: name)
            guard live.exists || !live.blocks.isEmpty else {
                throw GuestLookup.notFound(name, among: host.guestNames(), host: host.label)
            }
            for event in live.events where event.sequence > since { try emit(event) }
            return
        }
        var request = AgentRequest.guest(.events, name: name)
        request.since = since
        request.follow = follow
        let result = try session.call(request, as: EventsResult.self, format: output)
        if let oldest = result.droppedBefore {
            printNote(
                "events #\(since + 1)-#\(oldest - 1) were dropped: the agent keeps the last \(result.kept.map(String.init) ?? "few") per guest (gmemctl agent --event-history)"
            )
        }
        for event in result.events { try emit(event) }
        guard follow else { return }
        session.client.setReadTimeout(seconds: 0)  // a follower waits as long as it takes
        while true {
            switch Result(catching: { () throws(AgentClientError) in try session.client.read(AgentEventLine.self) }) {
            case .success(let line): try emit(line.event)
            case .failure(.closed): return
            case .failure(let error): throw CLIError.unavailable("the agent on \(session.socket): \(error)")
            }
        }
    }

    private func emit(_ event: ListenerEvent) throws {
        switch output {
        case .human:
            print(
                "#\(event.sequence) \(event.kind.rawValue.padding(toLength: 5, withPad: " ", startingAt: 0)) gpa \(hex(event.gpa))-\(hex(event.gpa + event.size - 1)) (\(formatSize(event.size))) listener \(event.listener)"
            )
        case .json:
            print(try JSONOutput.encoded(EventJSON(event, guest: name, standalone: true), pretty: false))
        }
        fflush(nil)  // a follower reads line by line
    }
}
