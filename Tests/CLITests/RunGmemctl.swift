import Foundation
import ProcessSupport

/// Runs the built `gmemctl` binary for CLI tests. `swift test` builds every product, and on Linux the
/// test runner lives in the build products directory next to the `gmemctl` executable.
enum Gmemctl {
    typealias Output = ProcessRunner.Output

    enum Failure: Error, CustomStringConvertible {
        case binaryNotFound(searched: [String])

        var description: String {
            switch self {
            case .binaryNotFound(let searched): return "gmemctl binary not found; searched: \(searched.joined(separator: ", "))"
            }
        }
    }

    /// The repository root, found from this source file (Tests/CLITests/RunGmemctl.swift).
    static let repositoryRoot: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// The `gmemctl` executable: `$GMEMCTL_BINARY` if set, else next to the test bundle.
    static func binary() throws -> URL {
        var candidates: [URL] = []
        if let override = ProcessInfo.processInfo.environment["GMEMCTL_BINARY"] {
            candidates.append(URL(fileURLWithPath: override))
        }
        let runner = URL(fileURLWithPath: CommandLine.arguments.first ?? "").deletingLastPathComponent()
        candidates.append(runner.appendingPathComponent("gmemctl"))
        candidates.append(runner.deletingLastPathComponent().appendingPathComponent("gmemctl"))
        candidates.append(Bundle.main.bundleURL.appendingPathComponent("gmemctl"))
        candidates.append(Bundle.main.bundleURL.deletingLastPathComponent().appendingPathComponent("gmemctl"))
        guard let found = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0.path) }) else {
            throw Failure.binaryNotFound(searched: candidates.map(\.path))
        }
        return found
    }

    /// Runs `gmemctl arguments` in the repository root (so `examples/...` paths work), without colour.
    static func run(_ arguments: [String], environment extra: [String: String] = [:], timeout: Double = 30) throws -> Output {
        var environment = ProcessInfo.processInfo.environment
        environment["NO_COLOR"] = "1"
        environment.merge(extra) { _, new in new }
        return try ProcessRunner.run(try binary(), arguments, environment: environment, directory: repositoryRoot, timeout: timeout)
    }
}
