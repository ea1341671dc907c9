import Foundation

/// Runs the built `gmemctl` binary for CLI tests. `swift test` builds every product, and on Linux the
/// test runner lives in the build products directory next to the `gmemctl` executable.
enum Gmemctl {
    struct Output {
        var exitCode: Int32
        var stdout: String
        var stderr: String
    }

    enum Failure: Error, CustomStringConvertible {
        case binaryNotFound(searched: [String])
        case timedOut(arguments: [String], seconds: Double)

        var description: String {
            switch self {
            case .binaryNotFound(let searched): return "gmemctl binary not found; searched: \(searched.joined(separator: ", "))"
            case .timedOut(let arguments, let seconds): return "gmemctl \(arguments.joined(separator: " ")) did not finish in \(seconds) s"
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
    static func run(_ arguments: [String], timeout: Double = 30) throws -> Output {
        let process = Process()
        process.executableURL = try binary()
        process.arguments = arguments
        process.currentDirectoryURL = repositoryRoot
        var environment = ProcessInfo.processInfo.environment
        environment["NO_COLOR"] = "1"
        process.environment = environment

        // Files, not pipes: a chatty child cannot block on a full pipe while we wait for it.
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("gmemctl-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let outURL = directory.appendingPathComponent("stdout"), errURL = directory.appendingPathComponent("stderr")
        _ = FileManager.default.createFile(atPath: outURL.path, contents: nil)
        _ = FileManager.default.createFile(atPath: errURL.path, contents: nil)
        let out = try FileHandle(forWritingTo: outURL), err = try FileHandle(forWritingTo: errURL)
        process.standardOutput = out
        process.standardError = err
        process.standardInput = FileHandle.nullDevice

        try process.run()
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { usleep(2_000) }
        if process.isRunning {
            process.terminate()
            process.waitUntilExit()
            throw Failure.timedOut(arguments: arguments, seconds: timeout)
        }
        process.waitUntilExit()
        try out.close()
        try err.close()
        return Output(exitCode: process.terminationStatus,
                      stdout: String(decoding: try Data(contentsOf: outURL), as: UTF8.self),
                      stderr: String(decoding: try Data(contentsOf: errURL), as: UTF8.self))
    }
}
