import Foundation
import GmemCore
import GmemProtocol

/// Everything the agent keeps per guest name (not a memslot): the serial queue all of the guest's requests
/// run on (one at a time, in arrival order; other guests run in parallel), a bounded ring of its latest
/// events, the last event number used (kept across destroy and re-create, so numbers are never reused), the
/// clients following it, and what it is busy with (for the shutdown log). Touched only on `queue`, except
/// `busy`, which the shutdown reads from outside.
final class AgentGuest: @unchecked Sendable {
    struct Follower {
        var connection: AgentConnection
        var requestID: AgentRequestID?
    }

    let name: String
    let queue: DispatchQueue
    private let capacity: Int
    /// The ring: `ring[(start + i) % capacity]` is the i-th oldest kept event.
    private var ring: [ListenerEvent] = []
    private var start = 0
    /// Events dropped from the ring so far (the oldest ones).
    private(set) var dropped: UInt64 = 0
    private(set) var lastSequence: UInt64 = 0
    private var followers: [UInt64: Follower] = [:]
    private let busyLock = NSLock()
    private var busyWith: String?

    init(name: String, capacity: Int) {
        self.name = name
        self.capacity = max(1, capacity)
        queue = DispatchQueue(label: "gmemctl.agent.guest.\(name)")
    }

    var isEmpty: Bool { ring.isEmpty }

    /// The kept events with a number above `since`, oldest first, and whether older ones asked for were
    /// dropped from the ring (their numbers lie between `since` and the first one returned).
    func events(since: UInt64) -> (events: [ListenerEvent], droppedBefore: UInt64?) {
        let kept = (0..<ring.count).lazy.map { self.ring[(self.start + $0) % self.ring.count] }
        let events = kept.filter { $0.sequence > since }
        let oldest = kept.first?.sequence
        let lost = dropped > 0 && oldest.map { since + 1 < $0 } == true
        return (Array(events), lost ? oldest : nil)
    }

    func follow(_ connection: AgentConnection, requestID: AgentRequestID?) {
        followers[connection.connectionID] = Follower(connection: connection, requestID: requestID)
    }

    func unfollow(_ connectionID: UInt64) {
        followers[connectionID] = nil
    }

    /// Takes the events a run delivered, keeps the latest in the ring and streams them to followers. Also
    /// notes the run's last number, which a rejected event may have used without being delivered.
    func record(_ events: [ListenerEvent], lastSequence runLast: UInt64?) {
        lastSequence = max(lastSequence, runLast ?? 0, events.last?.sequence ?? 0)
        for event in events {
            if ring.count < capacity {
                ring.append(event)
            } else {
                ring[start] = event
                start = (start + 1) % capacity
                dropped += 1
            }
            for follower in followers.values {
                follower.connection.send(
                    AgentLine.encode(AgentEventLine(id: follower.requestID, guest: name, event: event)))
            }
        }
    }

    /// What a request of this guest is doing right now, for the shutdown log (nil: idle).
    var busy: String? {
        get { busyLock.withLock { busyWith } }
        set { busyLock.withLock { busyWith = newValue } }
    }
}
