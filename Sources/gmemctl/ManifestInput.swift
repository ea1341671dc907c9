import ArgumentParser
import Config
import GmemAgent
import GmemCore
import GmemKVM
import GmemProtocol
import GmemSimulator

/// Loads a manifest for a command; on any error prints the diagnostics (compiler style or JSON) and exits 1.
enum ManifestInput {
    static func load(_ file: String, format: OutputFormat) throws -> Manifest {
        let result = ManifestLoader.load(file: file)
        guard result.isValid, let manifest = result.manifest else {
            try DiagnosticOutput.emit([FileDiagnostics(file: file, diagnostics: result.diagnostics)], format: format)
            throw ExitCode.failure
        }
        return manifest
    }

    /// Reports a workflow error: its diagnostics in the manifest's terms where it has any, else the message.
    static func report(_ error: ProvisionError, file: String?, format: OutputFormat) throws -> Never {
        if let file, !error.diagnostics.isEmpty {
            var stderr = StandardError()
            if format == .human { print("error: \(error.message)", to: &stderr) }
            try DiagnosticOutput.emit([FileDiagnostics(file: file, diagnostics: error.diagnostics)], format: format)
        } else {
            var stderr = StandardError()
            print("error: \(error.message)", to: &stderr)
        }
        throw ExitCode.failure
    }
}
