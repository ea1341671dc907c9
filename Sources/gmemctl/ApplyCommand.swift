import ArgumentParser
import Config
import Engine

struct ApplyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "apply",
        abstract: "Build a guest's memory on a host as its manifest says, and convert it to the declared layout.",
        discussion: """
            Apply runs exactly the plan `gmemctl plan` shows. On a failure it stops, records what the host really holds, and says which steps ran and which did not; `gmemctl diff` then tells the truth.

            On the real kernel (--host kvm) live objects belong to the process that made them, so apply needs --ephemeral: build, verify (--verify), print the live state, tear down. On the simulator the guest lives in the state file.

            Examples:
              gmemctl apply examples/in-place.yaml --host sim:gmem-attributes2
              gmemctl apply examples/shared-in-place.yaml --host kvm --ephemeral --verify

            Exit codes: 0 applied (and verified), 1 error or failed verification, 64 usage.
            """)

    @Argument(help: "The manifest.") var file: String
    @OptionGroup var hostOptions: HostOptions
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
        let host = try hostOptions.open(persistent: !ephemeral)
        if !host.outlivesProcess && !ephemeral {
            throw CLIError("\(host.label) keeps guests only while this process runs; use --ephemeral (build, verify, tear down), or the simulator (--host sim:PROFILE)")
        }
        let provisioner = Provisioner(host: host)
        let plan: Plan
        let report: ApplyReport
        do {
            (plan, report) = try provisioner.apply(manifest, prefault: prefault)
        } catch {
            try ManifestInput.report(error, file: file, format: output)
        }
        let live = host.guest(named: plan.guest)
        let observation = Observer.observe(live, kernel: host.kernel)
        let verification = verify && report.succeeded ? Verifier.verify(live, kernel: host.kernel) : nil
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
