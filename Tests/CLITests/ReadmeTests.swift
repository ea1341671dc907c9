import Foundation
import ProcessSupport
import Testing

/// The README's quick start, read from the README itself so that it cannot drift: every command of its first
/// `sh` block runs here. `swift run gmemctl` runs as the already built binary (the test runner was built by
/// `swift build`), and `swift test` is the command running this test, so it is only checked to be that.
@Suite struct ReadmeTests {
    static var quickStart: [String] {
        get throws {
            let readme = try String(contentsOf: Gmemctl.repositoryRoot.appendingPathComponent("README.md"), encoding: .utf8)
            guard let section = readme.range(of: "## Quick start") else { return [] }
            let rest = readme[section.upperBound...]
            guard let open = rest.range(of: "```sh\n"), let close = rest[open.upperBound...].range(of: "```") else { return [] }
            return rest[open.upperBound..<close.lowerBound].split(separator: "\n").map(String.init)
                .filter { !$0.trimmingCharacters(in: .whitespaces).isEmpty && !$0.hasPrefix("#") }
        }
    }

    /// /dev/kvm opens and offers guest_memfd (what `--host auto` needs to pick it).
    static let kvmOffersGuestMemfd: Bool = {
        guard FileManager.default.isWritableFile(atPath: "/dev/kvm"),
              let caps = try? Gmemctl.run(["caps", "--host", "kvm", "--output", "json"]), caps.exitCode == 0,
              let document = try? JSONValue.parse(caps.stdout),
              case .array(let types)? = document["capabilities"]?["vmTypes"] else { return false }
        return types.contains { $0["guestMemfd"] == .bool(true) }
    }()

    @Test func theQuickStartIsBootstrapThenOneRunThenTheTests() throws {
        let commands = try Self.quickStart
        #expect(commands.count == 3, "\(commands)")
        #expect(commands.first == "./scripts/bootstrap")
        #expect(commands.dropFirst().first?.hasPrefix("swift run gmemctl ") == true)
        #expect(commands.last == "swift test")
    }

    @Test func bootstrapSucceedsHere() throws {
        let bootstrap = try #require(try Self.quickStart.first)
        let script = Gmemctl.repositoryRoot.appendingPathComponent(String(bootstrap.dropFirst(2)))
        #expect(FileManager.default.isExecutableFile(atPath: script.path))
        let result = try ProcessRunnerShim.run(script, [], timeout: 600)
        #expect(result.exitCode == 0, "\(result.stdout)\(result.stderr)")
        #expect(result.stdout.contains("Swift"), "it checks the toolchain: \(result.stdout)")
    }

    /// The main job, as the README writes it, on whatever host this machine has (kvm, or the simulator).
    @Test func theMainJobRunsAsWritten() throws {
        let line = try #require(try Self.quickStart.dropFirst().first)
        let arguments = line.split(separator: " ").dropFirst(3).map(String.init)
        let result = try Gmemctl.run(arguments, timeout: 120)
        #expect(result.exitCode == 0, "\(result.stdout)\(result.stderr)")
        #expect(result.stdout.contains("Verification:"), "\(result.stdout)")
        #expect(result.stdout.contains("Teardown: Applied"), "\(result.stdout)")
    }

    @Test(.enabled(if: ReadmeTests.kvmOffersGuestMemfd, "needs /dev/kvm with guest_memfd"))
    func theMainJobUsesTheRealKernelWhenThereIsOne() throws {
        let line = try #require(try Self.quickStart.dropFirst().first)
        let result = try Gmemctl.run(line.split(separator: " ").dropFirst(3).map(String.init), timeout: 120)
        #expect(result.exitCode == 0, "\(result.stdout)\(result.stderr)")
        #expect(result.stdout.contains(" on kvm"), "\(result.stdout)")
        #expect(result.stdout.contains("guest-access"), "a guest vCPU verified the memory: \(result.stdout)")
    }
}

/// Runs a program other than gmemctl in the repository root.
enum ProcessRunnerShim {
    static func run(_ executable: URL, _ arguments: [String], timeout: Double) throws -> Gmemctl.Output {
        try ProcessRunner.run(executable, arguments, environment: ProcessInfo.processInfo.environment,
                              directory: Gmemctl.repositoryRoot, timeout: timeout)
    }
}
