/// "did you mean ...?" for misspelt keys, names and enum values.
enum Suggestion {
    /// The candidate nearest to `word` by edit distance, if it is near enough to be a likely typo.
    static func nearest(to word: String, in candidates: [String]) -> String? {
        nearest(to: word, in: candidates, lowered: candidates.mapAsciiLowercased())
    }

    /// `nearest`, with the candidates lowercased as ASCII once by the caller (`asciiLowercased(candidates)`).
    static func nearest(to word: String, in candidates: [String], lowered: [[UInt8]]?) -> String? {
        // Every unknown key of a hostile file asks this: ASCII words (all of the schema's) are compared as
        // bytes, with no lowercased copies and no distance computed for a candidate too long or short to be
        // near enough.
        if let asciiWord = asciiLowercased(word), let lowered {
            return nearest(asciiWord, original: word, candidates, lowered)
        }
        // A truncated spelling (`sev` for `sev-snp`) is a likely mistake however far its distance.
        if word.count >= 2,
            let extended = candidates.first(where: { $0.lowercased().hasPrefix(word.lowercased()) && $0 != word })
        {
            return extended
        }
        let limit = max(2, word.count / 3)
        let scored = candidates.map { ($0, editDistance(Array(word.lowercased()), Array($0.lowercased()))) }
        guard let best = scored.min(by: { $0.1 < $1.1 }), best.1 <= limit else { return nil }
        return best.0
    }

    /// `nearest` over lowercased ASCII bytes; the same answers as the general path.
    private static func nearest(
        _ word: [UInt8], original: String, _ candidates: [String], _ lowered: [[UInt8]]
    ) -> String? {
        if word.count >= 2 {
            for index in candidates.indices where lowered[index].starts(with: word) && candidates[index] != original {
                return candidates[index]
            }
        }
        let limit = max(2, word.count / 3)
        var best: (candidate: String, distance: Int)?
        for index in candidates.indices where abs(lowered[index].count - word.count) <= limit {
            let distance = boundedDistance(word, lowered[index], limit: min(limit, (best?.distance ?? .max) - 1))
            if let distance { best = (candidates[index], distance) }
        }
        return best?.candidate
    }

    /// The edit distance of two byte strings if it is at most `limit`, else nil: stops at the first row whose
    /// every entry is past the limit (a row's minimum never decreases).
    static func boundedDistance(_ a: [UInt8], _ b: [UInt8], limit: Int) -> Int? {
        guard limit >= 0 else { return nil }
        if a.isEmpty || b.isEmpty { return max(a.count, b.count) <= limit ? max(a.count, b.count) : nil }
        return withUnsafeTemporaryAllocation(of: Int.self, capacity: 2 * (b.count + 1)) { rows -> Int? in
            var previous = 0, current = b.count + 1
            for j in 0...b.count { rows[previous + j] = j }
            for i in 1...a.count {
                rows[current] = i
                var rowMinimum = i
                for j in 1...b.count {
                    let cost = a[i - 1] == b[j - 1] ? 0 : 1
                    let value = min(rows[previous + j] + 1, rows[current + j - 1] + 1, rows[previous + j - 1] + cost)
                    rows[current + j] = value
                    rowMinimum = min(rowMinimum, value)
                }
                if rowMinimum > limit { return nil }
                swap(&previous, &current)
            }
            let distance = rows[previous + b.count]
            return distance <= limit ? distance : nil
        }
    }

    static func asciiLowercased(_ text: String) -> [UInt8]? {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.utf8.count)
        for byte in text.utf8 {
            guard byte < 0x80 else { return nil }
            bytes.append(byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") ? byte + 32 : byte)
        }
        return bytes
    }

    /// " did you mean `x`?" or nothing.
    static func didYouMean(_ word: String, in candidates: [String]) -> String {
        nearest(to: word, in: candidates).map { "; did you mean `\($0)`?" } ?? ""
    }

    /// Levenshtein distance over characters.
    static func editDistance(_ a: String, _ b: String) -> Int {
        editDistance(Array(a), Array(b))
    }

    static func editDistance<T: Equatable>(_ a: [T], _ b: [T]) -> Int {
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        // Two rows on the stack: no allocation per comparison.
        return withUnsafeTemporaryAllocation(of: Int.self, capacity: 2 * (b.count + 1)) { rows in
            var previous = 0, current = b.count + 1
            for j in 0...b.count { rows[previous + j] = j }
            for i in 1...a.count {
                rows[current] = i
                for j in 1...b.count {
                    let cost = a[i - 1] == b[j - 1] ? 0 : 1
                    rows[current + j] = min(
                        rows[previous + j] + 1, rows[current + j - 1] + 1, rows[previous + j - 1] + cost)
                }
                swap(&previous, &current)
            }
            return rows[previous + b.count]
        }
    }
}

extension [String] {
    /// Each string lowercased as ASCII bytes, or nil when one is not ASCII.
    func mapAsciiLowercased() -> [[UInt8]]? {
        var result: [[UInt8]] = []
        result.reserveCapacity(count)
        for text in self {
            guard let bytes = Suggestion.asciiLowercased(text) else { return nil }
            result.append(bytes)
        }
        return result
    }
}
