import ArgumentParser
import Config

struct Validate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check manifests offline: schema and semantic rules, every problem at once.",
        discussion: """
            Each problem is reported as FILE:LINE:COL, the field path (spec.mappings[1].gpa), what is wrong and what would be valid. A missing or unreadable file is reported the same way.

            Examples:
              gmemctl validate examples/shared-in-place.yaml
              gmemctl validate examples/*.yaml --output json

            Exit codes:
              0   every file is valid (warnings allowed)
              1   at least one error, or a file could not be read
              64  bad command-line usage (unknown option, no file given)
            """
    )

    @Argument(help: ArgumentHelp("Manifest files to check.", valueName: "file"))
    var files: [String] = []

    @Option(help: "Output format: human (compiler style) or json (the shape of `terraform validate -json`).")
    var output: OutputFormat = .human

    func validate() throws {
        if files.isEmpty { throw ValidationError("give at least one manifest file, e.g. `gmemctl validate examples/shared-in-place.yaml`") }
    }

    func run() throws {
        let loaded = Self.load(files)
        // Later checks (e.g. against a target profile) append their diagnostics here, per file.
        let reports = loaded.map { FileDiagnostics(file: $0.file, diagnostics: $0.result.diagnostics) }
        try DiagnosticOutput.emit(reports, format: output)
    }

    /// Loads and validates each file (schema and host-independent semantic rules).
    static func load(_ files: [String]) -> [(file: String, result: LoadResult)] {
        files.map { (file: $0, result: ManifestLoader.load(file: $0)) }
    }
}
