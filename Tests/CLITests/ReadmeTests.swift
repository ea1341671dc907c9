import Foundation
import ProcessSupport
import Testing

/// The README's quick start, read from the README itself so that it cannot drift: every command of its first
/// `sh` block runs here. In the working tree, `swift run gmemctl` runs as the already built binary (the test
/// runner was built by `swift build`); with GMEMCTL_FRESH_CLONE_TEST=1 (.ci/run) the commands also run exactly
/// as written in a fresh clone. `swift test` is the command running this test, so it is only checked to be that.
@Suite struct ReadmeTests {
    static var quickStart: [String] {
        get throws {
            let readme = try String(
                contentsOf: Gmemctl.repositoryRoot.appendingPathComponent("README.md"), encoding: .utf8)
            guard let section = readme.range(of: "## Quick start") else { return [] }
            let rest = readme[section.upperBound...]
            guard let open = rest.range(of: "```sh\n"), let close = rest[open.upperBound...].range(of: "```") else {
                return []
            }
            return rest[open.upperBound..<close.lowerBound].split(separator: "\n").map(String.init)
                .filter { !$0.trimmingCharacters(in: .whitespaces).isEmpty && !$0.hasPrefix("#") }
        }
    }

    /// /dev/kvm opens and offers guest_memfd (what `--host auto` needs to pick it).
    static let kvmOffersGuestMemfd: Bool = {
        guard FileManager.default.isWritableFile(atPath: "/dev/kvm"),
            let caps = try? Gmemctl.run(["caps", "--host", "kvm", "--output", "json"]), caps.exitCode == 0,
            let document = try? JSONValue.parse(caps.stdout),
            case .array(let types)? = document["capabilities"]?["vmTypes"]
        else { return false }
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

    /// `git` and `swift` on PATH, and the repository a git checkout (what a fresh clone needs).
    static let canClone: Bool = {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
        let found = { (tool: String) in
            path.split(separator: ":").contains { FileManager.default.isExecutableFile(atPath: "\($0)/\(tool)") }
        }
        return found("git") && found("swift")
            && FileManager.default.fileExists(atPath: Gmemctl.repositoryRoot.appendingPathComponent(".git").path)
    }()

    /// Set by .ci/run (in a step of its own): the fresh-clone test builds gmemctl from nothing, which takes
    /// minutes.
    static let freshCloneRequested = ProcessInfo.processInfo.environment["GMEMCTL_FRESH_CLONE_TEST"] == "1"

    /// The must-show of the README: on a fresh clone (of this repository's HEAD, into a temporary directory),
    /// every quick-start command runs exactly as the README writes it, through `sh`, `swift run` included.
    /// Only `swift test` is left out: it is the command running this test (and would run it again).
    @Test(
        .enabled(
            if: ReadmeTests.freshCloneRequested,
            "slow (a full build): set GMEMCTL_FRESH_CLONE_TEST=1, as .ci/run does"),
        .enabled(if: ReadmeTests.canClone, "needs git, swift and a git checkout"))
    func theQuickStartPassesOnAFreshClone() throws {
        let commands = try Self.quickStart
        #expect(commands.last == "swift test")
        let scratch = try TemporaryDirectory(prefix: "gmemctl-fresh-clone")
        let clone = scratch.appendingPathComponent("gmemctl")
        var environment = ProcessInfo.processInfo.environment
        environment["GMEMCTL_FRESH_CLONE_TEST"] = nil
        // The clone's guests, agents and SwiftPM's lock files live in the scratch directory too, never in the
        // user's directories or the system's /tmp.
        for (variable, name) in [("XDG_STATE_HOME", "state"), ("XDG_RUNTIME_DIR", "run"), ("TMPDIR", "tmp")] {
            let directory = scratch.appendingPathComponent(name)
            try FileManager.default.createDirectory(
                at: directory, withIntermediateDirectories: true,
                attributes: [.posixPermissions: 0o700])
            environment[variable] = directory.path
        }
        let cloneCommand = ["git", "clone", "--quiet", "--local", Gmemctl.repositoryRoot.path, clone.path]
        let cloned = try ProcessRunner.run(
            URL(fileURLWithPath: "/usr/bin/env"), cloneCommand, environment: environment,
            directory: scratch.url, timeout: 120)
        try #require(cloned.exitCode == 0, "git clone: \(cloned.stderr)")
        for command in commands.dropLast() {
            let started = Date()
            let result = try ProcessRunner.run(
                URL(fileURLWithPath: "/bin/sh"), ["-c", command],
                environment: environment, directory: clone, timeout: 1800)
            let seconds = Int(Date().timeIntervalSince(started))
            #expect(
                result.exitCode == 0,
                "`\(command)` in a fresh clone (\(seconds) s): \(result.stdout)\(result.stderr)")
            if command.hasPrefix("swift run gmemctl ") {
                #expect(result.stdout.contains("Verification:"), "\(result.stdout)")
                #expect(result.stdout.contains("Teardown: Applied"), "\(result.stdout)")
                let built = clone.appendingPathComponent(".build/debug/gmemctl").path
                #expect(FileManager.default.isExecutableFile(atPath: built), "the clone built its own gmemctl")
            }
            print("fresh clone: `\(command)` took \(seconds) s")
        }
    }
}

/// Runs a program other than gmemctl in the repository root.
enum ProcessRunnerShim {
    static func run(_ executable: URL, _ arguments: [String], timeout: Double) throws -> Gmemctl.Output {
        try ProcessRunner.run(
            executable, arguments, environment: ProcessInfo.processInfo.environment,
            directory: Gmemctl.repositoryRoot, timeout: timeout)
    }
}
