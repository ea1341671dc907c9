import GmemCore
import GmemProtocol

/// One client connection as the agent's service sees it: somewhere to send lines. The transport (a NIO
/// channel) implements it; sending on a closed connection is a no-op, since the work it asked for goes on.
public protocol AgentConnection: AnyObject, Sendable {
    /// Unique for the agent's lifetime, for the log and the listener and follower tables.
    var connectionID: UInt64 { get }
    func send(_ line: [UInt8])
}
