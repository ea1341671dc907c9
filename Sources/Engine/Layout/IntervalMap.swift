/// A run-length map from `UInt64` addresses to values. Partial: addresses in no run are "unset".
///
/// Runs are always maximal (no empty run, no two touching runs with equal values), so two maps are equal
/// exactly when they map every address to the same value. Costs depend on the number of runs, never on the
/// number of addresses: runs live in a chunked sorted array (chunks of at most `chunkCapacity` runs, plus an
/// index of chunk start keys), so an edit shifts one small chunk instead of the whole run list.
/// Copy-on-write through the underlying arrays keeps it a plain value type.
///
/// Hot paths are `@inlinable` so that clients specialize them for their `Value` (unspecialized generics
/// across a module boundary would be several times slower).
public struct IntervalMap<Value: Equatable & Sendable>: Sendable {
    /// One maximal run: every address in `range` maps to `value`.
    public struct Run: Equatable, Sendable {
        public var range: Range<UInt64>
        public var value: Value

        @inlinable
        public init(range: Range<UInt64>, value: Value) {
            self.range = range
            self.value = value
        }
    }

    /// Sorted, non-empty chunks of runs; chunk `i` holds runs that all precede those of chunk `i + 1`.
    @usableFromInline var chunks: [[Run]]
    /// `chunkStarts[i] == chunks[i][0].range.lowerBound`: binary-searched to find a chunk.
    @usableFromInline var chunkStarts: [UInt64]
    /// Total number of runs.
    @usableFromInline var count: Int
    /// Maximum number of runs per chunk (a chunk over it is split in two; small neighbours are merged).
    @usableFromInline let chunkCapacity: Int

    /// Default chunk capacity: `gmemctl-bench layout --capacity C` measured 32..512 on 1M random ranges;
    /// 128-512 were within noise of each other at 1 TiB, 256 was best at 16 TiB.
    public static var defaultChunkCapacity: Int { 256 }

    /// An empty map (every address unset).
    @inlinable
    public init() {
        self.init(capacity: Self.defaultChunkCapacity)
    }

    /// An empty map with a given chunk capacity: tests use tiny capacities to exercise splits and merges,
    /// the benchmark compares capacities. Not part of the stable API.
    @_spi(Tuning)
    public init(chunkCapacity: Int) {
        self.init(capacity: chunkCapacity)
    }

    @inlinable
    init(capacity chunkCapacity: Int) {
        self.chunks = []
        self.chunkStarts = []
        self.count = 0
        self.chunkCapacity = Swift.max(4, chunkCapacity)
    }

    /// A map built from `runs` assigned in order (later runs overwrite earlier ones where they overlap):
    /// `init(assigning:)`.
    @inlinable
    public init(runs: [(Range<UInt64>, Value)]) {
        self.init(assigning: runs.map { (range: $0.0, value: $0.1) })
    }

    /// A map with every address of `range` set to `value`.
    @inlinable
    public static func filled(_ range: Range<UInt64>, with value: Value) -> IntervalMap {
        var map = IntervalMap()
        map.assign(value, to: range)
        return map
    }

    /// Number of maximal runs.
    @inlinable public var runCount: Int { count }

    /// Whether no address is set.
    @inlinable public var isEmpty: Bool { count == 0 }

    /// All runs in ascending order.
    @inlinable public var runs: [Run] {
        var result: [Run] = []
        result.reserveCapacity(count)
        for chunk in chunks { result.append(contentsOf: chunk) }
        return result
    }

    /// All runs in ascending order, without copying them into an array.
    @inlinable public var runSequence: RunSequence { RunSequence(chunks: chunks) }

    /// The value at `address`, or nil when it is unset.
    @inlinable
    public func value(at address: UInt64) -> Value? {
        let position = firstRun(endingAfter: address)
        guard let run = self.run(at: position), run.range.lowerBound <= address else { return nil }
        return run.value
    }

    /// The runs that intersect `range`, clipped to it, ascending.
    @inlinable
    public func runs(in range: Range<UInt64>) -> [Run] {
        var result: [Run] = []
        forEachRun(in: range) { result.append($0) }
        return result
    }

    /// Whether every address of `range` is set to `value` (true for an empty range).
    @inlinable
    public func isUniform(_ range: Range<UInt64>, value: Value) -> Bool {
        if range.isEmpty { return true }
        let position = firstRun(endingAfter: range.lowerBound)
        guard let run = self.run(at: position) else { return false }
        // Runs are maximal, so one run must cover the whole range.
        return run.value == value && run.range.lowerBound <= range.lowerBound
            && run.range.upperBound >= range.upperBound
    }

