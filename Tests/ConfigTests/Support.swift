import Config
import Testing

/// Loads `yaml` as the file `test.yaml`.
func load(_ yaml: String, pageSize: UInt64 = 4096) -> LoadResult {
    ManifestLoader.load(yaml: yaml, file: "test.yaml", pageSize: pageSize)
}

/// The one diagnostic at `path`, checked for severity, position and (part of) its summary.
@discardableResult
func expectDiagnostic(
    _ result: LoadResult, path: String, line: Int, column: Int, severity: Severity = .error,
    summary: String, sourceLocation: SourceLocation = #_sourceLocation
) -> Diagnostic? {
    let matches = result.diagnostics.filter { $0.path == path }
    #expect(
        matches.count == 1, "expected one diagnostic at \(path), got \(result.diagnostics.map(\.description))",
        sourceLocation: sourceLocation)
    guard let found = matches.first else { return nil }
    #expect(found.severity == severity, sourceLocation: sourceLocation)
    #expect(found.range?.file == "test.yaml", sourceLocation: sourceLocation)
    #expect(
        found.range?.start == SourcePosition(line: line, column: column), "\(found)", sourceLocation: sourceLocation)
    #expect(found.summary.contains(summary), "summary was: \(found.summary)", sourceLocation: sourceLocation)
    return found
}

/// The repository's `examples/` directory, found from this source file.
let examplesDirectory: String = {
    var parts = #filePath.split(separator: "/", omittingEmptySubsequences: false)
    parts.removeLast(3)  // Tests/ConfigTests/Support.swift
    return parts.joined(separator: "/") + "/examples"
}()

/// A valid in-place TDX manifest used as the base of many tests; line numbers are stable:
/// line 8 is the block, 10-11 the mappings, 13 the layout default.
let validManifest = """
    apiVersion: gmemctl/v1
    kind: GuestMemory
    metadata:
      name: base
    spec:
      vm: { type: tdx }
      blocks:
        - { name: ram, size: 4GiB, backend: { type: in-place } }
      mappings:
        - { block: ram, offset: 0, size: 2GiB, gpa: 0 }
        - { block: ram, offset: 2GiB, size: 2GiB, gpa: 0x100000000 }
      layout:
        default: private
    """
