import ArgumentParser
import Config
import Foundation

struct Schema: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print a JSON Schema (draft 2020-12): of a manifest, for editors, or of a command's JSON output.",
        discussion: """
            The manifest schema has the same keys, enums and size patterns as the loader. Semantic rules (alignment, overlaps, ranges inside mapped memory) are beyond a schema: run `gmemctl validate` for those.

            --document NAME prints the schema of a `--output json` document instead: plan, diff, get, apply, run (convert and destroy), events (one per line) or error (any command that fails).

            Examples (VS Code / yaml-language-server):
              gmemctl schema > gmemctl.schema.json
              # then in a manifest:  # yaml-language-server: $schema=./gmemctl.schema.json
              gmemctl schema --document plan

            Exit codes: 0 printed; 64 bad command-line usage.
            """
    )

    @Option(
        help: ArgumentHelp(
            "The output document whose schema to print: \(DocumentSchemas.names.joined(separator: ", ")).",
            valueName: "name"))
    var document: String?

    func validate() throws {
        if let document, DocumentSchemas.schema(named: document) == nil {
            let hint =
                Suggestion.closest(to: document, among: DocumentSchemas.names).map { "; did you mean \($0)?" } ?? ""
            throw ValidationError(
                "--document takes \(DocumentSchemas.names.joined(separator: ", ")), not \(document)\(hint)")
        }
    }

    func run() throws {
        if let document, let text = DocumentSchemas.schema(named: document) {
            // Re-encoded so the output is checked JSON, formatted like every other document.
            let object = try JSONSerialization.jsonObject(with: Data(text.utf8))
            let data = try JSONSerialization.data(
                withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
            print(String(decoding: data, as: UTF8.self))
            return
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        let data = try encoder.encode(ManifestSchema.document)
        print(String(decoding: data, as: UTF8.self))
    }
}
