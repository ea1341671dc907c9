/// Building a map from many assignments at once (a manifest's layout, a batch of conversions).
///
/// Assigning n ranges one by one into a map of r runs costs n searches and n splices at random places of a
/// structure too big for the cache. Given all of them at once, the same map comes from one sort of their start
/// addresses and one sweep, reading memory in order: O(n) radix passes plus a heap as deep as the ranges
/// overlap.
extension IntervalMap {
    /// The map that assigning each of `assignments` in turn would give: a later assignment wins wherever
    /// ranges overlap; empty ranges are ignored.
    @inlinable
    public init(assigning assignments: [(range: Range<UInt64>, value: Value)]) {
        var builder = Builder(capacity: assignments.count)
        for assignment in assignments { builder.assign(assignment.value, to: assignment.range) }
        self = builder.build()
    }

    /// Collects assignments, then builds the map that assigning them in turn would give (a later assignment
    /// wins wherever ranges overlap). Ascending, non-overlapping assignments are appended as they come;
    /// others are sorted once by start (in place, by radix) and swept with a heap of the assignments that
    /// cover the sweep point.
    public struct Builder: Sendable {
        @usableFromInline var records: [Assignment] = []
        /// Whether the records so far ascend without overlapping (then no sort is needed).
        @usableFromInline var ascending = true
        /// Smallest and largest start, and all starts or-ed (their common alignment), for the sort.
        @usableFromInline var starts = StartSummary()
        /// Once more assignments arrive than `order` can number, the rest are assigned one by one here.
        @usableFromInline var overflow: IntervalMap?
        @usableFromInline let chunkCapacity: Int
        @usableFromInline let orderLimit: Int

        /// A builder with room for `capacity` assignments.
        @inlinable
        public init(capacity: Int = 0) {
            self.init(capacity: capacity, chunks: IntervalMap.defaultChunkCapacity, orderLimit: Int(UInt32.max))
        }

        /// A builder whose maps use `chunkCapacity`, and that switches to assigning one by one after
        /// `orderLimit` assignments (tests use small limits).
        @_spi(Tuning)
        @inlinable
        public init(capacity: Int, chunkCapacity: Int, orderLimit: Int = Int(UInt32.max)) {
            self.init(capacity: capacity, chunks: chunkCapacity, orderLimit: orderLimit)
        }

        @inlinable
        init(capacity: Int, chunks chunkCapacity: Int, orderLimit: Int) {
            self.chunkCapacity = chunkCapacity
            self.orderLimit = Swift.min(orderLimit, Int(UInt32.max))
            records.reserveCapacity(Swift.min(capacity, self.orderLimit))
        }

        /// Records that `range` gets `value`, over whatever earlier assignments gave it.
        @inlinable
        public mutating func assign(_ value: Value, to range: Range<UInt64>) {
            if range.isEmpty { return }
            if overflow != nil {
                overflow?.assign(value, to: range)
                return
            }
            if records.count == orderLimit {
                overflow = takeMap()
                overflow?.assign(value, to: range)
                return
            }
            if let last = records.last, last.end > range.lowerBound { ascending = false }
            starts.add(range.lowerBound)
            records.append(
                Assignment(
                    start: range.lowerBound, end: range.upperBound, order: UInt32(truncatingIfNeeded: records.count),
                    value: value))
        }

        /// The map.
        @inlinable
        public consuming func build() -> IntervalMap {
            takeMap()
        }

        /// The map, leaving the builder empty (its records are sorted in place, not copied).
        @inlinable
        mutating func takeMap() -> IntervalMap {
            if let overflow { return overflow }
            var writer = ChunkWriter(chunkCapacity: chunkCapacity)
            var records: [Assignment] = []
            swap(&records, &self.records)
            if ascending {
                for record in records { writer.append(record.start..<record.end, record.value) }
            } else {
                IntervalMap.sweep(&records, starts: starts) { writer.append($0, $1) }
            }
            ascending = true
            starts = StartSummary()
            return writer.finish()
        }
    }

    /// What the sort needs to know of the starts, kept as assignments arrive instead of in extra passes.
    @usableFromInline
    struct StartSummary: Sendable {
        @usableFromInline var minimum = UInt64.max
        @usableFromInline var maximum: UInt64 = 0
        @usableFromInline var bits: UInt64 = 0

        @inlinable init() {}

        @inlinable
        mutating func add(_ start: UInt64) {
            minimum = Swift.min(minimum, start)
            maximum = Swift.max(maximum, start)
            bits |= start
        }

        /// Trailing zero bits shared by every start, hence by every start less the minimum: shifting them
        /// out of the sort keys loses nothing.
        @inlinable var alignment: UInt64 { bits == 0 ? 0 : UInt64(bits.trailingZeroBitCount) }
    }

    /// One assignment as the sweep sees it: its range, its value and its place in the input (later wins).
    @usableFromInline
    struct Assignment: Sendable {
        @usableFromInline var start: UInt64
        @usableFromInline var end: UInt64
        @usableFromInline var order: UInt32
        @usableFromInline var value: Value

