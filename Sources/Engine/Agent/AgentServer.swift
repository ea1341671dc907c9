import Foundation
import GmemCore
import GmemProtocol
import Logging
import NIOCore
import NIOPosix
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The agent's transport: a Unix domain socket served with SwiftNIO, 0600 in a 0700 directory, open to the
/// agent's own uid and root only (checked per connection with `SO_PEERCRED`). The socket is bound here, or
/// handed over already listening by a service manager (systemd socket activation).
public final class AgentServer: @unchecked Sendable {
    /// Lines a client may have outstanding (read but not yet answered) before the agent stops reading from
    /// it until answers drain.
    public static let maxOutstandingLines = 64
    /// Bytes the agent buffers for a client that does not read (responses and streamed events) before it
    /// drops the connection.
    public static let maxBufferedBytes = 32 << 20

    public let socketPath: String
    public let service: AgentService
    private let logger: Logger
    private let group: MultiThreadedEventLoopGroup
    private var serverChannel: Channel?
    private let agentUID = getuid()
    /// A listening socket inherited from a service manager; the manager owns its path, so it is not removed.
    private let inherited: Int32?

    /// - Parameter inheritedSocket: a descriptor already bound and listening (socket activation), or nil to
    ///   bind `socketPath`.
    public init(socketPath: String, service: AgentService, logger: Logger, inheritedSocket: Int32? = nil) {
        self.socketPath = socketPath
        self.service = service
        self.logger = logger
        inherited = inheritedSocket
        group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    }

    /// Binds the socket. A socket file nobody listens on is stale and replaced; a live one means another
    /// agent serves it, and this one refuses to start.
    public func start() throws(AgentSetupError) {
        let service = self.service, logger = self.logger, agentUID = self.agentUID
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .childChannelOption(.writeBufferWaterMark, value: .init(low: 256 << 10, high: 1 << 20))
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(LineFramer()))
                    try channel.pipeline.syncOperations.addHandler(
                        AgentChannelHandler(service: service, logger: logger, agentUID: agentUID))
                }
            }
        if let inherited {
            do {
                serverChannel = try bootstrap.withBoundSocket(inherited).wait()
            } catch {
                throw AgentSetupError(
                    "cannot serve the socket handed over by the service manager (fd \(inherited)): \(error)")
            }
            return
        }
        let directory = (socketPath as NSString).deletingLastPathComponent
        try AgentPaths.preparePrivateDirectory(directory.isEmpty ? "." : directory)
        switch AgentProbe.state(of: socketPath) {
        case .live:
            throw AgentSetupError(
                "another agent is already running on \(socketPath); stop it with `gmemctl agent stop --socket \(socketPath)` or choose another --socket"
            )
        case .stale:
            logger.notice("replacing stale socket", metadata: ["socket": "\(socketPath)"])
            unlink(socketPath)
        case .absent:
            break
        case .notASocket:
            throw AgentSetupError("\(socketPath) exists and is not a socket; remove it or choose another --socket")
        }
        // The socket is created by bind(2) with the process umask: make it 0600 from its first moment. No
        // chmod afterwards: the socket already serves by then, and a late chmod would race with an operator
        // who widens the mode on purpose (and did, in a test, on a loaded machine).
        let previousMask = umask(0o177)
        defer { umask(previousMask) }
        do {
            serverChannel = try bootstrap.bind(unixDomainSocketPath: socketPath).wait()
        } catch {
            throw AgentSetupError("cannot listen on \(socketPath): \(error)")
        }
    }

    /// Blocks until the server channel closes (after `close()`).
    public func wait() {
        try? serverChannel?.closeFuture.wait()
    }

    /// Stops accepting and removes the socket (unless a service manager owns it).
    public func stopAccepting() {
        try? serverChannel?.close().wait()
        if inherited == nil { unlink(socketPath) }
    }

    /// Stops accepting, removes the socket, and ends the event loop.
    public func close() {
        stopAccepting()
        try? group.syncShutdownGracefully()
    }
}

