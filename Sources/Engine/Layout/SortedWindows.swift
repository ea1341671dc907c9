/// Mapping windows (one coordinate space: guest addresses, or one block's offsets) sorted by start, with a
/// running maximum of their ends so that binary search stays correct even when windows overlap.
struct SortedWindows: Sendable, Hashable {
    /// Mapping indices, ascending by window start.
    private(set) var order: [Int]
    private var starts: [UInt64]
    private var ends: [UInt64]
    /// `reach[i]` = largest end among windows `0...i` (non-decreasing).
    private var reach: [UInt64]

    init(_ windows: [(index: Int, range: Range<UInt64>)]) {
        let sorted = windows.filter { !$0.range.isEmpty }
            .sorted { ($0.range.lowerBound, $0.index) < ($1.range.lowerBound, $1.index) }
        order = sorted.map(\.index)
        starts = sorted.map(\.range.lowerBound)
        ends = sorted.map(\.range.upperBound)
        var running: UInt64 = 0
        reach = ends.map {
            running = max(running, $0); return running
        }
    }

    /// Calls `body` with each mapping index whose window intersects `range`, in ascending window start.
    func forEachWindow(intersecting range: Range<UInt64>, _ body: (Int, Range<UInt64>) throws -> Void) rethrows {
        if range.isEmpty { return }
        // First window that could reach past range.lowerBound.
        var low = 0, high = reach.count
        while low < high {
            let mid = (low + high) / 2
            if reach[mid] <= range.lowerBound { low = mid + 1 } else { high = mid }
        }
        var i = low
        while i < starts.count, starts[i] < range.upperBound {
            if ends[i] > range.lowerBound { try body(order[i], starts[i]..<ends[i]) }
            i += 1
        }
    }
}
