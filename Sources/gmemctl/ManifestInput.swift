import ArgumentParser
import Config
import GmemAgent
import GmemCore
import GmemKVM
import GmemProtocol
import GmemSimulator

/// Loads a manifest for a command; a manifest that does not load is a `CLIError.invalidManifest` (its
/// diagnostics compiler style, or in the JSON error document).
enum ManifestInput {
    static func load(_ file: String, format: OutputFormat) throws -> Manifest {
        let result = ManifestLoader.load(file: file)
        guard result.isValid, let manifest = result.manifest else {
            let errors = result.diagnostics.errorCount
            throw CLIError.invalidManifest(
                file: file, message: "\(file) is not a valid manifest (\(HumanOutput.plural(max(errors, 1), "error")))",
                diagnostics: result.diagnostics)
        }
        return manifest
    }

    /// Reports a workflow error: its diagnostics in the manifest's terms where it has any, else the message.
    static func report(_ error: ProvisionError, file: String?, format: OutputFormat) throws -> Never {
        throw CLIError(error, file: file)
    }
}
