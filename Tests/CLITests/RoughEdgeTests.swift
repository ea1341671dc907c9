import Foundation
import ProcessSupport
import Testing

/// The edges a newcomer hits first: typos, help, paths in help, conversions the kernel would refuse, colour,
/// progress output, wording, the version.
@Suite struct RoughEdgeTests {
    static let commands: [[String]] = [
        [], ["validate"], ["caps"], ["profiles"], ["plan"], ["apply"], ["diff"], ["get"],
        ["convert"], ["destroy"], ["events"], ["agent"], ["agent", "run"], ["agent", "stop"],
        ["schema"],
    ]

    @Test func aMistypedCommandGetsASuggestion() throws {
        let result = try Gmemctl.run(["aply", "examples/shared-in-place.yaml"])
        #expect(result.exitCode == 64)
        #expect(result.stderr.hasPrefix("error: unknown command 'aply'; did you mean 'apply'?"), "\(result.stderr)")
    }

    @Test func helpForAnUnknownCommandIsAnError() throws {
        let result = try Gmemctl.run(["help", "aply"])
        #expect(result.exitCode == 64)
        #expect(result.stderr.contains("did you mean 'apply'?"), "\(result.stderr)")
        #expect(!result.stdout.contains("OVERVIEW"), "the main help is not printed instead")
        #expect(try Gmemctl.run(["help", "apply"]).exitCode == 0)
    }

