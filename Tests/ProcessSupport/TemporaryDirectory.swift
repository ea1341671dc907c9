import Foundation

/// A fresh directory under the system's temporary directory, removed with everything in it when the last
/// reference goes (a test holds it for its duration, so nothing is left behind however the test ends).
public final class TemporaryDirectory: @unchecked Sendable {
    public let url: URL
    public var path: String { url.path }

    public init(prefix: String = "gmemctl-test") throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("\(prefix)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(at: url) }

    public func appendingPathComponent(_ name: String) -> URL { url.appendingPathComponent(name) }
}
