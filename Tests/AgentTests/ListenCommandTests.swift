import Foundation
import GmemProtocol
import ProcessSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `gmemctl listen` as scripts use it: a listener process beside a real agent, its stdout read as it comes.
@Suite struct ListenCommandTests {
    /// A running `gmemctl listen`, its stdout and stderr in files (no pipe to fill while the test waits).
    final class ListenProcess {
        let process = Process()
        private let outPath: String
        private let errPath: String

        init(_ world: AgentHarness, _ arguments: [String]) throws {
            let tag = UUID().uuidString.prefix(6)
            outPath = "\(world.directory)/listen-\(tag).out"
            errPath = "\(world.directory)/listen-\(tag).err"
            FileManager.default.createFile(atPath: outPath, contents: nil)
            FileManager.default.createFile(atPath: errPath, contents: nil)
            process.executableURL = URL(fileURLWithPath: try AgentHarness.binary())
            process.arguments = ["listen"] + arguments
            process.environment = world.environment
            process.currentDirectoryURL = AgentHarness.repositoryRoot
            process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: outPath))
            process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: errPath))
            process.standardInput = FileHandle.nullDevice
            try process.run()
        }

        deinit {
            if process.isRunning {
                kill(process.processIdentifier, SIGKILL)
                process.waitUntilExit()
            }
        }

        var stdout: String { (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? "" }
        var stderr: String { (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? "" }
        var lines: [String] { stdout.split(separator: "\n").map(String.init) }
        var all: String { stdout + stderr }

        /// Waits until stdout has at least `count` lines (each flushed as it is printed).
        func waitForLines(_ count: Int, within seconds: Double = 20) -> Bool {
            Wait.until(seconds) { lines.count >= count }
        }

        func exitCode(within seconds: Double = 20) -> Int32? {
            guard process.waitForExit(within: seconds) else { return nil }
            return process.terminationStatus
        }
    }

    static let host = ["--host", "sim:gmem-attributes2"]

    /// An agent with the `listened` guest applied (its manifest declares listener vfio0) before anyone listens.
    func world() throws -> AgentHarness {
        let world = try AgentHarness()
        try world.startAgent(Self.host)
        let applied = try world.run(["apply", try world.manifest("listened", listenedManifest())] + Self.host)
        #expect(applied.exitCode == 0, "\(applied.all)")
        return world
    }

    func convert(_ world: AgentHarness, _ gpa: String, to state: String) throws -> ProcessRunner.Output {
        try world.run(["convert", "listened", "--gpa", gpa, "--size", "2MiB", "--to", state] + Self.host)
    }

    @Test func acceptsEveryEventInOrderAndEndsWithTheAgent() throws {
        let world = try world()
        let listen = try ListenProcess(world, ["listened", "--listener", "vfio0"])
        #expect(listen.waitForLines(1), "\(listen.all)")
        #expect(listen.lines.first == "listening as vfio0 of guest listened on \(world.socket)", "\(listen.all)")

        let toPrivate = try convert(world, "0x200000", to: "private")
        #expect(toPrivate.exitCode == 0, "\(toPrivate.all)")
        let toShared = try convert(world, "0x200000", to: "shared")
        #expect(toShared.exitCode == 0, "\(toShared.all)")
        // Each event is printed before it is answered, so both lines are there once the conversions returned.
        let events = Array(listen.lines.dropFirst())
        #expect(events.count == 2, "\(listen.all)")
        let unmap = try #require(events.first), map = try #require(events.last)
        #expect(unmap.hasSuffix(" unmap 0x200000+0x200000 -> accepted"), "\(unmap)")
        #expect(map.hasSuffix(" map 0x200000+0x200000 -> accepted"), "\(map)")
        let sequences = events.compactMap { $0.split(separator: " ").first.flatMap { UInt64($0.dropFirst()) } }
        #expect(sequences.count == 2 && sequences[0] < sequences[1], "sequences ascend: \(events)")
        #expect(try world.run(["diff", try world.manifest("listened", listenedManifest())] + Self.host).exitCode == 0)

        // The agent stopping ends the listener with exit 0, and it says so.
        _ = try world.stopAgent()
        #expect(listen.exitCode() == 0, "\(listen.all)")
        #expect(listen.lines.last?.contains("the agent stopped; no longer listening") == true, "\(listen.all)")
    }

    @Test func rejectUnmapStopsOverlappingConversionsOnly() throws {
        let world = try world()
        let listen = try ListenProcess(
            world,
            [
                "listened", "--listener", "vfio0", "--reject-unmap", "0x400000+4KiB", "--reject-unmap",
                "0x1000000-0x11FFFFF",
                "--count", "3",
            ])
        #expect(listen.waitForLines(1), "\(listen.all)")

        let refused = try convert(world, "0x400000", to: "private")
        #expect(refused.exitCode == 1, "\(refused.all)")
        #expect(refused.all.contains("listener vfio0 rejected unmap of 0x400000+0x200000"), "\(refused.all)")
        #expect(refused.all.contains("unmap overlaps 0x400000-0x400FFF (--reject-unmap)"), "\(refused.all)")
        let refusedToo = try convert(world, "0x1000000", to: "private")
        #expect(refusedToo.exitCode == 1, "\(refusedToo.all)")
        // No overlap: accepted.
        let accepted = try convert(world, "0x800000", to: "private")
        #expect(accepted.exitCode == 0, "\(accepted.all)")

        // --count 3: done after the third answer.
        #expect(listen.exitCode() == 0, "\(listen.all)")
        let events = Array(listen.lines.dropFirst())
        #expect(events.count == 3, "\(listen.all)")
        #expect(
            events[0].contains("unmap 0x400000+0x200000 -> rejected: unmap overlaps 0x400000-0x400FFF"), "\(events)")
        #expect(events[1].contains("unmap 0x1000000+0x200000 -> rejected: unmap overlaps 0x1000000-0x11FFFFF"))
        #expect(events[2].hasSuffix("unmap 0x800000+0x200000 -> accepted"), "\(events)")
    }

    @Test func execDecidesEachEventFromTheCommandsExitStatus() throws {
        let world = try world()
        let log = "\(world.directory)/exec.log"
        let script = """
            echo "$GMEMCTL_EVENT_SEQUENCE $GMEMCTL_EVENT_KIND $GMEMCTL_EVENT_GPA $GMEMCTL_EVENT_SIZE \
            $GMEMCTL_EVENT_LISTENER $GMEMCTL_EVENT_GUEST" >> \(log)
            echo "chatter on stdout"
            case "$GMEMCTL_EVENT_GPA" in
              0x600000) echo "device busy at $GMEMCTL_EVENT_GPA" >&2; echo "second line" >&2; exit 3;;
              0xa00000) exit 4;;
            esac
            """
        let listen = try ListenProcess(world, ["listened", "--listener", "vfio0", "--exec", script])
        #expect(listen.waitForLines(1), "\(listen.all)")

        #expect(try convert(world, "0x200000", to: "private").exitCode == 0)
        let busy = try convert(world, "0x600000", to: "private")
        #expect(busy.exitCode == 1, "\(busy.all)")
        #expect(busy.all.contains("rejected unmap of 0x600000+0x200000: device busy at 0x600000"), "\(busy.all)")
        let silent = try convert(world, "0xa00000", to: "private")
        #expect(silent.all.contains("rejected unmap of 0xa00000+0x200000: exit status 4"), "\(silent.all)")

        let events = Array(listen.lines.dropFirst())
        #expect(events.count == 3, "\(listen.all)")
        #expect(events[0].hasSuffix("unmap 0x200000+0x200000 -> accepted"), "\(events)")
        #expect(events[1].hasSuffix("unmap 0x600000+0x200000 -> rejected: device busy at 0x600000"), "\(events)")
        #expect(events[2].hasSuffix("unmap 0xa00000+0x200000 -> rejected: exit status 4"), "\(events)")
        // The command's stdout went to stderr, its environment carried the event.
        #expect(!listen.stdout.contains("chatter") && listen.stderr.contains("chatter on stdout"), "\(listen.all)")
        let logged = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        #expect(
            logged.split(separator: "\n").first?.hasSuffix(" unmap 0x200000 0x200000 vfio0 listened") == true,
            "\(logged)")

        // SIGTERM ends it promptly with exit 0.
        kill(listen.process.processIdentifier, SIGTERM)
        #expect(listen.exitCode(within: 10) == 0, "\(listen.all)")
    }

    @Test func jsonLinesParseAndSIGINTEndsIt() throws {
        let world = try world()
        let listen = try ListenProcess(
            world,
            [
                "listened", "--listener", "vfio0", "--output", "json",
                "--reject-unmap", "0x400000-0x5FFFFF",
            ])
        #expect(listen.waitForLines(1), "\(listen.all)")
        #expect(try convert(world, "0x200000", to: "private").exitCode == 0)
        #expect(try convert(world, "0x200000", to: "shared").exitCode == 0)
        #expect(try convert(world, "0x400000", to: "private").exitCode == 1)

        let documents = listen.lines.compactMap {
            try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }
        #expect(documents.count == 4 && listen.lines.count == 4, "\(listen.all)")
        #expect(
            documents.allSatisfy { $0["formatVersion"] as? String == "1.0" && $0["listener"] as? String == "vfio0" })
        #expect(
            documents.first?["type"] as? String == "listening" && documents.first?["socket"] as? String == world.socket)
        let events = documents.dropFirst()
        #expect(events.allSatisfy { $0["type"] as? String == "event" && $0["guest"] as? String == "listened" })
        #expect(events.map { $0["kind"] as? String } == ["unmap", "map", "unmap"])
        #expect(events.map { $0["gpa"] as? Int } == [0x200000, 0x200000, 0x400000])
        #expect(events.allSatisfy { $0["size"] as? Int == 0x200000 && $0["sequence"] is Int })
        #expect(events.map { $0["accept"] as? Bool } == [true, true, false])
        #expect(events.last?["reason"] as? String == "unmap overlaps 0x400000-0x5FFFFF (--reject-unmap)")

        kill(listen.process.processIdentifier, SIGINT)
        #expect(listen.exitCode(within: 10) == 0, "\(listen.all)")
    }

    @Test func clearErrorsWithoutAnAgentOrAGuest() throws {
        let world = try AgentHarness()
        let none = try world.run(["listen", "listened", "--listener", "vfio0"])
        #expect(none.exitCode == 1)
        #expect(none.stderr.contains("no agent runs on \(world.socket)"), "\(none.all)")
        let usage = try world.run(["listen", "listened", "--listener", "vfio0", "--reject-unmap", "0x5000-0x4000"])
        #expect(usage.exitCode == 64, "\(usage.all)")
        #expect(usage.stderr.contains("--reject-unmap 0x5000-0x4000"), "\(usage.all)")
    }
}
