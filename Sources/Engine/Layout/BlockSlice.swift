/// A piece of guest-physical memory seen through one mapping: `gpaRange` shows `offsets` of `block`.
public struct BlockSlice: Sendable, Hashable, CustomStringConvertible {
    public var block: String
    public var offsets: Range<UInt64>
    public var gpaRange: Range<UInt64>
    /// Index of the mapping (in the manifest's `spec.mappings`) that makes the piece visible.
    public var mappingIndex: Int

    public init(block: String, offsets: Range<UInt64>, gpaRange: Range<UInt64>, mappingIndex: Int) {
        self.block = block
        self.offsets = offsets
        self.gpaRange = gpaRange
        self.mappingIndex = mappingIndex
    }

    public var description: String {
        "\(block)[0x\(String(offsets.lowerBound, radix: 16))..<0x\(String(offsets.upperBound, radix: 16))]"
            + " at gpa 0x\(String(gpaRange.lowerBound, radix: 16))..<0x\(String(gpaRange.upperBound, radix: 16))"
    }
}
