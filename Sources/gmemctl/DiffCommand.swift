import ArgumentParser
import Config
import Foundation
import GmemAgent
import GmemCore
import GmemKVM
import GmemProtocol
import GmemSimulator

struct DiffCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "diff",
        abstract: "Compare a guest's live state on a host with its manifest.",
        discussion: """
            Reports per VM, block, mapping, private/shared range and listener what differs. Blocks that converging would replace (and whose contents it would destroy) come first, marked -/+, as in `gmemctl plan`.

            Examples:
              gmemctl diff examples/in-place-mixed.yaml --host sim:gmem-attributes2
              gmemctl diff examples/in-place-mixed.yaml --host sim:gmem-attributes2 --output json

            Exit codes: 0 no drift, 1 error, 2 drift present, 64 usage.
            """)

    @Argument(help: "The manifest.") var file: String
    @OptionGroup var hostOptions: HostOptions
    @OptionGroup var agentOptions: AgentOptions
    @Option(help: "Output format: human or json.") var output: OutputFormat = .human

    struct EntryJSON: Encodable {
        var change: String
        var kind: String
        var name: String
        var expected: String?
        var actual: String?
        var gpaRanges: [String]
        var replace: Bool
        var destroysData: Bool
    }

    struct DiffJSON: Encodable {
        var formatVersion = JSONOutput.formatVersion
        var host: String
        var guest: String
        var changes: Bool
        var replacements: [ReplacementJSON]
        var destroysData: Bool
        var entries: [EntryJSON]

        init(_ diff: StateDiff, host: HostView) {
            self.host = host.label
            guest = diff.guest
            changes = diff.hasChanges
            replacements = diff.replacements.map(ReplacementJSON.init)
            destroysData = diff.replacements.contains(where: \.destroysData)
            let replaced = Dictionary(diff.replacements.map { ($0.block, $0) }, uniquingKeysWith: { first, _ in first })
            entries = diff.entries.map { entry in
                let replacement = (entry.kind == .block || entry.kind == .mapping) ? replaced[entry.name] : nil
                return EntryJSON(
                    change: entry.change.rawValue, kind: entry.kind.rawValue, name: entry.name,
                    expected: entry.expected,
                    actual: entry.actual, gpaRanges: entry.gpaRanges, replace: replacement != nil,
                    destroysData: replacement?.destroysData ?? false)
            }
        }
    }

    func run() throws {
        let (service, manifest) = try GuestServices.open(for: file, hostOptions, agentOptions, format: output)
        try emit(
            try service.diff(try manifest ?? ManifestInput.load(file, format: output), file: file),
            host: service.hostView)
    }

    private func emit(_ diff: StateDiff, host: HostView) throws {
        switch output {
        case .human: print(HumanOutput.diff(diff, host: host, color: Terminal.colorEnabled(for: STDOUT_FILENO)))
        case .json: try JSONOutput.print(DiffJSON(diff, host: host))
        }
        if diff.hasChanges { throw ExitCode(2) }
    }
}
