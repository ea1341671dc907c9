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

    /// Creates the socket's directory as 0700 if missing (whatever the umask); an existing directory must
    /// belong to us and be closed to writers other than us, since whoever can write it can put their own
    /// socket in our place (a sticky directory such as /tmp is safe: others cannot replace our entries).
    public static func preparePrivateDirectory(_ directory: String) throws(AgentSetupError) {
        var created = mkdir(directory, 0o700) == 0
        if !created && errno != EEXIST {
            // Parents may be missing (a custom --socket path); create them, the last one private.
            do {
                try FileManager.default.createDirectory(
                    atPath: directory, withIntermediateDirectories: true,
                    attributes: [.posixPermissions: 0o700])
                created = true
            } catch {
                throw AgentSetupError("cannot create \(directory): \(error.localizedDescription)")
            }
        }
        var status = stat()
        guard lstat(directory, &status) == 0 else {
            throw AgentSetupError("cannot inspect \(directory): \(String(cString: strerror(errno)))")
        }
        guard (status.st_mode & S_IFMT) == S_IFDIR else { throw AgentSetupError("\(directory) is not a directory") }
        guard status.st_uid == getuid() else {
            throw AgentSetupError(
                "\(directory) belongs to uid \(status.st_uid), not to us (uid \(getuid())); choose another --socket")
        }
        if created || isDefaultRuntimeDirectory(directory) {
            if status.st_mode & 0o777 != 0o700 && chmod(directory, 0o700) != 0 {
                throw AgentSetupError("cannot make \(directory) private (chmod 0700)")
            }
        } else if status.st_mode & 0o022 != 0 && status.st_mode & S_ISVTX == 0 {
            throw AgentSetupError(
                "\(directory) is writable by others (mode \(String(status.st_mode & 0o7777, radix: 8))): another user could replace the socket; make it 0700 or choose another --socket"
            )
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
