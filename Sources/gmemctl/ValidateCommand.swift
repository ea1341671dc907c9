import ArgumentParser
import Config
import GmemAgent
import GmemCore
import GmemKVM
import GmemProtocol
import GmemSimulator

struct Validate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check manifests offline: schema and semantic rules, every problem at once.",
        discussion: """
            Each problem is reported as FILE:LINE:COL, the field path (spec.mappings[1].gpa), what is wrong and what would be valid. A missing or unreadable file is reported the same way.

            Examples:
              gmemctl validate examples/shared-in-place.yaml
              gmemctl validate examples/*.yaml --output json
              gmemctl validate examples/*.yaml --output sarif > gmemctl.sarif
              gmemctl validate examples/in-place-mixed.yaml --target linux-6.18 --target gmem-attributes2

            Exit codes:
              0   every file is valid (warnings allowed)
              1   at least one error, or a file could not be read
              64  bad command-line usage (unknown option, no file given)
            """
    )

    @Argument(help: ArgumentHelp("Manifest files to check.", valueName: "file"))
    var files: [String] = []

    enum Format: String, ExpressibleByArgument, CaseIterable {
        case human, json, sarif
    }

    @Option(
        help:
            "Output format: human (compiler style), json (the shape of `terraform validate -json`) or sarif (SARIF 2.1.0, one result per diagnostic, for code-scanning services)."
    )
    var output: Format = .human

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Also check against a kernel: a profile name (see `gmemctl profiles`) or `host` for this machine's /dev/kvm. Repeatable.",
            valueName: "profile"))
    var target: [String] = []

    func validate() throws {
        for name in target where name != "host" && Profiles.named(name) == nil {
            throw ValidationError(
                "unknown target \(name); known profiles: \(Profiles.names.joined(separator: ", ")), or host")
        }
        if files.isEmpty {
            throw ValidationError(
                "give at least one manifest file, e.g. `gmemctl validate examples/shared-in-place.yaml`")
        }
    }

    func run() throws {
        let loaded = Self.load(files)
        let targets = try target.map(Self.capabilities(of:))
        let reports = loaded.map { file, result in
            var diagnostics = result.diagnostics
            // A manifest that does not load cannot be checked against a kernel; its own errors come first.
            if result.isValid, let manifest = result.manifest {
                for caps in targets {
                    diagnostics += CapabilityCheck.check(manifest, against: caps).map { diagnostic in
                        var targeted = diagnostic
                        targeted.summary = "[\(caps.name)] " + diagnostic.summary
                        return targeted
                    }
                }
            }
            return FileDiagnostics(file: file, diagnostics: diagnostics)
        }
        switch output {
        case .human: try DiagnosticOutput.emit(reports, format: .human)
        case .json: try DiagnosticOutput.emit(reports, format: .json)
        case .sarif:
            print(SARIFOutput.text(reports))
            if DiagnosticOutput.errorCount(reports) > 0 { throw ExitCode.failure }
        }
    }

    /// A named profile, or `host`: the capabilities probed from /dev/kvm.
    static func capabilities(of target: String) throws -> Capabilities {
        if let profile = Profiles.named(target) { return profile }
        do {
            var probed = try KVMHost().capabilities
            probed.name = "host"
            return probed
        } catch {
            throw CLIError("cannot probe this host for --target host: \(error)")
        }
    }

    /// Loads and validates each file (schema and host-independent semantic rules).
    static func load(_ files: [String]) -> [(file: String, result: LoadResult)] {
        files.map { (file: $0, result: ManifestLoader.load(file: $0)) }
    }
}
