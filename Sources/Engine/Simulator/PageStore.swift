import Foundation
import GmemCore

/// Contents of the pages that were actually written, by page index; every other page reads as zeros.
/// This is the only per-page storage of the simulator, so untouched memory costs nothing.
struct PageStore: Sendable, Hashable, Codable {
    private(set) var pages: [UInt64: Data] = [:]

    var count: Int { pages.count }

    /// Bytes `[offset, offset + count)` of the page at `index` (zeros when never written).
    func read(page index: UInt64, offset: Int, count: Int) -> [UInt8] {
        guard let data = pages[index] else { return [UInt8](repeating: 0, count: count) }
        return [UInt8](data[data.startIndex + offset..<data.startIndex + offset + count])
    }

    func page(_ index: UInt64) -> Data? { pages[index] }

    mutating func write(page index: UInt64, pageSize: UInt64, offset: Int, bytes: ArraySlice<UInt8>) {
        var data = pages[index] ?? Data(count: Int(pageSize))
        data.replaceSubrange(data.startIndex + offset..<data.startIndex + offset + bytes.count, with: bytes)
        pages[index] = data
    }

    mutating func setPage(_ index: UInt64, _ data: Data) { pages[index] = data }

    /// Forgets the pages whose index is in `indices` (they read as zeros again). Costs what is stored, not
    /// what the range spans.
    mutating func remove(_ indices: Range<UInt64>) {
        guard !pages.isEmpty, !indices.isEmpty else { return }
        for index in pages.keys where indices.contains(index) { pages[index] = nil }
    }

    /// Zeroes bytes `[from, to)` of one page, if it holds contents.
    mutating func zero(page index: UInt64, from: Int, to: Int) {
        guard var data = pages[index], from < to else { return }
        data.resetBytes(in: data.startIndex + from..<data.startIndex + to)
        pages[index] = data
    }

    /// Indices of stored pages in `indices`, ascending.
    func storedIndices(in indices: Range<UInt64>) -> [UInt64] {
        pages.keys.filter { indices.contains($0) }.sorted()
    }
}
