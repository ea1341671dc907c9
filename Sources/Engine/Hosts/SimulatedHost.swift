import Config
import Foundation
import GmemCore
// Foundation has a `Host` too; this one is meant.
import protocol GmemCore.Host

/// The built-in simulator. Its whole state (the simulated kernel and every guest's tracked state) lives in
/// a state file, so the simulator also serves as the embedded default between CLI invocations.
public final class SimulatedHost: Host {
    public let simulator: SimulatedKernel
    public let capabilities: Capabilities
    public let stateFile: String?
    private var guests: [String: LiveState]

    /// What the state file holds.
    struct StateFile: Codable {
        var formatVersion: Int
        var profile: String
        var kernel: SimulatedKernelState
        var guests: [String: LiveState]
    }

    /// A fresh simulator of `profile`, not persisted.
    public init(profile: Capabilities) {
        simulator = SimulatedKernel(capabilities: profile)
        capabilities = profile
        stateFile = nil
        guests = [:]
    }

    /// Loads the simulator from `stateFile`, or starts a fresh one of `profile` if the file does not exist.
    public init(profile: Capabilities, stateFile: String) throws(HostError) {
        self.stateFile = stateFile
        capabilities = profile
        guard FileManager.default.fileExists(atPath: stateFile) else {
            simulator = SimulatedKernel(capabilities: profile)
            guests = [:]
            return
        }
        let saved: StateFile
        do {
            let data = try Data(contentsOf: URL(fileURLWithPath: stateFile))
            saved = try JSONDecoder().decode(StateFile.self, from: data)
        } catch {
            throw HostError("cannot read simulator state \(stateFile): \(error); remove it to start afresh")
        }
        guard saved.profile == profile.name else {
            throw HostError("simulator state \(stateFile) belongs to profile \(saved.profile), not \(profile.name); use --host sim:\(saved.profile) or another --state file")
        }
        simulator = SimulatedKernel(state: saved.kernel)
        guests = saved.guests
    }

    public var spec: String { "sim:\(capabilities.name)" }
    public var label: String { "sim:\(capabilities.name)" + (stateFile.map { " (state \($0))" } ?? "") }
    public var kernel: KernelInterface { simulator }
    public var outlivesProcess: Bool { stateFile != nil }

    public func guestNames() -> [String] { guests.keys.sorted() }
    public func guest(named name: String) -> LiveState { guests[name] ?? LiveState(name: name) }
    public func store(_ state: LiveState) { guests[state.name] = state }
    public func remove(guest name: String) { guests[name] = nil }

    public func commit() throws(HostError) {
        guard let stateFile else { return }
        let file = StateFile(formatVersion: 1, profile: capabilities.name, kernel: simulator.snapshot(), guests: guests)
        do {
            let directory = (stateFile as NSString).deletingLastPathComponent
            if !directory.isEmpty {
                try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true,
                                                        attributes: [.posixPermissions: 0o700])
            }
            let data = try JSONEncoder().encode(file)
            // Write then rename, so a crash never leaves a half-written state file.
            let temporary = stateFile + ".tmp"
            try data.write(to: URL(fileURLWithPath: temporary))
            guard rename(temporary, stateFile) == 0 else {
                throw HostError("cannot rename \(temporary) to \(stateFile): errno \(errno)")
            }
        } catch let error as HostError {
            throw error
        } catch {
            throw HostError("cannot write simulator state \(stateFile): \(error)")
        }
    }

    /// Default state file: `$XDG_STATE_HOME/gmemctl/sim-PROFILE.json`, else `~/.local/state/gmemctl/...`.
    public static func defaultStateFile(profile: String) -> String {
        let environment = ProcessInfo.processInfo.environment
        let base = environment["XDG_STATE_HOME"].flatMap { $0.isEmpty ? nil : $0 }
            ?? ((environment["HOME"] ?? NSTemporaryDirectory()) + "/.local/state")
        return "\(base)/gmemctl/sim-\(profile).json"
    }
}
