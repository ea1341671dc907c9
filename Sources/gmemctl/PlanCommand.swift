import ArgumentParser
import Config
import Foundation
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

            Live blocks the change replaces come first, marked -/+ with the reason and what is lost (in JSON: "replacements", each with "replace": true and "destroysData"); apply refuses them without --allow-replace.

            Examples:
              gmemctl plan examples/in-place-mixed.yaml --host sim:gmem-attributes2
              gmemctl plan examples/shared-in-place.yaml --output json

            Exit codes: 0 nothing to change, 1 error (bad manifest, missing capability), 2 changes planned, 64 usage.
            """)

    @Argument(help: "The manifest.") var file: String
    @OptionGroup var hostOptions: HostOptions
    @OptionGroup var agentOptions: AgentOptions
    @Option(help: "Output format: human or json.") var output: OutputFormat = .human
    @Flag(
        help:
            "Include the populate steps of `apply --prefault` (fallocate on guest_memfd, MADV_POPULATE_WRITE on shared backings)."
    )
    var prefault = false

    func run() throws {
        let (service, manifest) = try GuestServices.open(for: file, hostOptions, agentOptions, format: output)
        try emit(
            try service.plan(try manifest ?? ManifestInput.load(file, format: output), file: file, prefault: prefault),
            host: service.hostView)
    }

    private func emit(_ plan: Plan, host: HostView) throws {
        switch output {
        case .human: print(HumanOutput.plan(plan, host: host, color: Terminal.colorEnabled(for: STDOUT_FILENO)))
        case .json: try JSONOutput.print(PlanJSON(plan, host: host))
        }
        if plan.hasChanges { throw ExitCode(2) }
    }
}
