import Foundation
import GmemCore
#if canImport(Glibc)
import Glibc
#endif

/// Where the agent's socket lives, and how its directory is made private.
public enum AgentPaths {
    /// `$XDG_RUNTIME_DIR/gmemctl/agent.sock`, else `/tmp/gmemctl-<uid>/agent.sock`.
    public static func defaultSocket(environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        if let runtime = environment["XDG_RUNTIME_DIR"], !runtime.isEmpty {
            return "\(runtime)/gmemctl/agent.sock"
        }
        return "/tmp/gmemctl-\(getuid())/agent.sock"
    }

    /// Creates the socket's directory as 0700 if missing; an existing directory must belong to us and be
    /// closed to others, since whoever can write it can put their own socket in our place.
    public static func preparePrivateDirectory(_ directory: String) throws(AgentSetupError) {
        if mkdir(directory, 0o700) != 0 && errno != EEXIST {
            // Parents may be missing (a custom --socket path); create them, the last one private.
            do {
                try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true,
                                                        attributes: [.posixPermissions: 0o700])
            } catch {
                throw AgentSetupError("cannot create \(directory): \(error.localizedDescription)")
            }
        }
        var status = stat()
        guard lstat(directory, &status) == 0 else { throw AgentSetupError("cannot inspect \(directory): \(String(cString: strerror(errno)))") }
        guard (status.st_mode & S_IFMT) == S_IFDIR else { throw AgentSetupError("\(directory) is not a directory") }
        guard status.st_uid == getuid() else {
            throw AgentSetupError("\(directory) belongs to uid \(status.st_uid), not to us (uid \(getuid())); choose another --socket")
        }
        if status.st_mode & 0o077 != 0, isDefaultRuntimeDirectory(directory) {
            guard chmod(directory, 0o700) == 0 else { throw AgentSetupError("cannot make \(directory) private (chmod 0700)") }
        }
    }

    private static func isDefaultRuntimeDirectory(_ directory: String) -> Bool {
        (defaultSocket() as NSString).deletingLastPathComponent == directory
    }
}

public struct AgentSetupError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
