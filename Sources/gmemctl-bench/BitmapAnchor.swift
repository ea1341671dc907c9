#if canImport(Glibc)
import Glibc
#endif

/// The C per-page bitmap anchor (`bench/bitmap_anchor.c` in the repository), compiled with `cc -O2` and run
/// on the same inputs as the layout benchmark.
struct BitmapAnchor {
    /// `bench/bitmap_anchor.c` of the checkout this benchmark was built from.
    static var defaultSource: String {
        var parts = #filePath.split(separator: "/", omittingEmptySubsequences: false)
        parts.removeLast(3)  // Sources/gmemctl-bench/BitmapAnchor.swift
        return parts.joined(separator: "/") + "/bench/bitmap_anchor.c"
    }

    struct Figures {
        var applySeconds: Double
        var diffSeconds: Double
        var transitionRuns: Int
        var peakResidentMiB: Double
        /// CPU time of the whole anchor process (its own figures are wall clock).
        var processCPUSeconds: Double
        var totalSeconds: Double { applySeconds + diffSeconds }
    }

    let binary: String

    /// Compiles the anchor source into a temporary directory.
    static func build(source: String) throws -> BitmapAnchor {
        guard access(source, R_OK) == 0 else {
            throw BenchError(description: "anchor source \(source) not found (give --anchor PATH)")
        }
        var template = Array("/tmp/gmemctl-anchor-XXXXXX".utf8CString)
        guard let directory = mkdtemp(&template) else { throw BenchError(description: "mkdtemp failed") }
        let binary = String(cString: directory) + "/bitmap_anchor"
        let compile = try runChild(["cc", "-O2", "-o", binary, source])
        guard compile.status == 0 else { throw BenchError(description: "cc failed on \(source): \(compile.output)") }
        return BitmapAnchor(binary: binary)
    }

    /// Runs `bitmap_anchor RANGES TIB` and parses its one-line report.
    func run(ranges: Int, tib: Int) throws -> Figures {
        let result = try runChild([binary, String(ranges), String(tib)])
        guard result.status == 0 else { throw BenchError(description: "anchor exited with \(result.status)") }
        // "bitmap anchor (1 TiB): N ranges applied in A s, diff scan D s, R transition runs, M MiB per bitmap"
        let words = result.output.split(whereSeparator: { $0 == " " || $0 == "," })
        func number(before marker: String, offset: Int) -> Double? {
            guard let index = words.firstIndex(where: { $0 == marker }), index >= offset else { return nil }
            return Double(words[index - offset])
        }
        guard let apply = words.firstIndex(of: "in").flatMap({ Double(words[$0 + 1]) }),
            let diff = words.firstIndex(of: "scan").flatMap({ Double(words[$0 + 1]) }),
            let runs = number(before: "transition", offset: 1)
        else {
            throw BenchError(description: "cannot parse anchor output: \(result.output)")
        }
        return Figures(
            applySeconds: apply, diffSeconds: diff, transitionRuns: Int(runs), peakResidentMiB: result.peakResidentMiB,
            processCPUSeconds: result.cpuSeconds)
    }
}