    /// The unset parts of `range`, ascending.
    @inlinable
    public func gaps(in range: Range<UInt64>) -> [Range<UInt64>] {
        var result: [Range<UInt64>] = []
        var cursor = range.lowerBound
        forEachRun(in: range) { run in
            if cursor < run.range.lowerBound { result.append(cursor..<run.range.lowerBound) }
            cursor = run.range.upperBound
        }
        if cursor < range.upperBound { result.append(cursor..<range.upperBound) }
        return result
    }

    /// Calls `body` with each run intersecting `range`, clipped to it, ascending.
    @inlinable
    public func forEachRun(in range: Range<UInt64>, _ body: (Run) throws -> Void) rethrows {
        if range.isEmpty { return }
        var position = firstRun(endingAfter: range.lowerBound)
        while position.chunk < chunks.count {
            let chunk = chunks[position.chunk]
            while position.index < chunk.count {
                let run = chunk[position.index]
                if run.range.lowerBound >= range.upperBound { return }
                let clipped =
                    Swift.max(
                        run.range.lowerBound, range.lowerBound)..<Swift.min(run.range.upperBound, range.upperBound)
                try body(Run(range: clipped, value: run.value))
                position.index += 1
            }
            position = Position(chunk: position.chunk + 1, index: 0)
        }
    }
}

// MARK: - Positions and searches

extension IntervalMap {
    /// Where a run sits: chunk number and index in that chunk. The end of the map is
    /// `(chunks.count - 1, lastChunk.count)`, or `(0, 0)` when the map is empty.
    @usableFromInline
    struct Position: Equatable {
        @usableFromInline var chunk: Int
        @usableFromInline var index: Int

        @inlinable init(chunk: Int, index: Int) {
            self.chunk = chunk
            self.index = index
        }
    }

    /// The last chunk whose first run starts at or before `address` (0 when there is none).
    @inlinable
    func chunkIndex(for address: UInt64) -> Int {
        chunkStarts.withUnsafeBufferPointer { starts in
            guard let first = starts.first, let last = starts.last, address > first, last > first else { return 0 }
            // Interpolate between the first and last chunk starts, then gallop (as inside chunks).
            let guess = Int(Double(address - first) / Double(last - first) * Double(starts.count - 1))
            let after = Self.firstIndex(in: starts, near: Swift.min(guess, starts.count - 1)) { $0 <= address }
            return Swift.max(0, after - 1)
        }
    }

    /// The first run whose end is beyond `address` (i.e. containing it or after it), in canonical form.
    @inlinable
    func firstRun(endingAfter address: UInt64) -> Position {
        if chunks.isEmpty { return Position(chunk: 0, index: 0) }
        let c = chunkIndex(for: address)
        let guess = interpolatedIndex(of: address, inChunk: c)
        let index = chunks[c].withUnsafeBufferPointer { runs in
            Self.firstIndex(in: runs, near: guess) { $0.range.upperBound <= address }
        }
        return canonical(Position(chunk: c, index: index))
    }

    /// The first run that starts beyond `address`, in canonical form.
    @inlinable
    func firstRun(startingAfter address: UInt64) -> Position {
        if chunks.isEmpty { return Position(chunk: 0, index: 0) }
        let c = chunkIndex(for: address)
        let guess = interpolatedIndex(of: address, inChunk: c)
        let index = chunks[c].withUnsafeBufferPointer { runs in
            Self.firstIndex(in: runs, near: guess) { $0.range.lowerBound <= address }
        }
        return canonical(Position(chunk: c, index: index))
    }

    /// Where `address` would sit in chunk `c` if its runs were spread evenly between the chunk's start
    /// and the next chunk's start. Searching from there touches one or two cache lines of the chunk
    /// instead of the ~log2(lines) misses of a plain binary search (the dominant cost of an edit).
    @inlinable
    func interpolatedIndex(of address: UInt64, inChunk c: Int) -> Int {
        let count = chunks[c].count
        guard c + 1 < chunkStarts.count, address > chunkStarts[c] else {
            return address > chunkStarts[c] ? count / 2 : 0
        }
        let span = Double(chunkStarts[c + 1] - chunkStarts[c])
        let guess = Int(Double(address - chunkStarts[c]) / span * Double(count))
        return Swift.min(Swift.max(guess, 0), count - 1)
    }

