import Config

/// Which guest-physical (or block-offset) ranges are private and which shared; unset means unmapped or
/// not described.
public typealias Layout = IntervalMap<MemoryState>
