import ArgumentParser
import Config
import Foundation
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

            A change that replaces a live block (its size, backend or mappings differ; guest_memfd memslots cannot be modified) destroys the block's contents. Apply refuses it, before anything is torn down, unless --allow-replace is given or, on a terminal, you confirm. `gmemctl plan` lists replacements first, marked -/+.

            On the real kernel (--host kvm) live objects belong to the process that made them: apply keeps the guest in an agent (`gmemctl agent`), starting one on demand and saying so; --ephemeral instead builds, verifies (--verify), prints the live state and tears down in this process. On the simulator the guest lives in the state file, or in the agent when one runs.

            Examples:
              gmemctl apply examples/in-place-mixed.yaml --host sim:gmem-attributes2
              gmemctl apply examples/shared-in-place.yaml --host kvm --ephemeral --verify
              gmemctl apply examples/shared-in-place.yaml --ephemeral --verify --output junit > gmemctl-junit.xml

            Exit codes: 0 applied (and verified), 1 error, failed verification or a refused replacement, 64 usage.
            """)

    @Argument(help: "The manifest.") var file: String
    @OptionGroup var hostOptions: HostOptions
    @OptionGroup var agentOptions: AgentOptions
    enum Format: String, ExpressibleByArgument, CaseIterable {
        case human, json, junit
    }

    @Option(
        help:
            "Output format: human, json, or junit (JUnit XML: the apply, each verification check and the teardown as testcases)."
    )
    var output: Format = .human
    /// The format of errors and agent messages (JUnit reports only a finished apply).
    private var format: OutputFormat { output == .json ? .json : .human }
    @Flag(help: "Build, report and tear down in this process (the only mode on the real kernel without an agent).")
    var ephemeral = false
    @Flag(
        help:
            "Verify the result: host probes of every range, and on the real kernel a guest vCPU that reads and writes every shared range."
    )
    var verify = false
    @Flag(help: "Populate all memory up front (fallocate on guest_memfd, MADV_POPULATE_WRITE on shared backings).")
    var prefault = false
    @Flag(help: "Allow replacing live blocks whose contents the change destroys (see `gmemctl plan`).")
    var allowReplace = false

    func run() throws {
        let manifest = try ManifestInput.load(file, format: format)
        let outcome: ApplyOutcome
        if !ephemeral, let (session, started) = try agentSession() {
            do {
                outcome = try applyThroughAgent(session, manifest: manifest)
            } catch {
                if started { stopStartedAgent(session) }
                throw error
            }
            if started && !outcome.live.exists { stopStartedAgent(session) }
        } else {
            outcome = try applyLocally(manifest)
        }
        try outcome.render(output)
        if !outcome.succeeded { throw ExitCode.failure }
    }

    /// Refuses a plan that destroys live data unless allowed, before any step runs.
    private func checkReplacements(_ plan: Plan, host: HostView) throws {
        let destructive = plan.destructiveReplacements
        guard !destructive.isEmpty, !allowReplace else { return }
        if output == .human, isatty(STDIN_FILENO) == 1, isatty(STDERR_FILENO) == 1 {
            var stderr = StandardError()
            let lines = HumanOutput.replacements(
                plan.replacements, style: Style(enabled: Terminal.colorEnabled(for: STDERR_FILENO)))
            print("Guest \(plan.guest) on \(host.label):\n" + lines.joined(separator: "\n"), to: &stderr)
            print("Replace and lose these contents? Type 'yes' to go on: ", terminator: "", to: &stderr)
            if readLine()?.trimmingCharacters(in: .whitespaces) == "yes" { return }
        }
        throw CLIError.replaceRefused(destructive)
    }

    private func applyLocally(_ manifest: Manifest) throws -> ApplyOutcome {
        let host = try hostOptions.open(persistent: !ephemeral)
        if !host.outlivesProcess && !ephemeral {
            throw CLIError.unavailable(
                "\(host.label) keeps guests only while this process runs; use --ephemeral (build, verify, tear down), an agent (drop --no-agent), or the simulator (--host sim:PROFILE)"
            )
        }
        var provisioner = Provisioner(host: host)
        provisioner.populateProgress = ProgressBar.forPopulate()
        let view = HostView(host)
        let plan: Plan
        let report: ApplyReport
        do {
            try checkReplacements(try provisioner.plan(manifest, prefault: prefault), host: view)
            (plan, report) = try provisioner.apply(manifest, prefault: prefault)
        } catch let error as ProvisionError {
            throw CLIError(error, file: file)
        }
        let live = host.guest(named: plan.guest)
        let inspection = provisioner.inspect(live, after: report, verify: verify)
        let (observation, verification) = (inspection.observation, inspection.verification)
        var teardown: ApplyReport?
        if ephemeral {
            teardown = try? provisioner.destroy(guest: plan.guest).1
        }
        return ApplyOutcome(
            host: view, plan: plan, report: report, live: live, observation: observation,
            verification: verification, teardown: teardown)
    }
}

/// What apply did, wherever it ran (here or in an agent), rendered once.
struct ApplyOutcome {
    var host: HostView
    var plan: Plan
    var report: ApplyReport
    var live: LiveState
    var observation: GuestObservation?
    var verification: VerificationReport?
    var teardown: ApplyReport?

    var succeeded: Bool { report.succeeded && verification?.passed != false && teardown?.succeeded != false }

    struct Document: Encodable {
        var formatVersion = JSONOutput.formatVersion
        var host: String
        var guest: String
        var changes: Bool
        var succeeded: Bool
        var plan: PlanJSON
        var report: ReportJSON
        var live: LiveJSON
        var verification: VerificationJSON?
        var teardown: ReportJSON?
    }

    var document: Document {
        let flagSet = host.flagSet
        return Document(
            host: host.label, guest: plan.guest, changes: plan.hasChanges, succeeded: succeeded,
            plan: PlanJSON(plan, host: host), report: ReportJSON(report, flagSet: flagSet, guest: plan.guest),
            live: LiveJSON(live, observation: observation), verification: verification.map(VerificationJSON.init),
            teardown: teardown.map { ReportJSON($0, flagSet: flagSet, guest: plan.guest) })
    }

    func render(_ format: ApplyCommand.Format) throws {
        switch format {
        case .junit:
            print(JUnitOutput.text(self))
        case .human:
            let flagSet = host.flagSet
            print(HumanOutput.plan(plan, host: host, color: Terminal.colorEnabled(for: STDOUT_FILENO)))
            print(HumanOutput.report(report, flagSet: flagSet))
            print(HumanOutput.live(live, observation: observation, host: host))
            if let verification { print(HumanOutput.verification(verification)) }
            if let teardown { print("Teardown: " + HumanOutput.report(teardown, flagSet: flagSet)) }
        case .json:
            try JSONOutput.print(document)
        }
    }
}

extension ApplyCommand {
    /// The agent to apply through: a running one; else, where guests would die with this process (kvm) or
    /// where `--agent` names a socket, one started now (`started`). Nil: apply here (the simulator's state file).
    private func agentSession() throws -> (session: AgentSession, started: Bool)? {
        if agentOptions.noAgent { return nil }
        let path = agentOptions.socketPath
        if AgentProbe.state(of: path) == .live {
            return try AgentSession.find(agentOptions, host: hostOptions).map { ($0, false) }
        }
        guard let launch = try agentLaunch(for: path) else { return nil }
        let session = try AgentSpawn.start(socket: path, hostArguments: launch.arguments)
        printNote(
            "started an agent (pid \(session.hello.pid), instance \(session.hello.instance)) on \(path) for \(session.hello.hostLabel), chosen by \(launch.why); it holds the guests until `gmemctl agent stop`"
        )
        return (session, true)
    }

    /// The settings a new agent on `path` gets, and what justifies them: the command's explicit `--host`,
    /// else the host (and state file) of the agent that served this socket before, else the real kernel where
    /// `--host auto` means it. Nil: no agent is needed (the simulator keeps guests in its state file).
    private func agentLaunch(for path: String) throws -> (arguments: [String], why: String)? {
        let recorded = AgentMemory.load().sockets[path]
        let host: String
        var state = hostOptions.state
        let why: String
        if hostOptions.host != "auto" {
            (host, why) = (hostOptions.host, "--host \(hostOptions.host)")
        } else if let previous = recorded?.host {
            host = previous
            state = state ?? recorded?.stateFile
            why = "the host of the agent that served this socket before (--host to choose another)"
        } else if HostOptions.autoMeansKVM() {
            (host, why) = ("kvm", "--host auto (/dev/kvm offers guest_memfd)")
        } else if agentOptions.socket != nil {
            throw CLIError.unavailable(
                "no agent serves \(path), and nothing says which host a new one should serve: give --host kvm or --host sim:PROFILE"
            )
        } else {
            return nil
        }
        // The simulator needs an agent only where one was asked for by socket.
        guard host == "kvm" || agentOptions.socket != nil else { return nil }
        var arguments = ["--host", host]
        if let state, host != "kvm" { arguments += ["--state", state] }
        if let abi = hostOptions.kvmABI, host == "kvm" { arguments += ["--kvm-abi", abi] }
        return (arguments, why)
    }

    /// An agent this command started for a guest that never came to exist is stopped again: nothing is left
    /// running for a failed apply. An agent that was already running is left alone.
    private func stopStartedAgent(_ session: AgentSession) {
        guard let hello = try? session.client.call(AgentRequest(op: .hello), as: HelloResult.self), hello.guests.isEmpty
        else { return }
        _ = try? session.client.call(AgentRequest(op: .stop), as: StopResult.self)
        let deadline = Date().addingTimeInterval(10)
        while AgentProbe.state(of: session.socket) != .absent && Date() < deadline { usleep(20_000) }
        printNote("stopped the agent it started (pid \(hello.pid)): the apply failed and it holds no guest")
    }

    private func applyThroughAgent(_ session: AgentSession, manifest: Manifest) throws -> ApplyOutcome {
        let host = session.hostView
        // The agent's plan first, so a replacement is refused before the agent tears anything down.
        try checkReplacements(
            try AgentGuestService(session: session, format: format).plan(manifest, file: file, prefault: prefault),
            host: host)
        var request = try AgentRequest.manifest(.apply, file: file)
        request.prefault = prefault
        request.verify = verify
        let result = try session.call(request, as: ApplyResult.self, file: file, format: format)
        let live = result.guest.live
        if live.exists { session.remember(guest: live.name, exists: true) }
        return ApplyOutcome(
            host: host, plan: result.plan, report: result.report, live: live,
            observation: result.guest.observation, verification: result.verification, teardown: nil)
    }
}
