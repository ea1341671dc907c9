import Foundation
import Testing

/// The simulator's state file through the built binary: written safely, locked for a whole command,
/// decoded without trusting its contents. Each test was a defect (clobbering through a planted symlink,
/// guests lost by concurrent commands, formatVersion 99 accepted, a crafted 2^63-byte run trapping `get`).
@Suite struct StateFileTests {
    typealias Workspace = SimulatorWorkflowTests.Workspace

    static func manifest(guest: String) -> String {
        """
        apiVersion: gmemctl/v1
        kind: GuestMemory
        metadata: { name: \(guest) }
        spec:
          vm: { type: tdx }
          blocks:
            - { name: ram, size: 64MiB, backend: { type: in-place } }
          mappings:
            - { block: ram, offset: 0, size: 64MiB, gpa: 0 }
          layout:
            default: private
            shared: [ "0x100000-0x1FFFFF" ]
        """
    }

    func run(_ workspace: Workspace, _ arguments: [String], state: String? = nil) throws -> Gmemctl.Output {
        try Gmemctl.run(
            arguments + ["--host", "sim:gmem-attributes2", "--state", state ?? workspace.state, "--no-agent"])
    }

    func guests(in state: String) throws -> Set<String> {
        let object =
            try JSONSerialization.jsonObject(with: try Data(contentsOf: URL(fileURLWithPath: state))) as? [String: Any]
        return Set((object?["guests"] as? [String: Any])?.keys.map { $0 } ?? [])
    }

    @Test func symlinkPlantedAtTheOldTemporaryNameIsNotWrittenThrough() throws {
        let workspace = try Workspace()
        defer { try? FileManager.default.removeItem(at: workspace.directory) }
        let victim = try workspace.write("victim", "precious\n")
        try FileManager.default.createSymbolicLink(atPath: workspace.state + ".tmp", withDestinationPath: victim)
        let manifest = try workspace.write("g.yaml", Self.manifest(guest: "g"))
        let apply = try run(workspace, ["apply", manifest])
        #expect(apply.exitCode == 0, "\(apply.stdout)\(apply.stderr)")
        #expect(try String(contentsOfFile: victim, encoding: .utf8) == "precious\n")
        let attributes = try FileManager.default.attributesOfItem(atPath: workspace.state)
        #expect((attributes[.posixPermissions] as? Int) == 0o600)
        #expect(try guests(in: workspace.state) == ["g"])
    }

    @Test func symlinkAtTheStatePathIsRefused() throws {
        let workspace = try Workspace()
        defer { try? FileManager.default.removeItem(at: workspace.directory) }
        let victim = try workspace.write("victim", "precious\n")
        try FileManager.default.createSymbolicLink(atPath: workspace.state, withDestinationPath: victim)
        let manifest = try workspace.write("g.yaml", Self.manifest(guest: "g"))
        let apply = try run(workspace, ["apply", manifest])
        #expect(apply.exitCode == 1)
        #expect(apply.stderr.contains("it is a symbolic link"), "\(apply.stderr)")
        #expect(try String(contentsOfFile: victim, encoding: .utf8) == "precious\n")
    }

    @Test func leftoverTemporariesAreCleaned() throws {
        let workspace = try Workspace()
        defer { try? FileManager.default.removeItem(at: workspace.directory) }
        let leftover = try workspace.write("sim.json.tmp.5eed", "{\"half\":")
        let manifest = try workspace.write("g.yaml", Self.manifest(guest: "g"))
        #expect(try run(workspace, ["apply", manifest]).exitCode == 0)
        #expect(!FileManager.default.fileExists(atPath: leftover))
    }

    /// Eight applies of different guests at once on one state file, 20 rounds: every guest survives.
    @Test func eightConcurrentAppliesAllSurvive() throws {
        for round in 0..<20 {
            let workspace = try Workspace()
            defer { try? FileManager.default.removeItem(at: workspace.directory) }
            let manifests = try (0..<8).map { try workspace.write("g\($0).yaml", Self.manifest(guest: "g\($0)")) }
            let codes = Codes()
            DispatchQueue.concurrentPerform(iterations: 8) { index in
                let output = try? run(workspace, ["apply", manifests[index]])
                codes.set(index, output.map { "\($0.exitCode) \($0.stderr)" } ?? "did not run")
            }
            #expect(codes.all.allSatisfy { $0.hasPrefix("0 ") }, "round \(round): \(codes.all)")
            #expect(try guests(in: workspace.state) == Set((0..<8).map { "g\($0)" }), "round \(round)")
        }
    }

