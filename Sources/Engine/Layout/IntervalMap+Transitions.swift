/// Differences between two interval maps, and applying them.
extension IntervalMap {
    /// A maximal range where two maps differ: every address of `range` goes from `from` to `to`
    /// (nil meaning unset).
    public struct Transition: Equatable, Sendable {
        public var range: Range<UInt64>
        public var from: Value?
        public var to: Value?

        @inlinable
        public init(range: Range<UInt64>, from: Value?, to: Value?) {
            self.range = range
            self.from = from
            self.to = to
        }
    }

    /// The maximal ranges where `old` and `new` differ, ascending; touching differing pieces with the same
    /// (from, to) are one transition. A merge walk over both run lists: linear in their run counts.
    @inlinable
    public static func transitions(from old: IntervalMap, to new: IntervalMap) -> [Transition] {
        // From or to nothing (a fresh guest, a removed one): every run is one transition, since maximal runs
        // that touch have different values.
        if old.isEmpty || new.isEmpty {
            let runs = old.isEmpty ? new : old
            var result: [Transition] = []
            result.reserveCapacity(runs.count)
            for chunk in runs.chunks {
                for run in chunk {
                    result.append(
                        old.isEmpty
                            ? Transition(range: run.range, from: nil, to: run.value)
                            : Transition(range: run.range, from: run.value, to: nil))
                }
            }
            return result
        }
        var result: [Transition] = []
        var oldRuns = old.runSequence.makeIterator(), newRuns = new.runSequence.makeIterator()
        var oldRun = oldRuns.next(), newRun = newRuns.next()
        var cursor: UInt64 = 0
        while oldRun != nil || newRun != nil {
            // The value each map has at `cursor`, and where that stops holding.
            let oldCovers = oldRun.map { $0.range.lowerBound <= cursor } ?? false
            let newCovers = newRun.map { $0.range.lowerBound <= cursor } ?? false
            if !oldCovers && !newCovers {
                // Both unset here: jump to the next run of either map.
                cursor = Swift.min(oldRun?.range.lowerBound ?? .max, newRun?.range.lowerBound ?? .max)
                continue
            }
            let oldEnd = oldCovers ? oldRun.unsafelyUnwrapped.range.upperBound : (oldRun?.range.lowerBound ?? .max)
            let newEnd = newCovers ? newRun.unsafelyUnwrapped.range.upperBound : (newRun?.range.lowerBound ?? .max)
            let end = Swift.min(oldEnd, newEnd)
            let from = oldCovers ? oldRun?.value : nil
            let to = newCovers ? newRun?.value : nil
            if from != to {
                if let last = result.last, last.range.upperBound == cursor, last.from == from, last.to == to {
                    result[result.count - 1].range = last.range.lowerBound..<end
                } else {
                    result.append(Transition(range: cursor..<end, from: from, to: to))
                }
            }
            cursor = end
            if oldCovers, oldRun.unsafelyUnwrapped.range.upperBound == end { oldRun = oldRuns.next() }
            if newCovers, newRun.unsafelyUnwrapped.range.upperBound == end { newRun = newRuns.next() }
        }
        return result
    }

    /// Sets each transition's range to its `to` value (unsets it where `to` is nil), so that
    /// `a.apply(transitions(from: a, to: b))` makes `a == b`.
    @inlinable
    public mutating func apply(_ transitions: [Transition]) {
        for transition in transitions {
            if let value = transition.to {
                assign(value, to: transition.range)
            } else {
                remove(transition.range)
            }
        }
    }
}

extension IntervalMap.Transition: Hashable where Value: Hashable {}
