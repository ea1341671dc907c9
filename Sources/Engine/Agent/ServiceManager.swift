import Foundation
import GmemProtocol
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// What a service manager (systemd) hands the agent and wants to hear from it: a listening socket passed by
/// socket activation (`LISTEN_PID`, `LISTEN_FDS`, sd_listen_fds(3)), and state notifications on
/// `$NOTIFY_SOCKET` (`READY=1`, `STOPPING=1`, `STATUS=...`, sd_notify(3)). Both are plain environment and
/// datagram protocols; without a manager neither is present and nothing happens.
public enum ServiceManager {
    /// The first descriptor passed by socket activation.
    static let firstListenDescriptor: Int32 = 3

    /// The listening socket handed over by the manager, if this process was socket-activated. The
    /// variables are removed so that children (none today) do not take the socket for theirs.
    public static func activatedSocket(
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws(AgentSetupError) -> Int32? {
        guard let pid = environment["LISTEN_PID"], let count = environment["LISTEN_FDS"] else { return nil }
        guard Int32(pid) == getpid() else { return nil }
        unsetenv("LISTEN_PID")
        unsetenv("LISTEN_FDS")
        unsetenv("LISTEN_FDNAMES")
        guard let number = Int(count), number >= 1 else { return nil }
        guard number == 1 else {
            throw AgentSetupError(
                "socket activation passed \(number) sockets; the agent serves exactly one (ListenStream= once)")
        }
        let fd = firstListenDescriptor
        var type: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        guard getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &length) == 0, type == Int32(SOCK_STREAM.rawValue) else {
            throw AgentSetupError("the descriptor passed by socket activation (fd \(fd)) is not a stream socket")
        }
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        return fd
    }

    /// The path a listening Unix socket is bound to (for the log and `hello`).
    public static func boundPath(of fd: Int32) -> String? {
        var address = sockaddr_un()
        var length = socklen_t(MemoryLayout<sockaddr_un>.size)
        let result = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        guard result == 0, address.sun_family == sa_family_t(AF_UNIX) else { return nil }
        return withUnsafeBytes(of: address.sun_path) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
    }

    /// Sends `state` (newline-separated `KEY=VALUE` lines) to `$NOTIFY_SOCKET`, if set. Failures are
    /// returned for the log, never fatal: a manager that does not listen must not stop the agent.
    @discardableResult
    public static func notify(
        _ state: String, environment: [String: String] = ProcessInfo.processInfo.environment
    ) -> String? {
        guard let path = environment["NOTIFY_SOCKET"], !path.isEmpty else { return nil }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        var bytes = Array(path.utf8)
        // "@name" is an abstract socket: a leading NUL, the rest of the name as is.
        if bytes.first == UInt8(ascii: "@") { bytes[0] = 0 }
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard bytes.count < capacity else { return "NOTIFY_SOCKET is longer than \(capacity - 1) bytes" }
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: bytes) }
        let length = socklen_t(MemoryLayout<sa_family_t>.size + bytes.count + (bytes.first == 0 ? 0 : 1))
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return "socket(AF_UNIX, SOCK_DGRAM): \(String(cString: strerror(errno)))" }
        defer { close(fd) }
        let message = Array(state.utf8)
        let sent = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { target in
                message.withUnsafeBytes { sendto(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL), target, length) }
            }
        }
        return sent < 0 ? "notifying \(path): \(String(cString: strerror(errno)))" : nil
    }
}

/// Log lines for the systemd journal: no timestamp (the journal adds its own), the level as a
/// `<N>` syslog priority prefix (sd-daemon(3)), metadata as `key=value`.
public struct JournalLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level = .info
    private let label: String

    public init(label: String) {
        self.label = label
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(
        level: Logger.Level, message: Logger.Message, metadata explicit: Logger.Metadata?,
        source: String, file: String, function: String, line: UInt
    ) {
        let merged = metadata.merging(explicit ?? [:]) { $1 }
        let fields = merged.keys.sorted().map { "\($0)=\(merged[$0].map { "\($0)" } ?? "")" }.joined(separator: " ")
        let text = "<\(Self.priority(level))>\(message)" + (fields.isEmpty ? "" : " " + fields) + "\n"
        // One write(2) per line: lines of concurrent threads do not interleave.
        _ = text.utf8CString.withUnsafeBufferPointer { write(STDERR_FILENO, $0.baseAddress, $0.count - 1) }
    }

    static func priority(_ level: Logger.Level) -> Int {
        switch level {
        case .trace, .debug: return 7
        case .info: return 6
        case .notice: return 5
        case .warning: return 4
        case .error: return 3
        case .critical: return 2
        }
    }
}