    final class Codes: @unchecked Sendable {
        private let lock = NSLock()
        private var values = [String](repeating: "", count: 8)
        func set(_ index: Int, _ value: String) { lock.withLock { values[index] = value } }
        var all: [String] { lock.withLock { values } }
    }

    /// Applies a guest, then rewrites the state file with `edit` and runs `get`: a clear error, exit 1.
    func corrupted(_ edit: (String) -> String) throws -> Gmemctl.Output {
        try corrupted(edit, commands: [["get", "g"]])[0]
    }

    /// The same, running each of `commands` (MANIFEST stands for the guest's manifest) on the edited file.
    func corrupted(_ edit: (String) -> String, commands: [[String]]) throws -> [Gmemctl.Output] {
        let workspace = try Workspace()
        defer { try? FileManager.default.removeItem(at: workspace.directory) }
        let manifest = try workspace.write("g.yaml", Self.manifest(guest: "g"))
        #expect(try run(workspace, ["apply", manifest]).exitCode == 0)
        let text = try String(contentsOfFile: workspace.state, encoding: .utf8)
        try edit(text).write(toFile: workspace.state, atomically: false, encoding: .utf8)
        return try commands.map { command in
            try run(workspace, command.map { $0 == "MANIFEST" ? manifest : $0 })
        }
    }

    @Test func unknownFormatVersionIsRefusedNamingTheVersionsRead() throws {
        let get = try corrupted { $0.replacingOccurrences(of: "\"formatVersion\":1", with: "\"formatVersion\":99") }
        #expect(get.exitCode == 1)
        #expect(get.stderr.contains("has format version 99; this gmemctl reads format version 1"), "\(get.stderr)")
        #expect(get.stderr.contains("use another --state"))
    }

    @Test func craftedTwoToTheSixtyThreeByteRunIsRefusedNotATrap() throws {
        // Block size, memslot size and tracked runs all become 2^63 bytes; every command that reads the state
        // refuses it (a trap would exit 132).
        let commands = [["get", "g"], ["plan", "MANIFEST"], ["apply", "MANIFEST"], ["diff", "MANIFEST"]]
        let outputs = try corrupted(
            { $0.replacingOccurrences(of: "67108864", with: "9223372036854775808") },
            commands: commands)
        for (command, output) in zip(commands, outputs) {
            #expect(output.exitCode == 1, "\(command[0]): exit \(output.exitCode): \(output.stderr)")
            #expect(output.stderr.contains("is inconsistent"), "\(command[0]): \(output.stderr)")
        }
    }

    @Test func danglingDescriptorIsRefused() throws {
        let get = try corrupted { text in
            // The guest's VM descriptor points at a descriptor that is not open.
            guard let range = text.range(of: #""vmFD":\d+"#, options: .regularExpression) else { return text }
            return text.replacingCharacters(in: range, with: "\"vmFD\":999999")
        }
        #expect(get.exitCode == 1)
        #expect(get.stderr.contains("which is not open"), "\(get.stderr)")
    }

    @Test func truncatedStateIsAClearError() throws {
        let get = try corrupted { String($0.prefix($0.count / 2)) }
        #expect(get.exitCode == 1)
        #expect(get.stderr.contains("simulator state"), "\(get.stderr)")
        #expect(get.stderr.contains("move it away"))
    }

    @Test func crlfManifestKeepsItsExcerpt() throws {
        let workspace = try Workspace()
        defer { try? FileManager.default.removeItem(at: workspace.directory) }
        let text = Self.manifest(guest: "g").replacingOccurrences(
            of: "size: 64MiB, backend", with: "size: 1000, backend")
        let file = try workspace.write("crlf.yaml", text.replacingOccurrences(of: "\n", with: "\r\n"))
        let validate = try Gmemctl.run(["validate", file])
        #expect(validate.exitCode == 1)
        #expect(
            validate.stdout.contains(" 7 |     - { name: ram, size: 1000, backend: { type: in-place } }\n"),
            "\(validate.stdout)")
        #expect(!validate.stdout.contains("\r"))
    }
}
