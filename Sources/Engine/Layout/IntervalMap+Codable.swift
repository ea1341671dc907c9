/// JSON shape: an array of `{"start": N, "end": N, "value": V}` runs, ascending.
extension IntervalMap: Codable where Value: Codable {
    private struct EncodedRun: Codable {
        var start: UInt64
        var end: UInt64
        var value: Value
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.unkeyedContainer()
        for run in runSequence {
            try container.encode(EncodedRun(start: run.range.lowerBound, end: run.range.upperBound, value: run.value))
        }
    }

    /// Accepts any runs (normalized to maximal ones, later runs winning), but rejects `start > end`.
    public init(from decoder: any Decoder) throws {
        self.init()
        var container = try decoder.unkeyedContainer()
        while !container.isAtEnd {
            let run = try container.decode(EncodedRun.self)
            guard run.start <= run.end else {
                throw DecodingError.dataCorruptedError(
                    in: container, debugDescription: "run start \(run.start) is after its end \(run.end)")
            }
            assignOrAppend(run.value, to: run.start..<run.end)
        }
    }
}
