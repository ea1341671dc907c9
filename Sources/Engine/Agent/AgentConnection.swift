import Foundation
import GmemCore
import GmemProtocol

/// One client connection as the agent's service sees it. The transport (a NIO channel) implements it;
/// sending on a closed connection is a no-op, since the work it asked for goes on.
///
/// Every request line the transport hands over is settled exactly once, by `respond` (its response) or by
/// `settle` (a line that needs none, such as a listener's answer): the transport counts unsettled lines
/// and stops reading from a client that has too many, so one client cannot queue unbounded work.
public protocol AgentConnection: AnyObject, Sendable {
    /// Unique for the agent's lifetime, for the log and the listener and follower tables.
    var connectionID: UInt64 { get }
    /// Where this connection's lines are decoded and dispatched, one at a time in arrival order (never on
    /// the event loop, so a large manifest delays only the client that sent it).
    var lines: DispatchQueue { get }
    /// The response to one request line.
    func respond(_ line: [UInt8])
    /// A streamed line (a listener event, a followed event): not the answer to a request.
    func send(_ line: [UInt8])
    /// A request line that needs no response was handled.
    func settle()
}
