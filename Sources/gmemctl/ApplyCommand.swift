import ArgumentParser
import Config
import GmemAgent
import GmemCore
import GmemKVM
import GmemProtocol
import GmemSimulator

struct ApplyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "apply",
        abstract: "Build a guest's memory on a host as its manifest says, and convert it to the declared layout.",
        discussion: """
            Apply runs exactly the plan `gmemctl plan` shows. On a failure it stops, records what the host really holds, and says which steps ran and which did not; `gmemctl diff` then tells the truth.

            On the real kernel (--host kvm) live objects belong to the process that made them: apply keeps the guest in an agent (`gmemctl agent`), starting one on demand and saying so; --ephemeral instead builds, verifies (--verify), prints the live state and tears down in this process. On the simulator the guest lives in the state file, or in the agent when one runs.

            Examples:
              gmemctl apply examples/in-place.yaml --host sim:gmem-attributes2
              gmemctl apply examples/shared-in-place.yaml --host kvm --ephemeral --verify

            Exit codes: 0 applied (and verified), 1 error or failed verification, 64 usage.
            """)

    @Argument(help: "The manifest.") var file: String
    @OptionGroup var hostOptions: HostOptions
    @OptionGroup var agentOptions: AgentOptions
    @Option(help: "Output format: human or json.") var output: OutputFormat = .human
    @Flag(help: "Build, report and tear down in this process (the only mode on the real kernel without an agent).")
    var ephemeral = false
    @Flag(help: "Verify the result: host probes of every range, and on the real kernel a guest vCPU that reads and writes every shared range.")
    var verify = false
    @Flag(help: "Populate all memory up front (fallocate on guest_memfd, MADV_POPULATE_WRITE on shared backings).")
    var prefault = false

    struct ApplyJSON: Encodable {
        var formatVersion = JSONOutput.formatVersion
        var host: String
        var guest: String
        var changes: Bool
        var plan: PlanJSON
        var report: ReportJSON
        var live: LiveState
        var observation: GuestObservation
        var verification: VerificationReport?
        var teardown: ReportJSON?
    }

    func run() throws {
        let manifest = try ManifestInput.load(file, format: output)
        if !ephemeral, let session = try agentSession() {
            try applyThroughAgent(session)
            return
        }
        let host = try hostOptions.open(persistent: !ephemeral)
        if !host.outlivesProcess && !ephemeral {
            throw CLIError("\(host.label) keeps guests only while this process runs; use --ephemeral (build, verify, tear down), an agent (drop --no-agent), or the simulator (--host sim:PROFILE)")
        }
        var provisioner = Provisioner(host: host)
        provisioner.populateProgress = ProgressBar.forPopulate()
        let plan: Plan
        let report: ApplyReport
        do {
            (plan, report) = try provisioner.apply(manifest, prefault: prefault)
        } catch {
            try ManifestInput.report(error, file: file, format: output)
        }
        let live = host.guest(named: plan.guest)
        let inspection = provisioner.inspect(live, after: report, verify: verify)
        let (observation, verification) = (inspection.observation, inspection.verification)
        var teardown: ApplyReport?
        if ephemeral {
            teardown = try? provisioner.destroy(guest: plan.guest).1
        }
        let flagSet = host.capabilities.guestMemfdFlagSet
        switch output {
        case .human:
            print(HumanOutput.plan(plan, host: host))
            print(HumanOutput.report(report, flagSet: flagSet))
            print(HumanOutput.live(live, observation: observation, host: host))
            if let verification { print(HumanOutput.verification(verification)) }
            if let teardown { print("Teardown: " + HumanOutput.report(teardown, flagSet: flagSet)) }
        case .json:
            try JSONOutput.print(ApplyJSON(host: host.label, guest: plan.guest, changes: plan.hasChanges,
                                           plan: PlanJSON(plan, host: host), report: ReportJSON(report, flagSet: flagSet),
                                           live: live, observation: observation, verification: verification,
                                           teardown: teardown.map { ReportJSON($0, flagSet: flagSet) }))
        }
        if !report.succeeded || verification?.passed == false || teardown?.succeeded == false { throw ExitCode.failure }
    }
}

extension ApplyCommand {
    /// The agent to apply through: a running one; else, where guests would die with this process (kvm) or
    /// where `--agent` names a socket, one started now. Nil: apply here as before (the simulator's state file).
    private func agentSession() throws -> AgentSession? {
        if agentOptions.noAgent { return nil }
        let path = agentOptions.socketPath
        if AgentProbe.state(of: path) == .live { return try AgentSession.find(agentOptions, host: hostOptions) }
        let onKVM = hostOptions.host == "kvm" || (hostOptions.host == "auto" && KVMKernel.canOpen().available)
        guard onKVM || agentOptions.socket != nil else { return nil }
        var arguments = ["--host", onKVM ? "kvm" : hostOptions.host]
        if let state = hostOptions.state, !onKVM { arguments += ["--state", state] }
        if let abi = hostOptions.kvmABI { arguments += ["--kvm-abi", abi] }
        let session = try AgentSpawn.start(socket: path, hostArguments: arguments)
        printNote("started an agent (pid \(session.hello.pid), instance \(session.hello.instance)) on \(path) for \(session.hello.hostLabel); it holds the guests until `gmemctl agent stop`")
        return session
    }

    private func applyThroughAgent(_ session: AgentSession) throws {
        var request = try AgentRequest.manifest(.apply, file: file)
        request.prefault = prefault
        request.verify = verify
        let result = try session.call(request, as: ApplyResult.self, file: file, format: output)
        let live = result.guest.live
        if live.exists { session.remember(guest: live.name, exists: true) }
        let host = session.hostView
        switch output {
        case .human:
            print(HumanOutput.plan(result.plan, host: host))
            print(HumanOutput.report(result.report, flagSet: host.flagSet))
            print(HumanOutput.live(live, observation: result.guest.observation, host: host))
            if let verification = result.verification { print(HumanOutput.verification(verification)) }
        case .json:
            try JSONOutput.print(ApplyJSON(host: host.label, guest: result.plan.guest, changes: result.plan.hasChanges,
                                           plan: PlanJSON(result.plan, host: host), report: ReportJSON(result.report, flagSet: host.flagSet),
                                           live: live, observation: result.guest.observation, verification: result.verification, teardown: nil))
        }
        if !result.report.succeeded || result.verification?.passed == false { throw ExitCode.failure }
    }
}