        @inlinable init(start: UInt64, end: UInt64, order: UInt32, value: Value) {
            self.start = start
            self.end = end
            self.order = order
            self.value = value
        }
    }

    /// Writes ascending stretches into chunks filled to three quarters (so that later edits rarely split
    /// them), merging touching stretches of equal value into one run.
    @usableFromInline
    struct ChunkWriter {
        @usableFromInline var chunks: [[Run]] = []
        @usableFromInline var chunkStarts: [UInt64] = []
        @usableFromInline var chunk: [Run] = []
        @usableFromInline var pending: Run?
        @usableFromInline var count = 0
        @usableFromInline let chunkCapacity: Int
        @usableFromInline let fill: Int

        @inlinable
        init(chunkCapacity: Int) {
            self.chunkCapacity = Swift.max(4, chunkCapacity)
            self.fill = self.chunkCapacity * 3 / 4
            chunk.reserveCapacity(self.chunkCapacity)
        }

        @inlinable
        mutating func append(_ range: Range<UInt64>, _ value: Value) {
            if let last = pending {
                if last.range.upperBound == range.lowerBound && last.value == value {
                    pending?.range = last.range.lowerBound..<range.upperBound
                    return
                }
                write(last)
            }
            pending = Run(range: range, value: value)
        }

        @inlinable
        mutating func write(_ run: Run) {
            if chunk.count == fill {
                chunks.append(chunk)
                chunk = []
                chunk.reserveCapacity(chunkCapacity)
            }
            if chunk.isEmpty { chunkStarts.append(run.range.lowerBound) }
            chunk.append(run)
            count += 1
        }

        @inlinable
        consuming func finish() -> IntervalMap {
            if let last = pending { write(last) }
            if !chunk.isEmpty { chunks.append(chunk) }
            var map = IntervalMap(capacity: chunkCapacity)
            map.chunks = chunks
            map.chunkStarts = chunkStarts
            map.count = count
            return map
        }
    }

    /// Emits the winning value of every stretch covered by some record, ascending (touching stretches may
    /// repeat a value). Reorders `records`.
    ///
    /// The records are sorted on the bits in which their starts differ (less the minimum start and the
    /// starts' common alignment). One in-place pass (American flag sort) moves them into at most 256 buckets
    /// by the top bits; each bucket is then sorted on its remaining bits while it is in the cache and swept
    /// straight away. Every record is written to memory about once, and the array is never copied.
    @inlinable
    static func sweep(
        _ records: inout [Assignment], starts: StartSummary, _ emit: (Range<UInt64>, Value) -> Void
    ) {
        if records.isEmpty { return }
        let minimum = starts.minimum
        let alignment = starts.alignment
        let keyBits = UInt64.bitWidth - ((starts.maximum &- minimum) >> alignment).leadingZeroBitCount
        // Buckets: 256, or up to 1,024 when that leaves at most 22 bits (two in-cache passes of 11) to sort
        // within each; few enough that the places the flag sort writes to stay in the cache and the TLB, and
        // no more than one per 1,024 records.
        let bucketBits = Swift.min(
            keyBits, Swift.max(8, Swift.min(10, keyBits - 22)),
            UInt64.bitWidth - (records.count >> 10).leadingZeroBitCount)
        let lowBits = keyBits - bucketBits
        let lowShift = alignment + UInt64(lowBits)
        let buckets = 1 << bucketBits
        var heap = LatestFirstHeap()
        var cursor: UInt64 = 0
        records.withUnsafeMutableBufferPointer { records in
            // Bucket boundaries, then the in-place permutation.
            var bounds = [Int](repeating: 0, count: buckets + 1)
            for record in records { bounds[Int(truncatingIfNeeded: (record.start &- minimum) >> lowShift) + 1] += 1 }
            for bucket in 0..<buckets { bounds[bucket + 1] += bounds[bucket] }
            var next = bounds
            for bucket in 0..<buckets {
                while next[bucket] < bounds[bucket + 1] {
                    var record = records[next[bucket]]
                    var target = Int(truncatingIfNeeded: (record.start &- minimum) >> lowShift)
                    while target != bucket {
                        swap(&record, &records[next[target]])
                        next[target] += 1
                        target = Int(truncatingIfNeeded: (record.start &- minimum) >> lowShift)
                    }
                    records[next[bucket]] = record
                    next[bucket] += 1
                }
            }
            var largest = 0
            for bucket in 0..<buckets { largest = Swift.max(largest, bounds[bucket + 1] - bounds[bucket]) }
            // Scratch for the bucket sorts: initialized copies, so that plain assignment is safe for any Value.
            var scratch = Array(records[0..<(lowBits > 0 ? largest : 0)])
            scratch.withUnsafeMutableBufferPointer { scratch in
                for bucket in 0..<buckets where bounds[bucket] < bounds[bucket + 1] {
                    let part = UnsafeMutableBufferPointer(rebasing: records[bounds[bucket]..<bounds[bucket + 1]])
                    if lowBits > 0 {
                        radixSort(part, scratch: scratch, bits: alignment..<lowShift, minimum: minimum)
                    }
                    sweepSorted(part, heap: &heap, cursor: &cursor, emit)
                }
            }
        }
        advance(to: .max, heap: &heap, cursor: &cursor, emit)
    }

