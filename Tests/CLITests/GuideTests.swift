import Foundation
import ProcessSupport
import Testing

/// docs/guide.md, run as written: every command of every `sh` block, in order, in a shell whose PATH finds
/// the built gmemctl, in a scratch directory (its own XDG state and runtime directories) that sees the
/// repository's examples. A trailing `# exit N` is the exit code the guide promises; otherwise 0. Blocks that
/// start with `# needs: kvm with guest_memfd` run only where the kernel has it.
@Suite(.serialized) struct GuideTests {
    struct Command {
        var line: String
        var exitCode: Int32
    }

    struct Block {
        var needsKVM: Bool
        var commands: [Command]
    }

    static func blocks() throws -> [Block] {
        let guide = try String(
            contentsOf: Gmemctl.repositoryRoot.appendingPathComponent("docs/guide.md"), encoding: .utf8)
        var blocks: [Block] = []
        var current: Block?
        for line in guide.split(separator: "\n", omittingEmptySubsequences: false).map(String.init) {
            if current == nil, line == "```sh" { current = Block(needsKVM: false, commands: []); continue }
            guard var block = current else { continue }
            if line == "```" { blocks.append(block); current = nil; continue }
            if line.hasPrefix("# needs: kvm") { block.needsKVM = true }
            var command = line
            var exitCode: Int32 = 0
            if let marker = line.range(of: "# exit ") {
                exitCode = Int32(line[marker.upperBound...].trimmingCharacters(in: .whitespaces)) ?? -1
                command = String(line[..<marker.lowerBound])
            }
            command = command.trimmingCharacters(in: .whitespaces)
            if !command.isEmpty && !command.hasPrefix("#") {
                block.commands.append(Command(line: command, exitCode: exitCode))
            }
            current = block
        }
        return blocks
    }

    /// A scratch directory with the repository's examples, and the environment the guide's shell runs in.
    struct Scratch {
        let directory: URL
        let environment: [String: String]

        init() throws {
            directory = FileManager.default.temporaryDirectory.appendingPathComponent(
                "gmemctl-guide-\(UUID().uuidString)")
            try FileManager.default.createDirectory(
                at: directory.appendingPathComponent("runtime"), withIntermediateDirectories: true)
            try FileManager.default.createSymbolicLink(
                at: directory.appendingPathComponent("examples"),
                withDestinationURL: Gmemctl.repositoryRoot.appendingPathComponent("examples"))
            var environment = ProcessInfo.processInfo.environment
            let binaries = try Gmemctl.binary().deletingLastPathComponent().path
            environment["PATH"] = binaries + ":" + (environment["PATH"] ?? "/usr/bin:/bin")
            environment["XDG_STATE_HOME"] = directory.appendingPathComponent("state").path
            environment["XDG_RUNTIME_DIR"] = directory.appendingPathComponent("runtime").path
            environment["NO_COLOR"] = "1"
            self.environment = environment
        }

        func run(_ command: String) throws -> ProcessRunner.Output {
            try ProcessRunner.run(
                URL(fileURLWithPath: "/bin/sh"), ["-c", command], environment: environment,
                directory: directory, timeout: 120)
        }

        func remove() {
            // An agent the guide started must not outlive the test, whatever failed.
            _ = try? run("gmemctl agent stop --socket ./agent.sock")
            try? FileManager.default.removeItem(at: directory)
        }
    }

    @Test func theGuideHasCommandsInEverySection() throws {
        let blocks = try Self.blocks()
        #expect(blocks.count >= 6, "\(blocks.count) blocks")
        #expect(blocks.allSatisfy { !$0.commands.isEmpty })
        #expect(blocks.flatMap(\.commands).allSatisfy { $0.line.hasPrefix("gmemctl ") && $0.exitCode >= 0 })
    }

    @Test func everyCommandOfTheGuideRunsAsWritten() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        var ran = 0
        for block in try Self.blocks() where !block.needsKVM {
            for command in block.commands {
                let result = try scratch.run(command.line)
                #expect(
                    result.exitCode == command.exitCode,
                    "`\(command.line)` exited \(result.exitCode):\n\(result.stdout)\(result.stderr)")
                ran += 1
            }
        }
        #expect(ran > 20)
    }

    @Test(.enabled(if: ReadmeTests.kvmOffersGuestMemfd, "needs /dev/kvm with guest_memfd"))
    func theRealKernelSectionRunsAsWritten() throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        for block in try Self.blocks() where block.needsKVM {
            for command in block.commands {
                let result = try scratch.run(command.line)
                #expect(
                    result.exitCode == command.exitCode,
                    "`\(command.line)` exited \(result.exitCode):\n\(result.stdout)\(result.stderr)")
            }
        }
    }
}
