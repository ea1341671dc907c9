import ArgumentParser
import Config
import GmemAgent
import GmemCore
import GmemKVM
import GmemProtocol
import GmemSimulator

struct PlanCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plan",
        abstract: "Show the exact ordered operations apply would perform (a dry run).",
        discussion: """
            The plan comes from the same code as apply: every ioctl, mmap, discard and listener notification, in order. Values only the kernel can give (file descriptors, host addresses) are named by block.

            Examples:
              gmemctl plan examples/in-place.yaml --host sim:gmem-attributes2
              gmemctl plan examples/shared-in-place.yaml --output json

            Exit codes: 0 nothing to change, 1 error (bad manifest, missing capability), 2 changes planned, 64 usage.
            """)

    @Argument(help: "The manifest.") var file: String
    @OptionGroup var hostOptions: HostOptions
    @OptionGroup var agentOptions: AgentOptions
    @Option(help: "Output format: human or json.") var output: OutputFormat = .human

    func run() throws {
        let manifest = try ManifestInput.load(file, format: output)
        if let session = try AgentSession.find(agentOptions, host: hostOptions) {
            let result = try session.call(try .manifest(.plan, file: file), as: PlanResult.self, file: file, format: output)
            try emit(result.plan, host: session.hostView)
            return
        }
        let host = try hostOptions.open()
        let plan: Plan
        do {
            plan = try Provisioner(host: host).plan(manifest)
        } catch {
            try ManifestInput.report(error, file: file, format: output)
        }
        try emit(plan, host: HostView(host))
    }

    private func emit(_ plan: Plan, host: HostView) throws {
        switch output {
        case .human: print(HumanOutput.plan(plan, host: host))
        case .json: try JSONOutput.print(PlanJSON(plan, host: host))
        }
        if plan.hasChanges { throw ExitCode(2) }
    }
}
