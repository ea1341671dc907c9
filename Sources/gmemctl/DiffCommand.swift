import ArgumentParser
import Config
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
            Reports per VM, block, mapping, private/shared range and listener what differs.

            Examples:
              gmemctl diff examples/in-place.yaml --host sim:gmem-attributes2
              gmemctl diff examples/in-place.yaml --host sim:gmem-attributes2 --output json

            Exit codes: 0 no drift, 1 error, 2 drift present, 64 usage.
            """)

    @Argument(help: "The manifest.") var file: String
    @OptionGroup var hostOptions: HostOptions
    @OptionGroup var agentOptions: AgentOptions
    @Option(help: "Output format: human or json.") var output: OutputFormat = .human

    struct DiffJSON: Encodable {
        var formatVersion = JSONOutput.formatVersion
        var host: String
        var guest: String
        var changes: Bool
        var entries: [DiffEntry]
    }

    func run() throws {
        let manifest = try ManifestInput.load(file, format: output)
        if let session = try AgentSession.find(agentOptions, host: hostOptions) {
            let result = try session.call(try .manifest(.diff, file: file), as: DiffResult.self, file: file, format: output)
            try emit(result.diff, host: session.hostView)
            return
        }
        let host = try hostOptions.open()
        let diff: StateDiff
        do {
            diff = try Provisioner(host: host).diff(manifest)
        } catch {
            try ManifestInput.report(error, file: file, format: output)
        }
        try emit(diff, host: HostView(host))
    }

    private func emit(_ diff: StateDiff, host: HostView) throws {
        switch output {
        case .human: print(HumanOutput.diff(diff, host: host))
        case .json: try JSONOutput.print(DiffJSON(host: host.label, guest: diff.guest, changes: diff.hasChanges, entries: diff.entries))
        }
        if diff.hasChanges { throw ExitCode(2) }
    }
}