/// One connection: checks the peer, frames lines into the service, writes the service's lines back, and
/// holds back reading while the client has too many lines outstanding or is not reading its answers.
final class AgentChannelHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = FramedLine

    private static let lastID = Atomic<UInt64>(0)
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
        let id = Self.lastID.wrappingAdd(1, ordering: .relaxed).newValue
        let channel = context.channel
        let agentUID = self.agentUID
        // On the channel's own loop the option is read at once and the future is already complete.
        let peer: EventLoopFuture<PeerCredentials> =
            (channel as? SocketOptionProvider)?
            .unsafeGetSocketOption(level: SocketOptionLevel(SOL_SOCKET), name: SocketOptionName(SO_PEERCRED))
            ?? channel.eventLoop.makeFailedFuture(ChannelError.operationUnsupported)
        peer.whenComplete { result in
            let credentials = try? result.get()
            let refusal =
                credentials.map { PeerPolicy.refusal(peer: $0, agentUID: agentUID) } ?? "peer credentials unreadable"
            if let refusal {
                self.refused = true
                self.logger.warning("connection refused", metadata: ["connection": "\(id)", "reason": "\(refusal)"])
                let line = AgentLine.encode(
                    AgentResponse<AgentNoResult>(id: nil, error: AgentErrorBody(.forbidden, "refused: \(refusal)")))
                var buffer = channel.allocator.buffer(capacity: line.count)
                buffer.writeBytes(line)
                channel.writeAndFlush(buffer).whenComplete { _ in channel.close(promise: nil) }
                return
            }
            self.connection = ChannelConnection(connectionID: id, channel: channel, logger: self.logger)
            self.logger.debug(
                "connection",
                metadata: ["connection": "\(id)", "pid": "\(credentials?.pid ?? 0)", "uid": "\(credentials?.uid ?? 0)"])
        }
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !refused, let connection else { return }
        switch unwrapInboundIn(data) {
        case .line(let buffer):
            let bytes = Array(buffer.readableBytesView)
            if bytes.allSatisfy({ $0 == 32 || $0 == 9 || $0 == 13 }) { return }  // blank lines are keep-alives
            connection.lineArrived()
            service.receive(bytes, from: connection)
        case .tooLong(let bytes):
            connection.lineArrived()
            service.receiveTooLong(bytes: bytes, from: connection)
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        connection?.writabilityChanged()
        context.fireChannelWritabilityChanged()
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

/// A NIO channel as an `AgentConnection`. Lines are written from any thread through the channel's event
/// loop; the flow-control counters live on that loop only (every change is made there).
final class ChannelConnection: AgentConnection, @unchecked Sendable {
    let connectionID: UInt64
    let lines: DispatchQueue
    private let channel: Channel
    private let logger: Logger
    private let closed = Atomic<Bool>(false)
    // Event-loop state.
    private var outstanding = 0
    private var bufferedBytes = 0
    private var readingPaused = false

    init(connectionID: UInt64, channel: Channel, logger: Logger) {
        self.connectionID = connectionID
        self.channel = channel
        self.logger = logger
        lines = DispatchQueue(label: "gmemctl.agent.connection.\(connectionID)")
    }

    func markClosed() { closed.store(true, ordering: .relaxed) }

    /// On the event loop: one more line read. Too many unanswered: stop reading until answers drain.
    func lineArrived() {
        outstanding += 1
        updateReading()
    }

    /// On the event loop.
    func writabilityChanged() { updateReading() }

    func respond(_ line: [UInt8]) { write(line, settles: true) }
    func send(_ line: [UInt8]) { write(line, settles: false) }

    func settle() {
        channel.eventLoop.execute {
            self.outstanding -= 1
            self.updateReading()
        }
    }

    private func write(_ line: [UInt8], settles: Bool) {
        guard !closed.load(ordering: .relaxed) else {
            if settles { settle() }
            return
        }
        let channel = self.channel
        channel.eventLoop.execute {
            if settles { self.outstanding -= 1 }
            // A client that reads nothing while events stream to it would make the agent buffer without end.
            guard self.bufferedBytes + line.count <= AgentServer.maxBufferedBytes else {
                self.logger.warning(
                    "closing a connection that does not read",
                    metadata: [
                        "connection": "\(self.connectionID)", "buffered": "\(self.bufferedBytes)",
                    ])
                channel.close(promise: nil)
                return
            }
            self.bufferedBytes += line.count
            var buffer = channel.allocator.buffer(capacity: line.count)
            buffer.writeBytes(line)
            channel.writeAndFlush(buffer).whenComplete { _ in
                self.bufferedBytes -= line.count
                self.updateReading()
            }
            self.updateReading()
        }
    }

    /// Reads while the client has room (few outstanding lines) and reads its answers (channel writable).
    private func updateReading() {
        let shouldPause = outstanding >= AgentServer.maxOutstandingLines || !channel.isWritable
        guard shouldPause != readingPaused else { return }
        readingPaused = shouldPause
        channel.setOption(ChannelOptions.autoRead, value: !shouldPause).whenSuccess {
            if !shouldPause { self.channel.read() }
        }
    }
}
