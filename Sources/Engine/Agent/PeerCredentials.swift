import GmemCore
import GmemProtocol

#if canImport(Glibc)
import Glibc
#endif

/// `struct ucred` as `SO_PEERCRED` fills it (pid_t, uid_t, gid_t), as a Swift value.
public struct PeerCredentials: Sendable, Hashable {
    public var pid: Int32
    public var uid: UInt32
    public var gid: UInt32

    public init(pid: Int32, uid: UInt32, gid: UInt32) {
        self.pid = pid
        self.uid = uid
        self.gid = gid
    }
}

/// Who may talk to an agent: the user it runs as, and root. Live guest memory is as private as the
/// process that holds it; the socket's 0600 mode says the same, this check holds even if the mode is changed.
public enum PeerPolicy {
    public static func allows(peerUID: UInt32, agentUID: UInt32) -> Bool {
        peerUID == agentUID || peerUID == 0
    }

    /// Why a peer is refused, for the log and the refused client.
    public static func refusal(peer: PeerCredentials, agentUID: UInt32) -> String? {
        guard !allows(peerUID: peer.uid, agentUID: agentUID) else { return nil }
        return "uid \(peer.uid) (pid \(peer.pid)) may not use this agent: it serves uid \(agentUID) and root only"
    }
}

/// Reads `SO_PEERCRED` from a connected Unix socket.
public func peerCredentials(fd: Int32) -> PeerCredentials? {
    var credentials = PeerCredentials(pid: 0, uid: UInt32.max, gid: UInt32.max)
    var length = socklen_t(MemoryLayout<PeerCredentials>.size)
    let result = withUnsafeMutablePointer(to: &credentials) {
        getsockopt(fd, SOL_SOCKET, SO_PEERCRED, $0, &length)
    }
    return result == 0 ? credentials : nil
}
