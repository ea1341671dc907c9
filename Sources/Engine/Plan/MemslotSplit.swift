import Config

/// Splits a mapping larger than one memslot can hold (`KVM_MEM_MAX_NR_PAGES` pages) into consecutive
/// memslot-sized pieces, as QEMU does with `kvm_max_slot_size`. Pieces are whole GiBs where the limit allows,
/// so every piece but the last stays aligned for huge pages.
public enum MemslotSplit {
    static let alignment: UInt64 = 1 << 30

    /// The size of every piece but the last.
    public static func pieceSize(maxSize: UInt64) -> UInt64 {
        maxSize > alignment ? maxSize / alignment * alignment : maxSize
    }

    public static func pieceCount(size: UInt64, maxSize: UInt64) -> Int {
        guard size > maxSize else { return 1 }
        let piece = pieceSize(maxSize: maxSize)
        return Int((size / piece) + (size % piece == 0 ? 0 : 1))
    }

    /// The memslots of one mapping: the mapping itself when it fits.
    public static func split(_ mapping: Mapping, maxSize: UInt64) -> [Mapping] {
        guard mapping.size > maxSize, maxSize > 0 else { return [mapping] }
        let piece = pieceSize(maxSize: maxSize)
        var pieces: [Mapping] = []
        var done: UInt64 = 0
        while done < mapping.size {
            let size = min(piece, mapping.size - done)
            pieces.append(
                Mapping(block: mapping.block, offset: mapping.offset + done, size: size, gpa: mapping.gpa + done))
            done += size
        }
        return pieces
    }

    public static func split(_ mappings: [Mapping], maxSize: UInt64) -> [Mapping] {
        mappings.flatMap { split($0, maxSize: maxSize) }
    }
}
