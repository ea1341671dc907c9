import GmemCore

/// `fallocate(2)`: the VFS checks first (`vfs_fallocate`), then the file system's own (guest_memfd: KEEP_SIZE
/// is mandatory, page alignment, allocation inside the file; shmem/hugetlbfs: allocate or punch, partial
/// pages zeroed). docs/kernels.md.
extension SimulatedKernelState {
    static let fallocModeMask: Int32 = 0x02 | 0x08 | 0x10 | 0x20 | 0x40 | 0x80
    static let fallocCollapseInsertWriteZeroes: Set<Int32> = [0x08, 0x20, 0x80]

    mutating func fallocate(fd: Int32, mode: Int32, offset: UInt64, length: UInt64) throws(KernelError) {
        let descriptor = try descriptor(fd)
        // `offset < 0 || len <= 0` on signed values.
        guard offset <= UInt64(Int64.max), length > 0, length <= UInt64(Int64.max) else {
            throw .simulated(SimErrno.einval)
        }
        try checkVFSMode(mode)
        // Only regular files (and block devices) can be allocated: /dev/kvm and VM fds are not.
        guard case .file(let id) = descriptor, var file = files[id] else { throw .simulated(SimErrno.enodev) }
        guard let end = SimMath.end(offset, length), end <= UInt64(Int64.max) else { throw .simulated(SimErrno.efbig) }

        let keepSize = mode & KVMConstants.fallocKeepSize != 0
        let punch = mode & KVMConstants.fallocPunchHole != 0
        if file.gmem != nil {
            guard keepSize else { throw .simulated(SimErrno.eopnotsupp) }
            guard mode & ~(KVMConstants.fallocKeepSize | KVMConstants.fallocPunchHole) == 0 else {
                throw .simulated(SimErrno.eopnotsupp)
            }
            guard SimMath.isAligned(offset, pageSize), SimMath.isAligned(length, pageSize) else {
                throw .simulated(SimErrno.einval)
            }
            if punch {
                punchHole(&file, offset..<end)
            } else {
                guard end <= file.size else { throw .simulated(SimErrno.einval) }
                allocate(&file, offset..<end)
            }
        } else {
            guard mode & ~(KVMConstants.fallocKeepSize | KVMConstants.fallocPunchHole) == 0 else {
                throw .simulated(SimErrno.eopnotsupp)
            }
            if punch {
                punchHole(&file, offset..<end)
            } else {
                try checkHugeAllocation(file, offset..<end)
                allocate(&file, offset..<end)
                if !keepSize && end > file.size { file.size = end }
            }
        }
        files[id] = file
    }

    /// `vfs_fallocate` mode rules: unknown bits, several modes at once, PUNCH_HOLE without KEEP_SIZE, and
    /// COLLAPSE/INSERT/WRITE_ZEROES with KEEP_SIZE are all EOPNOTSUPP.
    private func checkVFSMode(_ mode: Int32) throws(KernelError) {
        guard mode & ~(Self.fallocModeMask | KVMConstants.fallocKeepSize) == 0 else {
            throw .simulated(SimErrno.eopnotsupp)
        }
        let operation = mode & Self.fallocModeMask
        guard operation == 0 || operation.nonzeroBitCount == 1 else { throw .simulated(SimErrno.eopnotsupp) }
        let keepSize = mode & KVMConstants.fallocKeepSize != 0
        if operation == KVMConstants.fallocPunchHole && !keepSize { throw .simulated(SimErrno.eopnotsupp) }
        if Self.fallocCollapseInsertWriteZeroes.contains(operation) && keepSize {
            throw .simulated(SimErrno.eopnotsupp)
        }
    }

    /// Allocates whole allocation units covering `range`.
    func allocate(_ file: inout SimFile, _ range: Range<UInt64>) {
        let granule = file.granule(pageSize: pageSize)
        let start = SimMath.roundDown(range.lowerBound, granule)
        let end = SimMath.roundUp(range.upperBound, granule) ?? range.upperBound
        file.allocated.assign(true, to: start..<end)
    }

    /// A fault (host access, population, GUP): allocates whole units covering `range` and makes them up to date.
    func touch(_ file: inout SimFile, _ range: Range<UInt64>) {
        allocate(&file, range)
        let granule = file.granule(pageSize: pageSize)
        let start = SimMath.roundDown(range.lowerBound, granule)
        let end = SimMath.roundUp(range.upperBound, granule) ?? range.upperBound
        var uptodate = file.uptodate ?? IntervalMap<Bool>()
        uptodate.assign(true, to: start..<end)
        file.uptodate = uptodate
    }

    /// Frees the whole allocation units inside `range` (and drops their pins: a punched folio leaves the
    /// file) and zeroes the bytes of partial units at either end. Nothing beyond EOF exists, so a punch
    /// there is a no-op. The guest_memfd's private/shared state is not touched.
    func punchHole(_ file: inout SimFile, _ range: Range<UInt64>) {
        let granule = file.granule(pageSize: pageSize)
        let fullStart = SimMath.roundUp(range.lowerBound, granule) ?? range.upperBound
        let fullEnd = SimMath.roundDown(range.upperBound, granule)
        if fullStart < fullEnd {
            file.allocated.remove(fullStart..<fullEnd)
            file.uptodate?.remove(fullStart..<fullEnd)
            file.hugeReserved?.remove(fullStart..<fullEnd)
            file.contents.remove(fullStart / pageSize..<fullEnd / pageSize)
            if var gmem = file.gmem {
                gmem.pinned = gmem.pinned.filter { !(fullStart..<fullEnd).contains($0) }
                file.gmem = gmem
            }
            zeroBytes(&file, range.lowerBound..<fullStart)
            zeroBytes(&file, fullEnd..<range.upperBound)
        } else {
            zeroBytes(&file, range)
        }
    }

    /// Zeroes `range` in the stored pages it touches (unstored pages already read as zeros).
    private func zeroBytes(_ file: inout SimFile, _ range: Range<UInt64>) {
        guard !range.isEmpty else { return }
        let pages = range.lowerBound / pageSize..<(range.upperBound - 1) / pageSize + 1
        for page in file.contents.storedIndices(in: pages) {
            let pageStart = page * pageSize
            let from = max(range.lowerBound, pageStart) - pageStart
            let to = min(range.upperBound, pageStart + pageSize) - pageStart
            file.contents.zero(page: page, from: Int(from), to: Int(to))
        }
    }
}