    @Test func everyPathInHelpTextExists() throws {
        var checked = 0
        for command in Self.commands {
            let help = try Gmemctl.run(command + ["--help"])
            #expect(help.exitCode == 0, "\(command): \(help.stderr)")
            let pattern = try NSRegularExpression(pattern: #"(?<![\w$/])(examples|docs|scripts)/[\w./*-]+"#)
            let text = help.stdout as NSString
            for match in pattern.matches(in: help.stdout, range: NSRange(location: 0, length: text.length)) {
                var path = text.substring(with: match.range)
                while path.hasSuffix(".") || path.hasSuffix(",") { path.removeLast() }
                checked += 1
                if path.contains("*") {
                    let directory = Gmemctl.repositoryRoot.appendingPathComponent(
                        (path as NSString).deletingLastPathComponent)
                    #expect(
                        FileManager.default.fileExists(atPath: directory.path),
                        "gmemctl \(command.joined(separator: " ")) --help names \(path)")
                } else {
                    #expect(
                        FileManager.default.fileExists(
                            atPath: Gmemctl.repositoryRoot.appendingPathComponent(path).path),
                        "gmemctl \(command.joined(separator: " ")) --help names \(path), which does not exist")
                }
            }
            for word in ["seed", "POC session", "ARCHITECTURE.md", "kvm-uapi.md", "../shared"] {
                #expect(
                    !help.stdout.contains(word), "gmemctl \(command.joined(separator: " ")) --help speaks of \(word)")
            }
        }
        #expect(checked > 5, "the scan found the examples the help names")
    }

    @Test func versionNamesThePackageVersion() throws {
        let result = try Gmemctl.run(["--version"])
        #expect(result.exitCode == 0)
        let pattern = #"^gmemctl \d+\.\d+\.\d+( \(git [A-Za-z0-9._+/-]+\))?\n$"#
        #expect(result.stdout.range(of: pattern, options: .regularExpression) != nil, "\(result.stdout)")
    }

    static let builtFromACheckout =
        FileManager.default.fileExists(atPath: Gmemctl.repositoryRoot.appendingPathComponent(".git").path)
        && ProcessInfo.processInfo.environment["PATH"].map { path in
            path.split(separator: ":").contains { FileManager.default.isExecutableFile(atPath: "\($0)/git") }
        } == true

    /// The revision is recorded when gmemctl is built (Plugins/BuildRevision), not looked up when it runs: with
    /// no git to run and outside the repository, `--version` still names the commit this test runs at (the
    /// one `swift test` just built; a commit made between the build and this test would fail it).
    @Test(.enabled(if: RoughEdgeTests.builtFromACheckout, "needs git and a git checkout"))
    func versionIsTheRevisionAtBuildTimeWithoutRunningGit() throws {
        let elsewhere = try TemporaryDirectory(prefix: "gmemctl-version")
        let result = try ProcessRunner.run(
            try Gmemctl.binary(), ["--version"], environment: ["PATH": elsewhere.path],
            directory: elsewhere.url, timeout: 30)
        #expect(result.exitCode == 0, "\(result.stderr)")
        let expected = try Gmemctl.run(["--version"]).stdout
        #expect(result.stdout == expected, "the same wherever and however it runs")
        let described = try #require(
            result.stdout.firstMatch(of: /\(git ([^)]+)\)/)?.1,
            "no revision: \(result.stdout)")
        // `git describe --always --dirty --tags` (TAG-N-gHASH, TAG or HASH, then -dirty if the tree had
        // changes): git itself says which commit that names.
        var revision = String(described)
        if revision.hasSuffix("-dirty") { revision.removeLast("-dirty".count) }
        let git = { (arguments: [String]) in
            try ProcessRunner.run(
                URL(fileURLWithPath: "/usr/bin/env"), ["git"] + arguments,
                environment: ProcessInfo.processInfo.environment, directory: Gmemctl.repositoryRoot,
                timeout: 30
            ).stdout
        }
        let named = try git(["rev-parse", "--verify", "--quiet", revision + "^{commit}"])
        let head = try git(["rev-parse", "HEAD"])
        #expect(!named.isEmpty && named == head, "gmemctl says \(described), which is not HEAD (\(head))")
    }

    @Test func convertIsCheckedAgainstTheLiveGuestBeforeTheKernel() throws {
        let workspace = try CLIWorkspace()
        defer { workspace.remove() }
        #expect(try workspace.run(["apply", try workspace.write("cvm.yaml", CLIWorkspace.manifest())]).exitCode == 0)
        let eventsBefore = try workspace.run(["events", "cvm"]).stdout

        let misaligned = try workspace.run(["convert", "cvm", "--gpa", "0x1001", "--size", "4KiB", "--to", "shared"])
        #expect(misaligned.exitCode == 1)
        #expect(
            misaligned.stderr.hasPrefix(
                "error: --gpa 0x1001 is not aligned to the 4 KiB page size; nothing was sent to the kernel. Use --gpa 0x1000 or 0x2000"
            ),
            "\(misaligned.stderr)")
        let odd = try workspace.run(["convert", "cvm", "--gpa", "0x1000", "--size", "5000", "--to", "shared"])
        #expect(odd.exitCode == 1)
        #expect(odd.stderr.contains("Use --size 4 KiB or 8 KiB"), "\(odd.stderr)")
        let outside = try workspace.run(["convert", "cvm", "--gpa", "0x3F00000", "--size", "2MiB", "--to", "shared"])
        #expect(outside.exitCode == 1)
        #expect(
            outside.stderr.contains("has no memslot; nothing was sent to the kernel. Guest memory: 0x0-0x3ffffff"),
            "\(outside.stderr)")

        let get = try workspace.run(["get", "cvm"])
        #expect(!get.stdout.contains("last operation did not finish"), "\(get.stdout)")
        #expect(try workspace.run(["events", "cvm"]).stdout == eventsBefore, "no listener was told anything")
    }

    @Test func aMistypedGuestNameGetsASuggestion() throws {
        let workspace = try CLIWorkspace()
        defer { workspace.remove() }
        #expect(
            try workspace.run(["apply", try workspace.write("cvm.yaml", CLIWorkspace.manifest(name: "tdx-guest"))])
                .exitCode == 0)
        for command in [
            ["get", "tdx-gest"], ["destroy", "tdx-gest"], ["events", "tdx-gest"],
            ["convert", "tdx-gest", "--gpa", "0", "--size", "4KiB", "--to", "shared"],
        ] {
            let result = try workspace.run(command)
            #expect(result.exitCode == 1)
            #expect(
                result.stderr.contains("guest tdx-gest does not exist")
                    && result.stderr.contains("did you mean tdx-guest?"),
                "\(command): \(result.stderr)")
        }
        #expect(
            !(try workspace.run(["get", "zzz"]).stderr.contains("did you mean")), "no suggestion when nothing is close")
    }

    @Test func planMarkersAreColouredOnlyWhenAsked() throws {
        let workspace = try CLIWorkspace()
        defer { workspace.remove() }
        #expect(try workspace.run(["apply", try workspace.write("a.yaml", CLIWorkspace.manifest())]).exitCode == 0)
        let changed = try workspace.write("b.yaml", CLIWorkspace.manifest(size: "128MiB"))
        let piped = try workspace.run(["plan", changed])
        #expect(!piped.stdout.contains("\u{1B}["), "not a terminal: no colour")
        let forced = try workspace.run(["plan", changed, "--color", "always"])
        #expect(forced.stdout.contains("\u{1B}[1;31m-\u{1B}[0m/\u{1B}[32m+\u{1B}[0m block ram"), "\(forced.stdout)")
        let never = try workspace.run(["diff", changed, "--color=never"])
        #expect(!never.stdout.contains("\u{1B}["))
        let bad = try workspace.run(["plan", changed, "--color", "sometimes"])
        #expect(bad.exitCode == 64)
        #expect(bad.stderr.hasPrefix("error: --color takes auto, always or never"))
    }

    @Test func oneStepIsOneStep() throws {
        let workspace = try CLIWorkspace()
        defer { workspace.remove() }
        let manifest = """
            apiVersion: gmemctl/v1
            kind: GuestMemory
            metadata:
              name: single
            spec:
              vm:
                type: tdx
              blocks:
                - name: ram
                  size: 64MiB
                  backend:
                    type: in-place
              mappings:
                - { block: ram, offset: 0, size: 64MiB, gpa: 0 }
              layout:
                default: private
            """
        #expect(try workspace.run(["apply", try workspace.write("single.yaml", manifest)]).exitCode == 0)
        let convert = try workspace.run(["convert", "single", "--gpa", "0x200000", "--size", "2MiB", "--to", "shared"])
        #expect(convert.exitCode == 0, "\(convert.stderr)")
        #expect(convert.stdout.contains("Applied 1 step."), "\(convert.stdout)")
        let get = try workspace.run(["get", "single"])
        #expect(get.stdout.contains("layout: 3 runs"), "\(get.stdout)")
    }

    /// What a terminal shows after the bytes: `\r` returns to column 0, `ESC [K` erases to the end of the line.
    static func screen(_ output: String) -> [String] {
        output.replacingOccurrences(of: "\r\n", with: "\n").split(separator: "\n", omittingEmptySubsequences: false).map
        { line in
            var cells: [Character] = []
            var cursor = 0
            var rest = Substring(line)
            while let character = rest.first {
                if rest.hasPrefix("\u{1B}[K") {
                    cells.removeSubrange(min(cursor, cells.count)...)
                    rest = rest.dropFirst(3)
                    continue
                }
                rest = rest.dropFirst()
                if character == "\r" { cursor = 0; continue }
                if cursor < cells.count { cells[cursor] = character } else { cells.append(character) }
                cursor += 1
            }
            return String(cells)
        }
    }

    static let scriptAvailable = FileManager.default.isExecutableFile(atPath: "/usr/bin/script")

    @Test(.enabled(if: RoughEdgeTests.scriptAvailable, "needs script(1) for a pseudo-terminal"))
    func theProgressBarRedrawsCleanlyOnATerminal() throws {
        let workspace = try CLIWorkspace()
        defer { workspace.remove() }
        let manifest = try workspace.write("big.yaml", CLIWorkspace.manifest(size: "4GiB"))
        let command =
            ([
                try Gmemctl.binary().path, "apply", manifest, "--prefault", "--host", "sim:gmem-attributes2",
                "--state", workspace.state, "--no-agent",
            ]).map { "'\($0)'" }.joined(separator: " ")
        let result = try ProcessRunner.run(
            URL(fileURLWithPath: "/usr/bin/script"), ["-qefc", command, "/dev/null"],
            environment: ["NO_COLOR": "1", "PATH": "/usr/bin:/bin", "TERM": "xterm"],
            directory: Gmemctl.repositoryRoot, timeout: 60)
        #expect(result.exitCode == 0, "\(result.stdout)\(result.stderr)")
        let bars = Self.screen(result.stdout).filter { $0.contains("populating") }
        #expect(bars == ["populating ram [##############################] 4 GiB / 4 GiB"], "\(bars)")
        #expect(result.stdout.contains("\r"), "the bar redraws in place")
    }

    /// `apply --prefault` runs no step that `plan --prefault` does not show.
    @Test func planPrefaultShowsThePopulateStepsApplyRuns() throws {
        let workspace = try CLIWorkspace()
        defer { workspace.remove() }
        let manifest = try workspace.write("cvm.yaml", CLIWorkspace.manifest())
        let plain = try JSONValue.parse(try workspace.run(["plan", manifest, "--output", "json"]).stdout)
        let planned = try JSONValue.parse(
            try workspace.run(["plan", manifest, "--prefault", "--output", "json"]).stdout)
        let applied = try JSONValue.parse(
            try workspace.run(["apply", manifest, "--prefault", "--output", "json"]).stdout)
        guard case .array(let withPrefault)? = planned["operations"], case .array(let without)? = plain["operations"]
        else {
            Issue.record("no operations")
            return
        }
        #expect(withPrefault.count == without.count + 1)
        #expect(withPrefault.last?["op"] == .string("populate"))
        #expect(
            applied["plan"]?["operations"] == planned["operations"], "apply ran the plan that plan --prefault showed")
    }
}
