/// A named benchmark program: parses its options and prints its figures.
struct Benchmark: Sendable {
    var name: String
    var summary: String
    var run: @Sendable (BenchOptions) throws -> Void
}

struct BenchError: Error, CustomStringConvertible {
    var description: String
}

/// `--key value` options; each benchmark reads the keys it knows.
struct BenchOptions {
    private var values: [String: String] = [:]

    init(_ arguments: [String]) throws {
        var rest = arguments[...]
        while let key = rest.popFirst() {
            guard key.hasPrefix("--"), let value = rest.popFirst() else {
                throw BenchError(description: "expected '--option value', got '\(key)'")
            }
            values[String(key.dropFirst(2))] = value
        }
    }

    func string(_ key: String) -> String? { values[key] }

    func integer(_ key: String, default fallback: Int) throws -> Int {
        guard let text = values[key] else { return fallback }
        guard let value = Int(text), value >= 0 else {
            throw BenchError(description: "--\(key) needs a non-negative integer, got '\(text)'")
        }
        return value
    }
}
