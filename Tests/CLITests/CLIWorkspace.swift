import Foundation
import ProcessSupport

/// A temporary directory for one test (simulator state file, manifests), removed by `remove()` (use defer).
struct CLIWorkspace {
    let directory: URL
    var state: String { directory.appendingPathComponent("sim.json").path }

    init() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("gmemctl-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    func remove() { try? FileManager.default.removeItem(at: directory) }

    func write(_ name: String, _ text: String) throws -> String {
        let url = directory.appendingPathComponent(name)
        try text.write(to: url, atomically: true, encoding: .utf8)
        return url.path
    }

    /// `gmemctl ARGUMENTS` on the simulator with this workspace's state file, never through an agent.
    func run(
        _ arguments: [String], host: String = "sim:gmem-attributes2", environment: [String: String] = [:]
    ) throws -> Gmemctl.Output {
        try Gmemctl.run(arguments + ["--host", host, "--state", state, "--no-agent"], environment: environment)
    }

    /// One in-place block of `size` mapped at gpa 0, with one listener.
    static func manifest(
        size: String = "64MiB", shared: [String] = ["0x100000-0x1FFFFF"], name: String = "cvm"
    ) -> String {
        manifestYAML(
            name: name, vm: "tdx", blocks: ["{ name: ram, size: \(size), backend: { type: in-place } }"],
            mappings: ["{ block: ram, offset: 0, size: \(size), gpa: 0 }"], defaultState: "private",
            shared: shared.map { "\"\($0)\"" }, listeners: ["vfio0"])
    }
}
