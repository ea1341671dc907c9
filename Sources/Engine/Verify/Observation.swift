import Config

/// What a host can tell about a block beyond the tracked state: resident memory of its host mapping.
public struct BlockObservation: Sendable, Hashable, Codable {
    public var name: String
    public var residentBytes: UInt64
    /// Where `residentBytes` comes from (nil: the block has no host mapping, or the reading failed).
    public var residentSource: ResidencySource?
}

public struct GuestObservation: Sendable, Hashable, Codable {
    public var blocks: [BlockObservation]
}

public enum Observer {
    /// Reads resident memory of each block's host mapping, one cheap kernel reading per block (never a walk
    /// over the mapping's pages). A block without a host mapping reports 0 and no source.
    public static func observe(_ state: LiveState, kernel: KernelInterface) -> GuestObservation {
        GuestObservation(
            blocks: state.blocks.map { block in
                guard let address = block.hostAddress,
                    let reading = try? kernel.residentBytes(address: address, length: block.size)
                else {
                    return BlockObservation(name: block.name, residentBytes: 0, residentSource: nil)
                }
                return BlockObservation(name: block.name, residentBytes: reading.bytes, residentSource: reading.source)
            })
    }
}
