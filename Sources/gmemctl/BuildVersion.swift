import Foundation

/// What `gmemctl --version` prints: the package version, and the git revision of the source tree the binary
/// was built from when that tree is still there (`git describe`; SwiftPM has no build-time hook without a
/// plugin, so it is read when asked).
enum BuildVersion {
    static let package = "0.1.0"

    /// The repository this file was compiled from (Sources/gmemctl/BuildVersion.swift).
    static let sourceRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    static var text: String {
        guard let revision = gitDescribe() else { return package }
        return "\(package) (\(revision))"
    }

    private static func gitDescribe() -> String? {
        guard FileManager.default.fileExists(atPath: sourceRoot.appendingPathComponent(".git").path) else { return nil }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["git", "-C", sourceRoot.path, "describe", "--always", "--dirty", "--tags"]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        guard (try? process.run()) != nil else { return nil }
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { return nil }
        let text = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        return text.isEmpty ? nil : "git " + text
    }
}
