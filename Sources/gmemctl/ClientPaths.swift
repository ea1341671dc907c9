import Foundation

/// Where the CLI keeps its own files: its memory of agents, the log of an agent it spawned.
enum ClientPaths {
    /// `$XDG_STATE_HOME/gmemctl`, else `~/.local/state/gmemctl`.
    static func stateDirectory(environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        let base =
            environment["XDG_STATE_HOME"].flatMap { $0.isEmpty ? nil : $0 }
            ?? ((environment["HOME"] ?? NSTemporaryDirectory()) + "/.local/state")
        return "\(base)/gmemctl"
    }
}
