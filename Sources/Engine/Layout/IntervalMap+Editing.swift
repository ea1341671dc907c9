/// Edits of an `IntervalMap`. Every edit finds the runs that overlap (or, for `assign`, touch) the edited
/// range, computes at most three replacement runs (a kept left remnant, the new run merged with equal
/// neighbours, a kept right remnant) and splices them in, so runs stay maximal without a separate pass.
extension IntervalMap {
    /// Sets every address of `range` to `value`, overwriting what was there. An empty range is a no-op.
    @inlinable
    public mutating func assign(_ value: Value, to range: Range<UInt64>) {
        if range.isEmpty { return }
        let low = range.lowerBound, high = range.upperBound
        // Runs that overlap or touch [low, high): end >= low ... start <= high.
        let first = low == 0 ? Position(chunk: 0, index: 0) : firstRun(endingAfter: low - 1)
        let end = firstRun(startingAfter: high, from: first)
        var merged = range
        var replacement = SmallRuns()
        if precedes(first, end), let last = position(before: end) {
            let head = chunks[first.chunk][first.index]
            let tail = chunks[last.chunk][last.index]
            if head.range.lowerBound < low {
                if head.value == value {
                    merged = head.range.lowerBound..<merged.upperBound
                } else {
                    replacement.append(Run(range: head.range.lowerBound..<low, value: head.value))
                }
            }
            var right: Run?
            if tail.range.upperBound > high {
                if tail.value == value {
                    merged = merged.lowerBound..<tail.range.upperBound
                } else {
                    right = Run(range: high..<tail.range.upperBound, value: tail.value)
                }
            }
            replacement.append(Run(range: merged, value: value))
            if let right { replacement.append(right) }
        } else {
            replacement.append(Run(range: merged, value: value))
        }
        replace(from: first, to: end, with: replacement)
    }

    /// Unsets every address of `range`. An empty range is a no-op.
    @inlinable
    public mutating func remove(_ range: Range<UInt64>) {
        if range.isEmpty || chunks.isEmpty { return }
        let low = range.lowerBound, high = range.upperBound
        // Runs that overlap [low, high): end > low ... start < high.
        let first = firstRun(endingAfter: low)
        let end = firstRun(startingAfter: high - 1, from: first)
        guard precedes(first, end), let last = position(before: end) else { return }
        let head = chunks[first.chunk][first.index]
        let tail = chunks[last.chunk][last.index]
        var replacement = SmallRuns()
        if head.range.lowerBound < low {
            replacement.append(Run(range: head.range.lowerBound..<low, value: head.value))
        }
        if tail.range.upperBound > high {
            replacement.append(Run(range: high..<tail.range.upperBound, value: tail.value))
        }
        replace(from: first, to: end, with: replacement)
    }

    /// Appends when `range` starts at or after the last run (linear bulk building), else assigns.
    @inlinable
    mutating func assignOrAppend(_ value: Value, to range: Range<UInt64>) {
        if range.isEmpty { return }
        guard let lastChunk = chunks.indices.last, let lastRun = chunks[lastChunk].last,
            lastRun.range.upperBound <= range.lowerBound
        else {
            if chunks.isEmpty { appendNewChunk(Run(range: range, value: value)) } else { assign(value, to: range) }
            return
        }
        if lastRun.range.upperBound == range.lowerBound && lastRun.value == value {
            chunks[lastChunk][chunks[lastChunk].count - 1].range = lastRun.range.lowerBound..<range.upperBound
        } else if chunks[lastChunk].count >= chunkCapacity * 3 / 4 {
            // Leave room in full chunks so that later inserts do not split every one of them.
            appendNewChunk(Run(range: range, value: value))
        } else {
            chunks[lastChunk].append(Run(range: range, value: value))
            count += 1
        }
    }

    @inlinable
    mutating func appendNewChunk(_ run: Run) {
        var chunk: [Run] = []
        chunk.reserveCapacity(chunkCapacity)
        chunk.append(run)
        chunks.append(chunk)
        chunkStarts.append(run.range.lowerBound)
        count += 1
    }

