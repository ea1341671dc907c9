#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The outcome of loading a manifest: the model (whenever the document could be read into one, even
/// with errors in it) and the diagnostics in source order: every one up to 1,000, then one standing for
/// the rest (see `capped`; `diagnostics.errorCount` counts them all).
public struct LoadResult: Sendable {
    public var manifest: Manifest?
    public var diagnostics: [Diagnostic]
    public var isValid: Bool { !diagnostics.contains { $0.severity == .error } }

    public init(manifest: Manifest?, diagnostics: [Diagnostic]) {
        self.manifest = manifest
        self.diagnostics = diagnostics
    }
}

public enum ManifestLoader {
    /// Reads, parses and validates the manifest at `path`. An unreadable file is a diagnostic too.
    public static func load(file path: String, pageSize: UInt64 = 4096) -> LoadResult {
        switch readFile(path, limit: YAMLParser.Limits().maxBytes) {
        case .success(let bytes):
            return load(bytes: bytes, file: path, pageSize: pageSize)
        case .failure(let problem):
            return LoadResult(manifest: nil, diagnostics: problem.diagnostics)
        }
    }

    public static func load(yaml: String, file: String, pageSize: UInt64 = 4096) -> LoadResult {
        load(bytes: Array(yaml.utf8), file: file, pageSize: pageSize)
    }

    public static func load(bytes: [UInt8], file: String, pageSize: UInt64 = 4096) -> LoadResult {
        let root: YAMLNode?
        do {
            root = try YAMLParser.parse(bytes, file: file)
        } catch {
            return LoadResult(manifest: nil, diagnostics: error.diagnostics)
        }
        guard let root, !(root.scalar?.isNull ?? false) else {
            let start = SourcePosition(line: 1, column: 1)
            return LoadResult(
                manifest: nil,
                diagnostics: [
                    Diagnostic(
                        .error, summary: "file is empty",
                        detail:
                            "expected a manifest starting with `apiVersion: \(Manifest.apiVersion)` and `kind: \(Manifest.kind)`",
                        range: SourceRange(file: file, start: start, end: start))
                ])
        }
        var reader = NodeReader(file: file)
        guard let manifest = reader.manifest(root) else {
            return LoadResult(
                manifest: nil,
                diagnostics: capped(sortedBySource(reader.diagnostics), unbuiltErrors: reader.unbuilt))
        }
        let semantic = ManifestValidator(manifest: manifest, pageSize: pageSize, skipping: reader.tainted).run()
        return LoadResult(
            manifest: manifest,
            diagnostics: capped(
                sortedBySource(reader.diagnostics + semantic.diagnostics),
                unbuiltErrors: reader.unbuilt + semantic.unbuiltErrors, unbuiltWarnings: semantic.unbuiltWarnings))
    }

    /// The whole file, or a diagnostic saying why it cannot be read (missing, a directory, too large).
    static func readFile(_ path: String, limit: Int) -> Result<[UInt8], ManifestError> {
        func failure(_ summary: String, _ detail: String = "") -> Result<[UInt8], ManifestError> {
            .failure(
                ManifestError([
                    Diagnostic(
                        .error, summary: summary, detail: detail,
                        range: SourceRange(
                            file: path, start: SourcePosition(line: 1, column: 1),
                            end: SourcePosition(line: 1, column: 1)))
                ]))
        }
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return failure("cannot read \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { return failure("cannot read \(path): \(String(cString: strerror(errno)))") }
        guard (info.st_mode & S_IFMT) == S_IFREG else { return failure("cannot read \(path): not a regular file") }
        guard Int(info.st_size) <= limit else {
            return failure(
                "file is too large: \(info.st_size) bytes",
                "manifests are limited to \(limit) bytes (\(formatSize(UInt64(limit))))")
        }
        var bytes = [UInt8](repeating: 0, count: Int(info.st_size))
        var done = 0
        while done < bytes.count {
            let count = bytes.withUnsafeMutableBytes { buffer -> Int in
                guard let base = buffer.baseAddress else { return 0 }
                return read(fd, base + done, buffer.count - done)
            }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { break }
            done += count
        }
        return .success(Array(bytes[..<done]))
    }
}

/// Diagnostics in source order (stable for equal positions; those without a position last).
func sortedBySource(_ diagnostics: [Diagnostic]) -> [Diagnostic] {
    diagnostics.enumerated().sorted { a, b in
        switch (a.element.range?.start, b.element.range?.start) {
        case let (x?, y?): return x != y ? x < y : a.offset < b.offset
        case (.some, nil): return true
        case (nil, .some): return false
        case (nil, nil): return a.offset < b.offset
        }
    }.map(\.element)
}