    /// Continues the sweep over `sorted` (ascending by start, all starting at or after the earlier ones).
    @inlinable
    static func sweepSorted(
        _ sorted: UnsafeMutableBufferPointer<Assignment>, heap: inout LatestFirstHeap, cursor: inout UInt64,
        _ emit: (Range<UInt64>, Value) -> Void
    ) {
        for record in sorted {
            advance(to: record.start, heap: &heap, cursor: &cursor, emit)
            cursor = record.start
            heap.push(record)
        }
    }

    /// Emits the stretches from `cursor` up to `limit`, each with the latest assignment covering it, and
    /// drops the assignments that end on the way.
    @inlinable
    static func advance(
        to limit: UInt64, heap: inout LatestFirstHeap, cursor: inout UInt64, _ emit: (Range<UInt64>, Value) -> Void
    ) {
        while !heap.isEmpty && cursor < limit {
            let top = heap.top
            if top.end <= cursor {
                heap.pop()
                continue
            }
            let end = Swift.min(top.end, limit)
            emit(cursor..<end, top.value)
            cursor = end
        }
    }

    /// Sorts `records` by bits `bits` of `start - minimum` (the bits above are equal): insertion sort for a
    /// handful, else LSD passes of at most 11 bits (2,048 counts, in the L1 cache) through `scratch` (at least as long), ending in `records`.
    @inlinable
    static func radixSort(
        _ records: UnsafeMutableBufferPointer<Assignment>, scratch: UnsafeMutableBufferPointer<Assignment>,
        bits: Range<UInt64>, minimum: UInt64
    ) {
        let count = records.count
        if count <= 16 {
            for i in 1..<Swift.max(1, count) {
                let record = records[i]
                var j = i
                while j > 0 && records[j - 1].start > record.start {
                    records[j] = records[j - 1]
                    j -= 1
                }
                records[j] = record
            }
            return
        }
        let width = Int(bits.upperBound - bits.lowerBound)
        let passes = (width + 10) / 11
        let digitBits = (width + passes - 1) / passes
        let digitMask = UInt64((1 << digitBits) - 1)
        withUnsafeTemporaryAllocation(of: Int.self, capacity: 1 << digitBits) { counts in
            var source = records
            var target = UnsafeMutableBufferPointer(rebasing: scratch[0..<count])
            for pass in 0..<passes {
                let shift = bits.lowerBound + UInt64(pass * digitBits)
                for i in counts.indices { counts[i] = 0 }
                for record in source { counts[Int(((record.start &- minimum) >> shift) & digitMask)] += 1 }
                var total = 0
                for i in counts.indices {
                    let bucket = counts[i]
                    counts[i] = total
                    total += bucket
                }
                for record in source {
                    let digit = Int(((record.start &- minimum) >> shift) & digitMask)
                    target[counts[digit]] = record
                    counts[digit] += 1
                }
                swap(&source, &target)
            }
            if source.baseAddress != records.baseAddress {
                for i in 0..<count { records[i] = source[i] }
            }
        }
    }

    /// A max-heap of assignments by input order (latest on top). Usually holds a handful: the assignments
    /// covering the sweep point.
    @usableFromInline
    struct LatestFirstHeap: ~Copyable {
        @usableFromInline var storage: UnsafeMutablePointer<Assignment>
        @usableFromInline var capacity: Int
        @usableFromInline var count = 0

        @inlinable init() {
            capacity = 64
            storage = .allocate(capacity: capacity)
        }

        @inlinable deinit {
            storage.deinitialize(count: count)
            storage.deallocate()
        }

        @inlinable var isEmpty: Bool { count == 0 }
        /// The latest assignment; only when not empty.
        @inlinable var top: Assignment { storage.pointee }

        @inlinable
        mutating func push(_ item: Assignment) {
            if count == capacity {
                let larger = UnsafeMutablePointer<Assignment>.allocate(capacity: capacity * 2)
                larger.moveInitialize(from: storage, count: count)
                storage.deallocate()
                storage = larger
                capacity *= 2
            }
            // Sift up: move parents down into the hole, then place the item once.
            var child = count
            count += 1
            while child > 0 {
                let parent = (child - 1) / 2
                if storage[parent].order > item.order { break }
                (storage + child).moveInitialize(from: storage + parent, count: 1)
                child = parent
            }
            (storage + child).initialize(to: item)
        }

        @inlinable
        mutating func pop() {
            count -= 1
            storage.deinitialize(count: 1)
            if count == 0 { return }
            let item = (storage + count).move()
            var parent = 0
            while true {
                var later = 2 * parent + 1
                if later >= count { break }
                if later + 1 < count && storage[later + 1].order > storage[later].order { later += 1 }
                if item.order > storage[later].order { break }
                (storage + parent).moveInitialize(from: storage + later, count: 1)
                parent = later
            }
            (storage + parent).initialize(to: item)
        }
    }
}
