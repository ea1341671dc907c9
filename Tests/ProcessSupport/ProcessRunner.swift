import Foundation

/// Runs a program to completion for the tests that drive the built `gmemctl` (CLI and agent tests).
/// Output goes to files, not pipes, so a chatty child cannot block on a full pipe while we wait for it.
public enum ProcessRunner {
    public struct Output: Sendable {
        public var exitCode: Int32
        public var stdout: String
        public var stderr: String
    }

    public struct TimedOut: Error, CustomStringConvertible {
        public var command: String
        public var seconds: Double
        public var description: String { "\(command) did not finish in \(seconds) s" }
    }

    public static func run(
        _ executable: URL, _ arguments: [String], environment: [String: String],
        directory: URL, timeout: Double
    ) throws -> Output {
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        process.currentDirectoryURL = directory
        process.environment = environment
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("gmemctl-run-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: scratch) }
        let outURL = scratch.appendingPathComponent("stdout"), errURL = scratch.appendingPathComponent("stderr")
        FileManager.default.createFile(atPath: outURL.path, contents: nil)
        FileManager.default.createFile(atPath: errURL.path, contents: nil)
        let out = try FileHandle(forWritingTo: outURL), err = try FileHandle(forWritingTo: errURL)
        process.standardOutput = out
        process.standardError = err
        process.standardInput = FileHandle.nullDevice

        // Wait for the exit itself (no polling), up to the deadline.
        let exited = DispatchSemaphore(value: 0)
        process.terminationHandler = { _ in exited.signal() }
        try process.run()
        if exited.wait(timeout: .now() + timeout) == .timedOut {
            process.terminate()
            process.waitUntilExit()
            throw TimedOut(
                command: ([executable.lastPathComponent] + arguments).joined(separator: " "), seconds: timeout)
        }
        process.waitUntilExit()
        try out.close()
        try err.close()
        return Output(
            exitCode: process.terminationStatus,
            stdout: String(decoding: try Data(contentsOf: outURL), as: UTF8.self),
            stderr: String(decoding: try Data(contentsOf: errURL), as: UTF8.self))
    }
}
