import Foundation

/// Where the tests find the repository and the built `gmemctl`, for every test target that runs it.
public enum GmemctlBinary {
    public struct NotFound: Error, CustomStringConvertible {
        public var searched: [String]
        public var description: String { "gmemctl binary not found; searched: \(searched.joined(separator: ", "))" }
    }

    /// The repository root, found from this source file (Tests/ProcessSupport/GmemctlBinary.swift).
    public static let repositoryRoot: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// The `gmemctl` executable: `$GMEMCTL_BINARY` if set, else the one `swift test` built, which on Linux
    /// lies in the build products directory beside the test runner.
    public static func url() throws(NotFound) -> URL {
        var candidates: [URL] = []
        if let override = ProcessInfo.processInfo.environment["GMEMCTL_BINARY"] {
            candidates.append(URL(fileURLWithPath: override))
        }
        let runner = URL(fileURLWithPath: CommandLine.arguments.first ?? "").deletingLastPathComponent()
        for directory in [
            runner, runner.deletingLastPathComponent(), Bundle.main.bundleURL,
            Bundle.main.bundleURL.deletingLastPathComponent(),
        ] {
            candidates.append(directory.appendingPathComponent("gmemctl"))
        }
        guard let found = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0.path) }) else {
            throw NotFound(searched: candidates.map(\.path))
        }
        return found
    }
}
