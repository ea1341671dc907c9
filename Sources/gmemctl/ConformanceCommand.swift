import ArgumentParser
import GmemConformance
import GmemCore
import GmemKVM
import GmemSimulator

struct ConformanceCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "conformance",
        abstract: "Check that a kernel obeys the guest_memfd, memslot and conversion rules of its generation.",
        discussion: """
            Runs every case that applies to the profile on the host, each in its own VM (released afterwards), \
            and compares each step with the outcome its rule documents and with the simulator of the profile. \
            The profile is the one the host matches (the nearest one, with a note on how the host differs, when \
            it matches none) unless --profile names one; then every way the host deviates from it is reported \
            (e.g. VM type sw-protected absent) and fails the run. A case \
            skips when the host lacks what it needs (a VM type, guest_memfd, a free huge page), saying which. \
            docs/conformance.md lists the cases and their sources.

            Output: human, ktap (KTAP version 1, as the kernel's selftests print it), junit (JUnit XML), json.

            Examples:
              gmemctl conformance --host kvm --output ktap
              gmemctl conformance --host sim:linux-6.18 --case 'selftest/*'
              gmemctl conformance --host kvm --profile linux-6.18 --output junit > conformance.xml

            Exit codes: 0 no case failed, 1 a case failed or the host deviates from --profile, 64 usage.
            """)

    enum Format: String, ExpressibleByArgument, CaseIterable {
        case human, ktap, junit, json
    }

    @Option(help: ArgumentHelp("Host: kvm or sim:PROFILE (see `gmemctl profiles`).", valueName: "host"))
    var host: String = "kvm"

    @Option(help: ArgumentHelp("Profile to check against (default: the one the host matches).", valueName: "profile"))
    var profile: String?

    @Option(
        name: .customLong("case"),
        help: ArgumentHelp(
            "Only the cases whose id matches this pattern (* and ?), e.g. 'selftest/*' or 'uapi/region2-*'.",
            valueName: "glob"))
    var caseGlob: String?

    @Option(help: "Output format: human, ktap, junit or json.") var output: Format = .human

    func validate() throws {
        if host != "kvm" && !host.hasPrefix("sim:") {
            throw ValidationError("--host takes kvm or sim:PROFILE, not \(host)")
        }
        if host.hasPrefix("sim:"), Profiles.named(String(host.dropFirst(4))) == nil {
            throw ValidationError(
                "unknown profile \(host.dropFirst(4)); known: \(Profiles.names.joined(separator: ", "))")
        }
        if let profile, Profiles.named(profile) == nil {
            throw ValidationError("unknown profile \(profile); known: \(Profiles.names.joined(separator: ", "))")
        }
    }

    func run() throws {
        let opened: (target: ConformanceTarget, profile: Capabilities, pinned: Bool)
        do {
            opened = try ConformanceSuite.open(host: host, profile: profile)
        } catch {
            throw CLIError(error.description)
        }
        let cases = ConformanceCatalog.cases(for: opened.profile.name, matching: caseGlob)
        if cases.isEmpty, let caseGlob {
            throw CLIError.usage("no case of profile \(opened.profile.name) matches --case \(caseGlob)")
        }
        let result = ConformanceSuite.run(
            cases, on: opened.target, profile: opened.profile,
            pinned: opened.pinned)
        switch output {
        case .human: print(ConformanceReport.human(result))
        case .ktap: print(ConformanceReport.ktap(result))
        case .junit: print(ConformanceReport.junit(result))
        case .json: print(try ConformanceReport.json(result))
        }
        if !result.succeeded { throw ExitCode.failure }
    }
}
