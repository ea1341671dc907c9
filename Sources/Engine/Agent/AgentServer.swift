import Foundation
import Logging
import NIOCore
import NIOPosix
import GmemCore
import GmemProtocol
#if canImport(Glibc)
import Glibc
#endif

/// The agent's transport: a Unix domain socket served with SwiftNIO, 0600 in a 0700 directory, open to the
/// agent's own uid and root only (checked per connection with `SO_PEERCRED`).
public final class AgentServer: @unchecked Sendable {
    public let socketPath: String
    public let service: AgentService
    private let logger: Logger
    private let group: MultiThreadedEventLoopGroup
    private var serverChannel: Channel?
    private let agentUID = getuid()

    public init(socketPath: String, service: AgentService, logger: Logger) {
        self.socketPath = socketPath
        self.service = service
        self.logger = logger
        group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    }

    /// Binds the socket. A socket file nobody listens on is stale and replaced; a live one means another
    /// agent serves it, and this one refuses to start.
    public func start() throws(AgentSetupError) {
        let directory = (socketPath as NSString).deletingLastPathComponent
        try AgentPaths.preparePrivateDirectory(directory.isEmpty ? "." : directory)
        switch AgentProbe.state(of: socketPath) {
        case .live:
            throw AgentSetupError("another agent is already running on \(socketPath); stop it with `gmemctl agent stop --socket \(socketPath)` or choose another --socket")
        case .stale:
            logger.notice("replacing stale socket", metadata: ["socket": "\(socketPath)"])
            unlink(socketPath)
        case .absent:
            break
        case .notASocket:
            throw AgentSetupError("\(socketPath) exists and is not a socket; remove it or choose another --socket")
        }
        let service = self.service, logger = self.logger, agentUID = self.agentUID
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(LineFramer()))
                    try channel.pipeline.syncOperations.addHandler(AgentChannelHandler(service: service, logger: logger, agentUID: agentUID))
                }
            }
        // The socket is created by bind(2) with the process umask: make it 0600 from its first moment.
        let previousMask = umask(0o177)
        defer { umask(previousMask) }
        do {
            serverChannel = try bootstrap.bind(unixDomainSocketPath: socketPath).wait()
        } catch {
            throw AgentSetupError("cannot listen on \(socketPath): \(error)")
        }
        chmod(socketPath, 0o600)
    }

    /// Blocks until the server channel closes (after `close()`).
    public func wait() {
        try? serverChannel?.closeFuture.wait()
    }

    /// Stops accepting, removes the socket, and ends the event loop.
    public func close() {
        try? serverChannel?.close().wait()
        unlink(socketPath)
        try? group.syncShutdownGracefully()
    }
}

/// One connection: checks the peer, frames lines into the service, writes the service's lines back.
final class AgentChannelHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = FramedLine

    private static let idLock = NSLock()
    nonisolated(unsafe) private static var lastID: UInt64 = 0
    private let service: AgentService
    private let logger: Logger
    private let agentUID: UInt32
    private var connection: ChannelConnection?
    private var refused = false

    init(service: AgentService, logger: Logger, agentUID: UInt32) {
        self.service = service
        self.logger = logger
        self.agentUID = agentUID
    }

    func channelActive(context: ChannelHandlerContext) {
        let id = Self.idLock.withLock { () -> UInt64 in
            Self.lastID += 1
            return Self.lastID
        }
        let channel = context.channel
        let agentUID = self.agentUID
        // On the channel's own loop the option is read at once and the future is already complete.
        let peer: EventLoopFuture<PeerCredentials> = (channel as? SocketOptionProvider)?
            .unsafeGetSocketOption(level: SocketOptionLevel(SOL_SOCKET), name: SocketOptionName(SO_PEERCRED))
            ?? channel.eventLoop.makeFailedFuture(ChannelError.operationUnsupported)
        peer.whenComplete { result in
            let credentials = try? result.get()
            let refusal = credentials.map { PeerPolicy.refusal(peer: $0, agentUID: agentUID) } ?? "peer credentials unreadable"
            if let refusal {
                self.refused = true
                self.logger.warning("connection refused", metadata: ["connection": "\(id)", "reason": "\(refusal)"])
                let line = AgentLine.encode(AgentResponse<AgentNoResult>(id: nil, error: AgentErrorBody(.forbidden, "refused: \(refusal)")))
                var buffer = channel.allocator.buffer(capacity: line.count)
                buffer.writeBytes(line)
                channel.writeAndFlush(buffer).whenComplete { _ in channel.close(promise: nil) }
                return
            }
            self.connection = ChannelConnection(connectionID: id, channel: channel)
            self.logger.debug("connection", metadata: ["connection": "\(id)", "pid": "\(credentials?.pid ?? 0)", "uid": "\(credentials?.uid ?? 0)"])
        }
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !refused, let connection else { return }
        switch unwrapInboundIn(data) {
        case .line(let buffer):
            let bytes = Array(buffer.readableBytesView)
            if bytes.allSatisfy({ $0 == 32 || $0 == 9 || $0 == 13 }) { return } // blank lines are keep-alives
            service.receive(bytes, from: connection)
        case .tooLong(let bytes):
            service.receiveTooLong(bytes: bytes, from: connection)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        if let connection, !refused {
            connection.markClosed()
            service.disconnected(connection)
        }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        logger.debug("connection error", metadata: ["error": "\(error)"])
        context.close(promise: nil)
    }
}

/// A NIO channel as an `AgentConnection`: lines are written from any thread through the channel's event loop.
final class ChannelConnection: AgentConnection, @unchecked Sendable {
    let connectionID: UInt64
    private let channel: Channel
    private let lock = NSLock()
    private var closed = false

    init(connectionID: UInt64, channel: Channel) {
        self.connectionID = connectionID
        self.channel = channel
    }

    func markClosed() { lock.withLock { closed = true } }

    func send(_ line: [UInt8]) {
        guard !lock.withLock({ closed }) else { return }
        var buffer = channel.allocator.buffer(capacity: line.count)
        buffer.writeBytes(line)
        channel.writeAndFlush(buffer, promise: nil)
    }
}
