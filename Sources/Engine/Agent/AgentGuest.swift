import Foundation
import GmemCore
import GmemProtocol

/// Everything the agent keeps per guest name (not a memslot): the serial queue all of the guest's requests run on (one at
/// a time, in arrival order; other guests run in parallel), the ordered event log, and the clients
/// following it. Log and followers are touched only on `queue`.
final class AgentGuest: @unchecked Sendable {
    struct Follower {
        var connection: AgentConnection
        var requestID: AgentRequestID?
    }

    let name: String
    let queue: DispatchQueue
    /// Every listener event of the guest so far, in order (kept after destroy, so its final unmaps can be read).
    private(set) var log: [ListenerEvent] = []
    private var followers: [UInt64: Follower] = [:]

    init(name: String) {
        self.name = name
        queue = DispatchQueue(label: "gmemctl.agent.guest.\(name)")
    }

    func events(since: UInt64) -> [ListenerEvent] {
        log.filter { $0.sequence > since }
    }

    func follow(_ connection: AgentConnection, requestID: AgentRequestID?) {
        followers[connection.connectionID] = Follower(connection: connection, requestID: requestID)
    }

    func unfollow(_ connectionID: UInt64) {
        followers[connectionID] = nil
    }

    /// Takes the guest's events after a run and streams the new ones to followers. A guest created anew
    /// starts its sequence numbers again at 1, and its log with them.
    func record(_ events: [ListenerEvent]) {
        let known = log.last?.sequence ?? 0
        let restarted = (events.last?.sequence ?? 0) < known || (events.first.map { $0 != log.first } ?? false)
        let fresh = restarted ? events : events.filter { $0.sequence > known }
        log = restarted ? events : log + fresh
        for event in fresh {
            for follower in followers.values {
                follower.connection.send(AgentLine.encode(AgentEventLine(id: follower.requestID, guest: name, event: event)))
            }
        }
    }
}
