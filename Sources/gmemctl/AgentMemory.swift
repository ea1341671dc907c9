import Foundation

/// What the CLI remembers of the agents it talked to, per socket (`$XDG_STATE_HOME/gmemctl/agents.json`):
/// the instance, and the guests it knew there. An agent that restarted has a new instance id and none of
/// the old guests, and the CLI can then say so instead of a bare "not found".
struct AgentMemory: Codable, Sendable, Equatable {
    public struct Instance: Codable, Sendable, Equatable {
        public var instance: String
        public var startedAt: String
        public var guests: [String]
    }

    public struct Entry: Codable, Sendable, Equatable {
        public var current: Instance
        /// How the agent serving this socket was started (`--host`, and `--state` for a simulator), so a
        /// dead agent is replaced by one serving the same host and state.
        public var host: String?
        public var stateFile: String?
        /// Guests held by earlier instances and not applied again since, with the instance that held them.
        public var lost: [String: Instance]
    }

    public var sockets: [String: Entry] = [:]

    public init() {}

    /// Records that the agent on `socket` is `instance`; when it differs from the one remembered, the
    /// guests of the old one are marked lost.
    public mutating func met(
        socket: String, instance: String, startedAt: String, host: String? = nil, stateFile: String? = nil
    ) {
        guard var entry = sockets[socket] else {
            sockets[socket] = Entry(
                current: Instance(instance: instance, startedAt: startedAt, guests: []), host: host,
                stateFile: stateFile, lost: [:])
            return
        }
        if let host {
            entry.host = host
            entry.stateFile = stateFile
        }
        if entry.current.instance != instance {
            for guest in entry.current.guests {
                entry.lost[guest] = Instance(
                    instance: entry.current.instance, startedAt: entry.current.startedAt, guests: [])
            }
            entry.current = Instance(instance: instance, startedAt: startedAt, guests: [])
        }
        sockets[socket] = entry
    }

    public mutating func guestExists(_ guest: String, socket: String) {
        guard var entry = sockets[socket] else { return }
        if !entry.current.guests.contains(guest) { entry.current.guests.append(guest) }
        entry.lost[guest] = nil
        sockets[socket] = entry
    }

    public mutating func guestGone(_ guest: String, socket: String) {
        sockets[socket]?.current.guests.removeAll { $0 == guest }
        sockets[socket]?.lost[guest] = nil
    }

    /// For a guest the agent does not have: the sentence explaining that a restart lost it, if one did.
    public func restartNotice(guest: String, socket: String) -> String? {
        guard let entry = sockets[socket], let old = entry.lost[guest] else { return nil }
        return
            "the agent was restarted (instance \(old.instance), started \(old.startedAt), is now instance \(entry.current.instance), started \(entry.current.startedAt)); guests it held are gone: apply again"
    }

    // MARK: File

    public static func defaultFile() -> String { ClientPaths.stateDirectory() + "/agents.json" }

    public static func load(from file: String = defaultFile()) -> AgentMemory {
        guard let data = FileManager.default.contents(atPath: file),
            let memory = try? JSONDecoder().decode(AgentMemory.self, from: data)
        else { return AgentMemory() }
        return memory
    }

    /// Best effort: the memory only improves messages, so a failure to save is not an error.
    public func save(to file: String = defaultFile()) {
        let directory = (file as NSString).deletingLastPathComponent
        try? FileManager.default.createDirectory(
            atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        guard let data = try? JSONEncoder().encode(self) else { return }
        let temporary = file + ".\(getpid()).tmp"
        guard FileManager.default.createFile(atPath: temporary, contents: data) else { return }
        if rename(temporary, file) != 0 { unlink(temporary) }
    }
}
