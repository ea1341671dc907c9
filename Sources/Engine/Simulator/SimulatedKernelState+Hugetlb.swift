import GmemCore

/// The hugetlb pool, modelled where the capabilities know it (`hugePagesFree`, a probed host or a profile
/// with the host's pools laid over it; without it the pool is unlimited). Linux reserves huge pages at
/// `mmap` time (`hugetlb_reserve_pages`): a shared mapping reserves the file's pages in the mapped range
/// that are not reserved yet, a private mapping reserves every page it maps for itself; too few free,
/// unreserved pages is ENOMEM. `fallocate` on a hugetlbfs file allocates outside any reservation (ENOSPC
/// when the pool runs dry). A punch returns the range's pages and reservations; a released file or an
/// unmapped private mapping returns its own. A writable hugetlbfs mapping extends the file to its end
/// (`hugetlbfs_file_mmap`).
extension SimulatedKernelState {
    /// Free pages of `size` that nothing has claimed yet, or nil when the pool is not modelled.
    func hugePagesAvailable(_ size: UInt64) -> UInt64? {
        guard let pools = capabilities.hugePagesFree else { return nil }
        let free = pools[size] ?? 0
        let claimed = hugePagesClaimed(size)
        return free > claimed ? free - claimed : 0
    }

    /// Pages of `size` claimed by files (reserved or allocated) and by private mappings (reserved).
    private func hugePagesClaimed(_ size: UInt64) -> UInt64 {
        var total: UInt64 = 0
        for file in files.values where file.hugePageSize == size && !(file.kind == .anonymous && !file.sharedAnonymous)
        {
            total += Self.claimedBytes(of: file, in: 0..<UInt64.max) / size
        }
        for mapping in mappings where mapping.hugePageSize == size { total += mapping.hugeReservedPages ?? 0 }
        return total
    }

    /// Bytes of `range` the file holds: allocated or reserved.
    static func claimedBytes(of file: SimFile, in range: Range<UInt64>) -> UInt64 {
        var claimed = IntervalMap<Bool>()
        file.allocated.forEachRun(in: range) { claimed.assign(true, to: $0.range) }
        file.hugeReserved?.forEachRun(in: range) { claimed.assign(true, to: $0.range) }
        return SimMath.coveredBytes(claimed, in: range)
    }

    /// Reserves the pages a new hugetlb mapping needs (ENOMEM if the pool cannot give them) and grows a
    /// hugetlbfs file to the mapping's end. `file` is the mapped object (for anonymous memory, its own).
    mutating func reserveHugePages(for mapping: inout SimMapping, file: inout SimFile) throws(KernelError) {
        guard let huge = mapping.hugePageSize else { return }
        let range = mapping.fileOffset..<mapping.fileOffset + mapping.length
        let privateReservation = !mapping.shared
        let needed =
            privateReservation
            ? mapping.length / huge : (range.byteCount - Self.claimedBytes(of: file, in: range)) / huge
        if let available = hugePagesAvailable(huge), needed > available { throw .simulated(SimErrno.enomem) }
        if privateReservation {
            mapping.hugeReservedPages = needed
        } else {
            var reserved = file.hugeReserved ?? IntervalMap<Bool>()
            reserved.assign(true, to: range)
            file.hugeReserved = reserved
        }
        if file.kind == .memfd, range.upperBound > file.size { file.size = range.upperBound }
    }

    /// Whether a hugetlbfs `fallocate` of `range` finds enough pages (ENOSPC otherwise).
    func checkHugeAllocation(_ file: SimFile, _ range: Range<UInt64>) throws(KernelError) {
        guard let huge = file.hugePageSize, let available = hugePagesAvailable(huge) else { return }
        let start = SimMath.roundDown(range.lowerBound, huge)
        let end = SimMath.roundUp(range.upperBound, huge) ?? range.upperBound
        let needed = (end - start - Self.claimedBytes(of: file, in: start..<end)) / huge
        if needed > available { throw .simulated(SimErrno.enospc) }
    }
}
