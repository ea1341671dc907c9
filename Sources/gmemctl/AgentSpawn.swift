import Foundation
import GmemAgent
import GmemCore
import GmemKVM
import GmemProtocol
import GmemSimulator

#if canImport(Glibc)
import Glibc
#endif

/// Starts `gmemctl agent` of this very binary, detached (own session, stdin from /dev/null, output to
/// `$XDG_STATE_HOME/gmemctl/agent.log`), and waits until its socket answers.
enum AgentSpawn {
    static func start(socket: String, hostArguments: [String], timeout: Double = 20) throws -> AgentSession {
        let binary =
            (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        let logFile = ClientPaths.stateDirectory() + "/agent.log"
        try? FileManager.default.createDirectory(
            atPath: ClientPaths.stateDirectory(), withIntermediateDirectories: true,
            attributes: [.posixPermissions: 0o700])
        let argv = [binary, "agent", "--socket", socket] + hostArguments

        markInheritedDescriptorsCloseOnExec()
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, logFile, O_WRONLY | O_CREAT | O_APPEND, 0o600)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        // A session of its own: the agent outlives this command and ignores its terminal's signals.
        posix_spawnattr_setflags(&attributes, 0x80 /* POSIX_SPAWN_SETSID, which Glibc's module does not export */)
        var cArguments: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) } + [nil]
        defer { for pointer in cArguments { free(pointer) } }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, binary, &actions, &attributes, &cArguments, environ)
        guard spawned == 0 else {
            throw CLIError("cannot start an agent (\(binary)): \(String(cString: strerror(spawned)))")
        }

        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if AgentProbe.state(of: socket) == .live { return try AgentSession.connect(socket) }
            var status: Int32 = 0
            if waitpid(pid, &status, WNOHANG) == pid {
                throw CLIError(
                    "the agent did not start (exit status \((status >> 8) & 0xff)); see \(logFile):\n"
                        + lastLines(of: logFile))
            }
            usleep(20_000)
        }
        throw CLIError("the agent (pid \(pid)) did not open \(socket) within \(Int(timeout)) s; see \(logFile)")
    }

    /// The agent outlives this command, so it must not inherit this command's descriptors: a parent that
    /// waits for EOF on a pipe or socket it gave us (a test runner, a CI wrapper) would wait for the agent.
    private static func markInheritedDescriptorsCloseOnExec() {
        let open = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []
        for case let fd? in open.map({ Int32($0) }) where fd > 2 {
            let flags = fcntl(fd, F_GETFD)
            if flags >= 0 { _ = fcntl(fd, F_SETFD, flags | FD_CLOEXEC) }
        }
    }

    private static func lastLines(of file: String, count: Int = 5) -> String {
        let text = (try? String(contentsOfFile: file, encoding: .utf8)) ?? ""
        return text.split(separator: "\n").suffix(count).joined(separator: "\n")
    }
}
