import Foundation
import GmemCore
import GmemProtocol

/// The agent's registry of listener connections: which connection speaks for listener L of guest G, and the
/// events each is waiting to answer. Delivery blocks the guest's queue (never an event loop) until the
/// listener answers, disconnects (taken as accepting: nobody is left to object), or the timeout passes
/// (taken as a rejection: a device that does not answer may still be using the range).
final class ListenerRegistry: @unchecked Sendable {
    private struct Key: Hashable {
        var guest: String
        var listener: String
    }

    private final class Pending: @unchecked Sendable {
        let answered = DispatchSemaphore(value: 0)
        var rejection: String?
    }

    private let lock = NSLock()
    private var owners: [Key: AgentConnection] = [:]
    private var pending: [Key: [UInt64: Pending]] = [:]
    /// Set when the agent stops: events are still sent (a listener learns of the teardown) but nobody waits.
    private var closingReason: String?
    private let timeout: TimeInterval

    init(timeout: TimeInterval) {
        self.timeout = timeout
    }

    /// Registers `connection` as listener `listener` of `guest`; false if another live connection holds it.
    func register(guest: String, listener: String, connection: AgentConnection) -> Bool {
        lock.withLock {
            let key = Key(guest: guest, listener: listener)
            if let owner = owners[key], owner !== connection { return false }
            // One connection may speak for several listeners, but each listener has one voice.
            owners[key] = connection
            return true
        }
    }

    /// The connection is gone: its listeners stop being asked, and whatever they had not answered is accepted.
    func disconnected(_ connection: AgentConnection) {
        let released: [Pending] = lock.withLock {
            let keys = owners.filter { $0.value === connection }.map(\.key)
            var released: [Pending] = []
            for key in keys {
                owners[key] = nil
                released += pending.removeValue(forKey: key).map { Array($0.values) } ?? []
            }
            return released
        }
        for waiter in released { waiter.answered.signal() }
    }

    /// The agent is stopping: every answer still awaited counts as a rejection with `reason` (so a conversion
    /// waiting for one ends now), and later events are sent without waiting for answers.
    func close(reason: String) -> Int {
        let released: [Pending] = lock.withLock {
            closingReason = reason
            let all = pending.values.flatMap(\.values)
            pending.removeAll()
            return all
        }
        for waiter in released {
            waiter.rejection = reason
            waiter.answered.signal()
        }
        return released.count
    }

    /// A listener's answer, read from its connection.
    func answer(_ answer: ListenerAnswer, from connection: AgentConnection) {
        let waiter: Pending? = lock.withLock {
            for (key, owner) in owners where owner === connection {
                if let waiter = pending[key]?.removeValue(forKey: answer.sequence) { return waiter }
            }
            return nil
        }
        guard let waiter else { return }
        waiter.rejection = answer.accept ? nil : (answer.reason ?? "rejected")
        waiter.answered.signal()
    }

    /// The delivery hook for one guest's runtime: asks the connected listener, if any, about each event.
    func delivery(for guest: String) -> ListenerDelivery {
        { [self] event in ask(guest: guest, event: event) }
    }

    private func ask(guest: String, event: ListenerEvent) -> String? {
        let key = Key(guest: guest, listener: event.listener)
        let waiter = Pending()
        let (owner, closing): (AgentConnection?, Bool) = lock.withLock {
            guard let owner = owners[key] else { return (nil, false) }
            if closingReason != nil { return (owner, true) }
            pending[key, default: [:]][event.sequence] = waiter
            return (owner, false)
        }
        guard let owner else { return nil }
        owner.send(AgentLine.encode(AgentEventLine(id: nil, guest: guest, event: event)))
        // Stopping: the teardown goes ahead whatever the listener says; it is told, not asked.
        if closing { return nil }
        if waiter.answered.wait(timeout: .now() + timeout) == .timedOut {
            let stillPending = lock.withLock { pending[key]?.removeValue(forKey: event.sequence) != nil }
            if stillPending { return "no answer within \(Int(timeout)) s" }
            // The answer was taken just as the wait ended: its signal is on its way.
            waiter.answered.wait()
        }
        return waiter.rejection
    }
}
