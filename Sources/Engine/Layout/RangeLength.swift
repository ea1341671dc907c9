extension Range where Bound == UInt64 {
    /// The length in bytes. `Range<UInt64>.count` is an `Int` and traps from 2^63 bytes on; this cannot.
    @inlinable public var byteCount: UInt64 { upperBound - lowerBound }
}
