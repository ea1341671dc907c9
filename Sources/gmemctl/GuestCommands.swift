import ArgumentParser
import Config
import GmemAgent
import GmemCore
import GmemKVM
import GmemProtocol
import GmemSimulator

struct GetCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "get",
        abstract: "Show the live state a host holds: VM, blocks (fds, sizes, resident memory), memslots, layout, listeners.",
        discussion: """
            Examples:
              gmemctl get --host sim:gmem-attributes2
              gmemctl get my-guest --host sim:gmem-attributes2 --output json

            Exit codes: 0 success, 1 the guest does not exist, 64 usage.
            """)

    @Argument(help: "Guest name (metadata.name); all guests when omitted.") var name: String?
    @OptionGroup var hostOptions: HostOptions
    @OptionGroup var agentOptions: AgentOptions
    @Option(help: "Output format: human or json.") var output: OutputFormat = .human

    struct GuestJSON: Encodable {
        var live: LiveState
        var observation: GuestObservation
    }

    struct GetJSON: Encodable {
        var formatVersion = JSONOutput.formatVersion
        var host: String
        var guests: [GuestJSON]
    }

    func run() throws {
        if let session = try AgentSession.find(agentOptions, host: hostOptions) {
            let result = try session.call(.guest(.get, name: name), as: GetResult.self, format: output)
            for guest in result.guests { session.remember(guest: guest.live.name, exists: true) }
            try emit(result.guests.map { GuestJSON(live: $0.live, observation: $0.observation) }, host: session.hostView)
            return
        }
        let host = try hostOptions.open()
        let names = name.map { [$0] } ?? host.guestNames()
        let guests = names.map { host.guest(named: $0) }
        if let name, !(guests.first?.exists ?? false) {
            throw CLIError("guest \(name) does not exist on \(host.label)" + (host.outlivesProcess ? "" : "; live KVM objects die with the process that made them"))
        }
        try emit(guests.map { GuestJSON(live: $0, observation: Observer.observe($0, kernel: host.kernel)) }, host: HostView(host))
    }

    private func emit(_ guests: [GuestJSON], host: HostView) throws {
        switch output {
        case .json:
            try JSONOutput.print(GetJSON(host: host.label, guests: guests))
        case .human:
            if guests.isEmpty { print("no guests on \(host.label)") }
            for guest in guests {
                print(HumanOutput.live(guest.live, observation: guest.observation, host: host))
            }
        }
    }
}

struct DestroyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "destroy",
        abstract: "Tear a guest down: listeners told, memslots deleted, memory released, VM closed.",
        discussion: """
            Examples:
              gmemctl destroy my-guest --host sim:gmem-attributes2

            Exit codes: 0 destroyed, 1 error (no such guest, a step failed), 64 usage.
            """)

    @Argument(help: "Guest name (metadata.name).") var name: String
    @OptionGroup var hostOptions: HostOptions
    @OptionGroup var agentOptions: AgentOptions
    @Option(help: "Output format: human or json.") var output: OutputFormat = .human

    func run() throws {
        if let session = try AgentSession.find(agentOptions, host: hostOptions) {
            let result = try session.call(.guest(.destroy, name: name), as: RunResult.self, format: output)
            if result.report.succeeded { session.remember(guest: name, exists: false) }
            try ConversionOutput.emit(plan: result.plan, report: result.report, host: session.hostView, format: output)
            if !result.report.succeeded { throw ExitCode.failure }
            return
        }
        try ConversionOutput.runLocally(on: try hostOptions.open(), format: output) { provisioner throws(ProvisionError) in
            try provisioner.destroy(guest: name)
        }
    }
}

struct ConvertCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "convert",
        abstract: "Convert a guest-physical range to private or shared at run time, as a guest's request would.",
        discussion: """
            Runs the seed's ordering: to private, listeners get `unmap` before the kernel converts; to shared, `map` after. Legacy blocks then discard the unused copy. The live layout drifts from the manifest, and `gmemctl diff` shows it.

            Examples:
              gmemctl convert my-guest --gpa 0x100000 --size 2MiB --to shared --host sim:gmem-attributes2

            Exit codes: 0 converted, 1 error (no such guest, the host cannot convert, a step failed), 64 usage.
            """)

    @Argument(help: "Guest name (metadata.name).") var name: String
    @Option(help: "Start guest-physical address (hex or decimal).") var gpa: String
    @Option(help: "Size (e.g. 2MiB, 0x200000).") var size: String
    @Option(help: "Target state: private or shared.") var to: String
    @OptionGroup var hostOptions: HostOptions
    @OptionGroup var agentOptions: AgentOptions
    @Option(help: "Output format: human or json.") var output: OutputFormat = .human

    func run() throws {
        guard let start = try? parseSize(gpa) else { throw ValidationError("--gpa: \(gpa) is not an address (e.g. 0x100000)") }
        guard let length = try? parseSize(size), length > 0 else { throw ValidationError("--size: \(size) is not a size (e.g. 2MiB)") }
        guard let state = MemoryState(rawValue: to) else { throw ValidationError("--to takes private or shared, not \(to)") }
        guard start.addingReportingOverflow(length).overflow == false else { throw ValidationError("--gpa + --size overflows") }
        if let session = try AgentSession.find(agentOptions, host: hostOptions) {
            var request = AgentRequest.guest(.convert, name: name)
            (request.gpa, request.size, request.to) = (start, length, state)
            let result = try session.call(request, as: RunResult.self, format: output)
            try ConversionOutput.emit(plan: result.plan, report: result.report, host: session.hostView, format: output)
            if !result.report.succeeded { throw ExitCode.failure }
            return
        }
        try ConversionOutput.runLocally(on: try hostOptions.open(), format: output) { provisioner throws(ProvisionError) in
            try provisioner.convert(guest: name, gpa: start..<(start + length), to: state)
        }
    }
}

enum ConversionOutput {
    /// Runs a workflow in this process, prints its plan and report, and exits 1 unless every step ran.
    static func runLocally(on host: GmemCore.Host, format: OutputFormat,
                           _ workflow: (Provisioner) throws(ProvisionError) -> (Plan, ApplyReport)) throws {
        let (plan, report): (Plan, ApplyReport)
        do {
            (plan, report) = try workflow(Provisioner(host: host))
        } catch {
            try ManifestInput.report(error, file: nil, format: format)
        }
        try emit(plan: plan, report: report, host: host, format: format)
        if !report.succeeded { throw ExitCode.failure }
    }

    struct RunJSON: Encodable {
        var formatVersion = JSONOutput.formatVersion
        var plan: PlanJSON
        var report: ReportJSON
    }

    static func emit(plan: Plan, report: ApplyReport, host: Host, format: OutputFormat) throws {
        try emit(plan: plan, report: report, host: HostView(host), format: format)
    }

    static func emit(plan: Plan, report: ApplyReport, host: HostView, format: OutputFormat) throws {
        let flagSet = host.flagSet
        switch format {
        case .human:
            print(HumanOutput.plan(plan, host: host))
            print(HumanOutput.report(report, flagSet: flagSet))
        case .json:
            try JSONOutput.print(RunJSON(plan: PlanJSON(plan, host: host), report: ReportJSON(report, flagSet: flagSet)))
        }
    }
}
