import Foundation
import ProcessSupport

/// Runs the built `gmemctl` binary for CLI tests.
enum Gmemctl {
    typealias Output = ProcessRunner.Output

    /// The repository root (examples, docs and the README live there).
    static var repositoryRoot: URL { GmemctlBinary.repositoryRoot }

    /// The `gmemctl` executable (ProcessSupport finds it).
    static func binary() throws -> URL { try GmemctlBinary.url() }

    /// Runs `gmemctl arguments` in the repository root (so `examples/...` paths work), without colour.
    static func run(
        _ arguments: [String], environment extra: [String: String] = [:], timeout: Double = 30
    ) throws -> Output {
        var environment = ProcessInfo.processInfo.environment
        environment["NO_COLOR"] = "1"
        environment.merge(extra) { _, new in new }
        return try ProcessRunner.run(
            try binary(), arguments, environment: environment, directory: repositoryRoot, timeout: timeout)
    }
}
