import Config

/// What a host can tell about a block beyond the tracked state: resident memory, read through `mincore`.
public struct BlockObservation: Sendable, Hashable, Codable {
    public var name: String
    public var residentBytes: UInt64
}

public struct GuestObservation: Sendable, Hashable, Codable {
    public var blocks: [BlockObservation]
}

public enum Observer {
    /// Reads resident memory of each block's host mapping. A block without a host mapping reports 0.
    public static func observe(_ state: LiveState, kernel: KernelInterface) -> GuestObservation {
        GuestObservation(blocks: state.blocks.map { block in
            var resident: UInt64 = 0
            if let address = block.hostAddress,
               let pages = try? kernel.residentPages(address: address, length: block.size) {
                resident = pages * kernel.pageSize
            }
            return BlockObservation(name: block.name, residentBytes: resident)
        })
    }
}
