import Foundation
import GmemCore

#if canImport(Glibc)
import Glibc
#endif

/// A blocking client of the agent protocol over a Unix socket, for the CLI, tests and benchmarks: one
/// request line out, lines in until the matching response.
public final class AgentClient {
    public let socketPath: String
    private let fd: Int32
    private var buffered: [UInt8] = []
    private var nextID: Int64 = 1
    private var readTimeout: Double = 0

    public init(socketPath: String) throws(AgentClientError) {
        self.socketPath = socketPath
        fd = try AgentSocket.connect(socketPath)
    }

    deinit { Glibc.close(fd) }

    /// Sends `request` (its id set by the client) and returns the decoded result, or the agent's error.
    public func call<R: Codable & Sendable>(
        _ request: AgentRequest, as type: R.Type = R.self
    ) throws(AgentClientError) -> R {
        var request = request
        if request.id == nil {
            request.id = .number(nextID)
            nextID += 1
        }
        do {
            try send(AgentLine.encode(request))
        } catch {
            // The agent may have answered and closed already (a refused peer): its last word explains.
            if let line = try? readLine(),
                let refusal = try? JSONDecoder().decode(AgentResponse<AgentNoResult>.self, from: Data(line)),
                let body = refusal.error
            {
                throw .agent(body)
            }
            throw error
        }
        while true {
            let line = try readLine()
            // Lines that are not this request's response (listener events, follow streams) are not ours here.
            guard let response = try? JSONDecoder().decode(AgentResponse<R>.self, from: Data(line)),
                response.id == request.id || response.id == nil
            else {
                if let error = try? JSONDecoder().decode(AgentResponse<AgentNoResult>.self, from: Data(line)),
                    !error.ok, error.id == request.id || error.id == nil, let body = error.error
                {
                    throw .agent(body)
                }
                continue
            }
            if let result = response.result, response.ok { return result }
            throw .agent(response.error ?? AgentErrorBody(.failed, "the agent answered without a result"))
        }
    }

    /// Writes raw bytes (tests use this to send garbage and truncated lines).
    public func send(_ bytes: [UInt8]) throws(AgentClientError) {
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes {
                Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL))
            }
            if written < 0 {
                if errno == EINTR { continue }
                // The agent went away (a stop, a restart): the same as reading its end of stream.
                if errno == EPIPE || errno == ECONNRESET { throw .closed }
                throw .io("writing to \(socketPath): \(String(cString: strerror(errno)))")
            }
            offset += written
        }
    }

    /// The next line from the agent, without its newline; `.closed` at end of stream.
    public func readLine() throws(AgentClientError) -> [UInt8] {
        while true {
            if let newline = buffered.firstIndex(of: 10) {
                let line = Array(buffered[..<newline])
                buffered.removeSubrange(...newline)
                return line
            }
            var chunk = [UInt8](repeating: 0, count: 65536)
            let count = chunk.withUnsafeMutableBytes { Glibc.recv(fd, $0.baseAddress, $0.count, 0) }
            if count < 0 {
                if errno == EINTR { continue }
                if errno == EAGAIN || errno == EWOULDBLOCK { throw .timedOut(seconds: readTimeout) }
                if errno == ECONNRESET { throw .closed }
                throw .io("reading from \(socketPath): \(String(cString: strerror(errno)))")
            }
            if count == 0 { throw .closed }
            buffered += chunk[..<count]
        }
    }

    /// Reads the next line and decodes it as `T`.
    public func read<T: Decodable>(_ type: T.Type) throws(AgentClientError) -> T {
        let line = try readLine()
        do {
            return try JSONDecoder().decode(T.self, from: Data(line))
        } catch {
            throw .io("unexpected line from the agent: \(String(decoding: line.prefix(200), as: UTF8.self))")
        }
    }

    /// Gives up waiting for the agent after `seconds` on every read (0: wait for ever).
    public func setReadTimeout(seconds: Double) {
        readTimeout = seconds
        var value = timeval(tv_sec: Int(seconds), tv_usec: Int((seconds - Double(Int(seconds))) * 1_000_000))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &value, socklen_t(MemoryLayout<timeval>.size))
    }

    /// Ends the connection now (tests: a client that disconnects mid-request).
    public func shutdown() {
        Glibc.shutdown(fd, Int32(SHUT_RDWR))
    }
}

public enum AgentClientError: Error, Sendable, CustomStringConvertible {
    /// Nobody listens on the socket (absent or stale).
    case unavailable(String)
    case io(String)
    case closed
    /// No line arrived within the read timeout.
    case timedOut(seconds: Double)
    case agent(AgentErrorBody)

    public var description: String {
        switch self {
        case .unavailable(let text), .io(let text): return text
        case .closed: return "the agent closed the connection"
        case .timedOut(let seconds): return "no answer from the agent within \(Int(seconds)) s"
        case .agent(let body): return body.message
        }
    }
}

/// What is at a socket path.
public enum AgentSocketState: Sendable, Equatable {
    case absent, stale, live, notASocket
}

public enum AgentProbe {
    public static func state(of path: String) -> AgentSocketState {
        var status = stat()
        guard lstat(path, &status) == 0 else { return .absent }
        guard (status.st_mode & S_IFMT) == S_IFSOCK else { return .notASocket }
        guard let fd = try? AgentSocket.connect(path) else { return .stale }
        Glibc.close(fd)
        return .live
    }
}

enum AgentSocket {
    static func connect(_ path: String) throws(AgentClientError) -> Int32 {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let pathBytes = Array(path.utf8)
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard pathBytes.count < capacity else {
            throw .unavailable("socket path \(path) is longer than \(capacity - 1) bytes")
        }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: pathBytes)
            raw[pathBytes.count] = 0
        }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw .io("socket(AF_UNIX): \(String(cString: strerror(errno)))") }
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard result == 0 else {
            let reason = String(cString: strerror(errno))
            Glibc.close(fd)
            throw .unavailable("no agent listens on \(path) (\(reason))")
        }
        return fd
    }
}