    @inlinable
    func precedes(_ a: Position, _ b: Position) -> Bool {
        a.chunk < b.chunk || (a.chunk == b.chunk && a.index < b.index)
    }
}

// MARK: - Splicing and chunk balance

extension IntervalMap {
    /// Up to three runs, kept inline so that an edit allocates nothing.
    @usableFromInline
    struct SmallRuns {
        @usableFromInline var first: Run?
        @usableFromInline var second: Run?
        @usableFromInline var third: Run?
        @usableFromInline var count = 0

        @inlinable init() {}

        @inlinable
        mutating func append(_ run: Run) {
            switch count {
            case 0: first = run
            case 1: second = run
            default: third = run
            }
            count += 1
        }

        @inlinable
        subscript(index: Int) -> Run {
            // Only called with index < count, so the optional is always set.
            switch index {
            case 0: return first.unsafelyUnwrapped
            case 1: return second.unsafelyUnwrapped
            default: return third.unsafelyUnwrapped
            }
        }
    }

    /// Replaces the runs in `[start, end)` with `replacement` and restores the chunk invariants.
    @inlinable
    mutating func replace(from start: Position, to end: Position, with replacement: SmallRuns) {
        if chunks.isEmpty {
            if replacement.count == 0 { return }
            chunks = [[]]
            chunkStarts = [0]
        }
        if start.chunk == end.chunk {
            replace(inChunk: start.chunk, start.index..<end.index, with: replacement)
            count += replacement.count - (end.index - start.index)
            rebalance(start.chunk)
            return
        }
        var removed = chunks[start.chunk].count - start.index + end.index
        for middle in (start.chunk + 1)..<end.chunk { removed += chunks[middle].count }
        chunks[end.chunk].removeSubrange(0..<end.index)
        replace(inChunk: start.chunk, start.index..<chunks[start.chunk].count, with: replacement)
        if end.chunk > start.chunk + 1 {
            chunks.removeSubrange((start.chunk + 1)..<end.chunk)
            chunkStarts.removeSubrange((start.chunk + 1)..<end.chunk)
        }
        count += replacement.count - removed
        rebalance(start.chunk + 1)
        rebalance(start.chunk)
    }

    @inlinable
    mutating func replace(inChunk c: Int, _ range: Range<Int>, with replacement: SmallRuns) {
        let removed = range.count, added = replacement.count
        let overwritten = Swift.min(removed, added)
        for j in 0..<overwritten { chunks[c][range.lowerBound + j] = replacement[j] }
        if added > removed {
            for j in removed..<added { chunks[c].insert(replacement[j], at: range.lowerBound + j) }
        } else if removed > added {
            chunks[c].removeSubrange((range.lowerBound + added)..<range.upperBound)
        }
    }

    /// Restores chunk `c`'s invariants: non-empty, at most `chunkCapacity` runs, not tiny next to a
    /// neighbour it fits with, and its start key up to date.
    @inlinable
    mutating func rebalance(_ c: Int) {
        guard c < chunks.count else { return }
        if chunks[c].isEmpty {
            chunks.remove(at: c)
            chunkStarts.remove(at: c)
            return
        }
        chunkStarts[c] = chunks[c][0].range.lowerBound
        if chunks[c].count > chunkCapacity {
            split(c)
        } else if chunks[c].count < chunkCapacity / 4 && chunks.count > 1 {
            let left = c + 1 < chunks.count ? c : c - 1
            let moved = chunks[left + 1]
            chunks[left].append(contentsOf: moved)
            chunks.remove(at: left + 1)
            chunkStarts.remove(at: left + 1)
            chunkStarts[left] = chunks[left][0].range.lowerBound
            if chunks[left].count > chunkCapacity { split(left) }
        }
    }

    @inlinable
    mutating func split(_ c: Int) {
        let half = chunks[c].count / 2
        var tail: [Run] = []
        tail.reserveCapacity(chunkCapacity)
        tail.append(contentsOf: chunks[c][half...])
        chunks[c].removeSubrange(half...)
        chunks.insert(tail, at: c + 1)
        chunkStarts.insert(tail[0].range.lowerBound, at: c + 1)
    }
}
