import Foundation
import Testing

/// A change that rebuilds a live block loses its contents: plan and diff say so first (-/+), apply refuses it
/// without --allow-replace, and nothing is torn down before the refusal.
@Suite struct ReplacementTests {
    @Test func planAndDiffShowTheReplacementFirstAndApplyRefusesIt() throws {
        let workspace = try CLIWorkspace()
        defer { workspace.remove() }
        let before = try workspace.write("a.yaml", CLIWorkspace.manifest(size: "64MiB"))
        let after = try workspace.write("b.yaml", CLIWorkspace.manifest(size: "128MiB"))
        #expect(try workspace.run(["apply", before]).exitCode == 0)
        let liveBefore = try workspace.run(["get", "cvm", "--output", "json"]).stdout

        let plan = try workspace.run(["plan", after])
        #expect(plan.exitCode == 2, "\(plan.stdout)\(plan.stderr)")
        let lines = plan.stdout.split(separator: "\n").map(String.init)
        #expect(
            lines.dropFirst().first?.hasPrefix(
                "Replacements (1 block torn down and built again; contents lost in 1 block)") == true, "\(plan.stdout)")
        #expect(lines.dropFirst(2).first == "  -/+ block ram: replaced", "\(plan.stdout)")
        #expect(plan.stdout.contains("size 64 MiB -> 128 MiB"))
        #expect(plan.stdout.contains("destroys data: 64 MiB of memory contents, memslot 0"))
        let replacementLine = try #require(lines.firstIndex { $0.contains("-/+") })
        let operationsLine = try #require(lines.firstIndex { $0.hasPrefix("Operations") })
        #expect(replacementLine < operationsLine, "the replacement comes before the operations")

        let planJSON = try JSONValue.parse(try workspace.run(["plan", after, "--output", "json"]).stdout)
        #expect(planJSON["destroysData"] == .bool(true))
        guard case .array(let replacements)? = planJSON["replacements"] else { Issue.record("no replacements"); return }
        #expect(replacements.count == 1)
        #expect(replacements.first?["replace"] == .bool(true))
        #expect(replacements.first?["destroysData"] == .bool(true))
        #expect(replacements.first?["block"] == .string("ram"))

        let diff = try workspace.run(["diff", after])
        #expect(diff.exitCode == 2)
        #expect(diff.stdout.split(separator: "\n").dropFirst(2).first == "  -/+ block ram: replaced", "\(diff.stdout)")
        let diffJSON = try JSONValue.parse(try workspace.run(["diff", after, "--output", "json"]).stdout)
        #expect(diffJSON["destroysData"] == .bool(true))
        guard case .array(let entries)? = diffJSON["entries"] else { Issue.record("no entries"); return }
        #expect(
            entries.contains {
                $0["kind"] == .string("block") && $0["replace"] == .bool(true) && $0["destroysData"] == .bool(true)
            })

        let refused = try workspace.run(["apply", after])
        #expect(refused.exitCode == 1)
        #expect(refused.stderr.hasPrefix("error: apply would replace live block ram"), "\(refused.stderr)")
        #expect(refused.stderr.contains("--allow-replace"))
        #expect(!refused.stdout.contains("Applied"), "nothing ran: \(refused.stdout)")
        #expect(
            try workspace.run(["get", "cvm", "--output", "json"]).stdout == liveBefore, "the live guest is untouched")

        let refusedJSON = try workspace.run(["apply", after, "--output", "json"])
        #expect(refusedJSON.exitCode == 1)
        let document = try JSONValue.parse(refusedJSON.stdout)
        #expect(document["error"]?["code"] == .string("replace-refused"))

        let allowed = try workspace.run(["apply", after, "--allow-replace"])
        #expect(allowed.exitCode == 0, "\(allowed.stdout)\(allowed.stderr)")
        #expect(try workspace.run(["diff", after]).exitCode == 0)
    }

    @Test func aChangeThatKeepsTheBlocksIsNotAReplacement() throws {
        let workspace = try CLIWorkspace()
        defer { workspace.remove() }
        #expect(try workspace.run(["apply", try workspace.write("a.yaml", CLIWorkspace.manifest())]).exitCode == 0)
        let moved = try workspace.write("b.yaml", CLIWorkspace.manifest(shared: ["0x800000-0x9FFFFF"]))
        let plan = try workspace.run(["plan", moved, "--output", "json"])
        #expect(try JSONValue.parse(plan.stdout)["replacements"] == .array([]))
        #expect(try workspace.run(["apply", moved]).exitCode == 0, "a layout change applies without --allow-replace")
    }
}
