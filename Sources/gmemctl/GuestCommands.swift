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
        abstract:
            "Show the live state a host holds: VM, blocks (fds, sizes, resident memory), memslots, layout, listeners.",
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
        var live: LiveJSON
    }

    struct GetJSON: Encodable {
        var formatVersion = JSONOutput.formatVersion
        var host: String
        var guests: [GuestJSON]
    }

    func run() throws {
        let service = try GuestServices.open(hostOptions, agentOptions, format: output)
        try emit(try service.guests(named: name), host: service.hostView)
    }

    private func emit(_ guests: [(live: LiveState, observation: GuestObservation)], host: HostView) throws {
        switch output {
        case .json:
            try JSONOutput.print(
                GetJSON(
                    host: host.label,
                    guests: guests.map { GuestJSON(live: LiveJSON($0.live, observation: $0.observation)) }))
        case .human:
            if guests.isEmpty { print("no guests on \(host.label)") }
            for guest in guests {
                print(HumanOutput.live(guest.live, observation: guest.observation, host: host))
            }
        }
    }
}

/// Finding a guest by name, with "did you mean" for a near miss.
enum GuestLookup {
    static func notFound(_ name: String, among names: [String], host: String, detail: String = "") -> CLIError {
        .notFound(guest: name, host: host, suggestion: Suggestion.closest(to: name, among: names), detail: detail)
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
        let service = try GuestServices.open(hostOptions, agentOptions, format: output)
        _ = try service.guests(named: name)
        let (plan, report) = try service.destroy(guest: name)
        try ConversionOutput.emit(plan: plan, report: report, host: service.hostView, format: output)
        if !report.succeeded { throw ExitCode.failure }
    }
}

struct ConvertCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "convert",
        abstract: "Convert a guest-physical range to private or shared at run time, as a guest's request would.",
        discussion: """
            Listeners hear of the change in the order devices need: to private, they get `unmap` before the kernel converts; to shared, `map` after. Legacy blocks then discard the unused copy. The live layout drifts from the manifest, and `gmemctl diff` shows it.

            The range is checked against the live guest first (page alignment, inside its memslots); a range that does not fit is refused before anything is sent to the kernel, naming a range that would.

            Examples:
              gmemctl convert my-guest --gpa 0x100000 --size 2MiB --to shared --host sim:gmem-attributes2

            Exit codes: 0 converted, 1 error (no such guest, a range that does not fit, the host cannot convert, a step failed), 64 usage.
            """)

    @Argument(help: "Guest name (metadata.name).") var name: String
    @Option(help: "Start guest-physical address (hex or decimal).") var gpa: String
    @Option(help: "Size (e.g. 2MiB, 0x200000).") var size: String
    @Option(help: "Target state: private or shared.") var to: String
    @OptionGroup var hostOptions: HostOptions
    @OptionGroup var agentOptions: AgentOptions
    @Option(help: "Output format: human or json.") var output: OutputFormat = .human

    func run() throws {
        guard let start = try? parseSize(gpa) else {
            throw ValidationError("--gpa: \(gpa) is not an address (e.g. 0x100000)")
        }
        guard let length = try? parseSize(size), length > 0 else {
            throw ValidationError("--size: \(size) is not a size (e.g. 2MiB)")
        }
        guard let state = MemoryState(rawValue: to) else {
            throw ValidationError("--to takes private or shared, not \(to)")
        }
        guard start.addingReportingOverflow(length).overflow == false else {
            throw ValidationError("--gpa + --size overflows")
        }
        let range = start..<(start + length)
        let service = try GuestServices.open(hostOptions, agentOptions, format: output)
        guard let live = try service.guests(named: name).first?.live, live.exists else {
            throw GuestLookup.notFound(name, among: [], host: service.hostView.label)
        }
        try ConvertCheck.check(range, in: live)
        let (plan, report) = try service.convert(guest: name, gpa: range, to: state)
        try ConversionOutput.emit(plan: plan, report: report, host: service.hostView, format: output)
        if !report.succeeded { throw ExitCode.failure }
    }
}

/// The checks a run-time conversion must pass against the live guest before the kernel is asked: the
/// kernel takes page-aligned ranges only, inside memslots (it answers EINVAL or converts nothing otherwise).
enum ConvertCheck {
    static let pageSize: UInt64 = 4096

    static func check(_ range: Range<UInt64>, in live: LiveState) throws {
        // A hugetlb-backed legacy block discards whole huge pages.
        var unit = pageSize
        for block in live.blocks {
            if case .legacy(let backing) = block.backend, backing.source == .hugetlb, let page = backing.pageSize,
                live.memslots.contains(where: {
                    $0.mapping.block == block.name && $0.mapping.gpa < range.upperBound
                        && range.lowerBound < $0.mapping.gpa + $0.mapping.size
                })
            {
                unit = max(unit, page)
            }
        }
        let unitName = formatSize(unit)
        if range.lowerBound % unit != 0 {
            let below = range.lowerBound - range.lowerBound % unit
            throw CLIError.rejected(
                "--gpa \(hex(range.lowerBound)) is not aligned to the \(unitName) page size; nothing was sent to the kernel. Use --gpa \(hex(below)) or \(hex(below + unit))"
            )
        }
        let length = range.upperBound - range.lowerBound
        if length % unit != 0 {
            let below = length - length % unit
            let options = below == 0 ? formatSize(unit) : "\(formatSize(below)) or \(formatSize(below + unit))"
            throw CLIError.rejected(
                "--size \(formatSize(length)) is not a multiple of the \(unitName) page size; nothing was sent to the kernel. Use --size \(options)"
            )
        }
        let holes = live.addressMap.unmappedParts(ofGPA: range)
        if let hole = holes.first {
            let windows = live.memslots.map(\.mapping).sorted { $0.gpa < $1.gpa }
                .map { "\(hex($0.gpa))-\(hex($0.gpa + $0.size - 1))" }.joined(separator: ", ")
            throw CLIError.rejected(
                "\(hex(range.lowerBound))-\(hex(range.upperBound - 1)) is not all guest memory of \(live.name): \(hex(hole.lowerBound))-\(hex(hole.upperBound - 1)) has no memslot; nothing was sent to the kernel. Guest memory: \(windows.isEmpty ? "none" : windows)"
            )
        }
    }
}

enum ConversionOutput {
    struct RunJSON: Encodable {
        var formatVersion = JSONOutput.formatVersion
        var host: String
        var guest: String
        var succeeded: Bool
        var plan: PlanJSON
        var report: ReportJSON
    }

    static func emit(plan: Plan, report: ApplyReport, host: HostView, format: OutputFormat) throws {
        let flagSet = host.flagSet
        switch format {
        case .human:
            print(HumanOutput.plan(plan, host: host, color: Terminal.colorEnabled(for: 1)))
            print(HumanOutput.report(report, flagSet: flagSet))
        case .json:
            try JSONOutput.print(
                RunJSON(
                    host: host.label, guest: plan.guest, succeeded: report.succeeded,
                    plan: PlanJSON(plan, host: host), report: ReportJSON(report, flagSet: flagSet, guest: plan.guest)))
        }
    }
}