    /// The first index of `runs` where `isBefore` turns false (`runs.count` if never), for `isBefore`
    /// true on a prefix. Gallops outwards from `guess`, then binary-searches: O(log distance).
    @inlinable
    static func firstIndex<Element>(
        in runs: UnsafeBufferPointer<Element>, near guess: Int,
        isBefore: (Element) -> Bool
    ) -> Int {
        let count = runs.count
        var low: Int, high: Int
        if guess < count && isBefore(runs[guess]) {
            // The answer is after `guess`.
            low = guess + 1
            high = count
            var step = 1
            while low + step - 1 < count {
                let probe = low + step - 1
                if isBefore(runs[probe]) { low = probe + 1; step *= 2 } else { high = probe; break }
            }
        } else {
            // The answer is at or before `guess`.
            low = 0
            high = Swift.min(guess, count)
            var step = 1
            while high - step >= 0 {
                let probe = high - step
                if isBefore(runs[probe]) { low = probe + 1; break }
                high = probe
                step *= 2
            }
        }
        while low < high {
            let mid = (low + high) / 2
            if isBefore(runs[mid]) { low = mid + 1 } else { high = mid }
        }
        return low
    }

    /// The first run that starts beyond `address`, searching forward from `origin` (a position at or
    /// before the answer): edits cover few runs, so this usually stays in `origin`'s chunk.
    @inlinable
    func firstRun(startingAfter address: UInt64, from origin: Position) -> Position {
        let c = origin.chunk
        guard c < chunks.count, c + 1 == chunks.count || chunkStarts[c + 1] > address else {
            return firstRun(startingAfter: address)
        }
        let index = chunks[c].withUnsafeBufferPointer { runs in
            Self.firstIndex(in: runs, near: origin.index) { $0.range.lowerBound <= address }
        }
        return canonical(Position(chunk: c, index: index))
    }

    /// One past a chunk's last run is the next chunk's first run, except at the very end.
    @inlinable
    func canonical(_ position: Position) -> Position {
        if position.index == chunks[position.chunk].count && position.chunk + 1 < chunks.count {
            return Position(chunk: position.chunk + 1, index: 0)
        }
        return position
    }

    @inlinable
    func run(at position: Position) -> Run? {
        guard position.chunk < chunks.count, position.index < chunks[position.chunk].count else { return nil }
        return chunks[position.chunk][position.index]
    }

    /// The run just before `position`, if any.
    @inlinable
    func position(before position: Position) -> Position? {
        if position.index > 0 { return Position(chunk: position.chunk, index: position.index - 1) }
        if position.chunk == 0 { return nil }
        return Position(chunk: position.chunk - 1, index: chunks[position.chunk - 1].count - 1)
    }
}

// MARK: - Iteration

extension IntervalMap {
    /// The runs of a map in ascending order.
    public struct RunSequence: Sequence {
        @usableFromInline let chunks: [[Run]]

        @inlinable init(chunks: [[Run]]) { self.chunks = chunks }

        @inlinable public func makeIterator() -> Iterator { Iterator(chunks: chunks) }

        public struct Iterator: IteratorProtocol {
            @usableFromInline let chunks: [[Run]]
            @usableFromInline var chunk = 0
            @usableFromInline var index = 0

            @inlinable init(chunks: [[Run]]) { self.chunks = chunks }

            @inlinable
            public mutating func next() -> Run? {
                while chunk < chunks.count {
                    if index < chunks[chunk].count {
                        defer { index += 1 }
                        return chunks[chunk][index]
                    }
                    chunk += 1
                    index = 0
                }
                return nil
            }
        }
    }
}

// MARK: - Equality

extension IntervalMap: Equatable {
    /// Equal iff every address maps to the same value; chunk boundaries do not matter.
    @inlinable
    public static func == (lhs: IntervalMap, rhs: IntervalMap) -> Bool {
        guard lhs.count == rhs.count else { return false }
        var left = lhs.runSequence.makeIterator()
        var right = rhs.runSequence.makeIterator()
        while let a = left.next() {
            guard let b = right.next(), a == b else { return false }
        }
        return true
    }
}

extension IntervalMap: Hashable where Value: Hashable {
    @inlinable
    public func hash(into hasher: inout Hasher) {
        hasher.combine(count)
        for run in runSequence {
            hasher.combine(run.range.lowerBound)
            hasher.combine(run.range.upperBound)
            hasher.combine(run.value)
        }
    }
}

extension IntervalMap.Run: Hashable where Value: Hashable {}

extension IntervalMap.Run: CustomStringConvertible {
    public var description: String {
        "0x\(String(range.lowerBound, radix: 16))..<0x\(String(range.upperBound, radix: 16)): \(value)"
    }
}
