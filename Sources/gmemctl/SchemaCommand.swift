import ArgumentParser
import Config
import Foundation

struct Schema: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print the JSON Schema (draft 2020-12) of a manifest, for editors.",
        discussion: """
            The schema has the same keys, enums and size patterns as the loader. Semantic rules (alignment, overlaps, ranges inside mapped memory) are beyond a schema: run `gmemctl validate` for those.

            Example (VS Code / yaml-language-server):
              gmemctl schema > gmemctl.schema.json
              # then in a manifest:  # yaml-language-server: $schema=./gmemctl.schema.json

            Exit codes: 0 printed; 64 bad command-line usage.
            """
    )

    func run() throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        let data = try encoder.encode(ManifestSchema.document)
        print(String(decoding: data, as: UTF8.self))
    }
}
