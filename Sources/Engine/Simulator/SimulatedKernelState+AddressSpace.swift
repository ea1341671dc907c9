import GmemCore

/// The simulated process address space: `mmap`, `munmap`, `madvise` and `mincore`, with Linux's order of
/// checks (`sys_mmap` offset, `fget`, `MAP_HUGETLB`, `do_mmap` length, then the file's own `mmap`).
extension SimulatedKernelState {
    static let madvDontneedLocked: Int32 = 24
    static let madvPopulateRead: Int32 = 22
    static let madvCollapse: Int32 = 25
    /// Advice values Linux 6.18 accepts (others are EINVAL). HWPOISON/SOFT_OFFLINE are left out: the
    /// simulator does not model memory failure.
    static let validAdvice: Set<Int32> = Set(0...4).union([
        8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27,
    ])

    // MARK: - mmap / munmap

    mutating func mmap(
        fd: Int32?, length: UInt64, offset: UInt64, shared: Bool, hugePageSize: UInt64?
    ) throws(KernelError) -> UInt64 {
        guard SimMath.isAligned(offset, pageSize) else { throw .simulated(SimErrno.einval) }
        var file: SimFile?
        if let fd {
            // `hugePageSize` selects MAP_HUGETLB for anonymous memory only (the `KernelInterface` contract:
            // `KVMKernel` never passes it with an fd); a file mapping takes its page size from the file.
            let descriptor = try descriptor(fd)
            if case .file(let id) = descriptor { file = files[id] }
        } else if let hugePageSize {
            guard hugePageSize.nonzeroBitCount == 1, capabilities.hugePageSizes.contains(hugePageSize) else {
                throw .simulated(SimErrno.einval)
            }
        }
        guard length > 0 else { throw .simulated(SimErrno.einval) }
        let granule = fd == nil ? (hugePageSize ?? pageSize) : (file?.hugePageSize ?? pageSize)
        guard let mappedLength = SimMath.roundUp(length, granule), mappedLength < SimMath.taskSizeMax else {
            throw .simulated(SimErrno.enomem)
        }
        guard SimMath.end(offset / pageSize, mappedLength / pageSize) != nil else {
            throw .simulated(SimErrno.eoverflow)
        }

        var mapping: SimMapping
        if fd != nil {
            // /dev/kvm and VM fds have no mmap.
            guard let file else { throw .simulated(SimErrno.enodev) }
            if let gmem = file.gmem {
                guard gmem.mappable else { throw .simulated(SimErrno.enodev) }
                guard shared else { throw .simulated(SimErrno.einval) }
            }
            if let huge = file.hugePageSize, !SimMath.isAligned(offset, huge) { throw .simulated(SimErrno.einval) }
            mapping = SimMapping(
                address: 0, length: mappedLength, file: file.id, fileOffset: offset, shared: shared,
                copyOnWrite: !shared, hugePageSize: file.hugePageSize)
        } else {
            let id = newObjectID()
            files[id] = SimFile(
                id: id, kind: .anonymous, name: shared ? "/dev/zero (deleted)" : "[anon]", size: mappedLength,
                hugePageSize: hugePageSize, sharedAnonymous: shared)
            mapping = SimMapping(
                address: 0, length: mappedLength, file: id, fileOffset: 0, shared: shared,
                copyOnWrite: false, hugePageSize: hugePageSize)
        }
        if mapping.hugePageSize != nil, var backing = files[mapping.file] {
            do throws(KernelError) {
                try reserveHugePages(for: &mapping, file: &backing)
            } catch {
                collectGarbage()
                throw error
            }
            files[backing.id] = backing
        }
        guard let address = freeAddress(length: mappedLength, alignment: granule) else {
            collectGarbage()
            throw .simulated(SimErrno.enomem)
        }
        mapping.address = address
        let index = mappings.firstIndex { $0.address > address } ?? mappings.endIndex
        mappings.insert(mapping, at: index)
        return address
    }

    /// First fit from `mmapBase`, so placement is deterministic and a saved state maps the same way again.
    private func freeAddress(length: UInt64, alignment: UInt64) -> UInt64? {
        guard var candidate = SimMath.roundUp(Self.mmapBase, alignment) else { return nil }
        for mapping in mappings where mapping.end > candidate {
            if let end = SimMath.end(candidate, length), end <= mapping.address { return candidate }
            guard let next = SimMath.roundUp(max(candidate, mapping.end), alignment) else { return nil }
            candidate = next
        }
        guard let end = SimMath.end(candidate, length), end <= SimMath.taskSizeMax else { return nil }
        return candidate
    }

    mutating func munmap(address: UInt64, length: UInt64) throws(KernelError) {
        guard SimMath.isAligned(address, pageSize), length > 0, let rounded = SimMath.roundUp(length, pageSize),
            let end = SimMath.end(address, rounded), end <= SimMath.taskSizeMax
        else { throw .simulated(SimErrno.einval) }
        let range = address..<end
        // A hugetlb mapping can only be split at a huge page boundary.
        for mapping in mappings where mapping.range.overlaps(range) {
            guard let huge = mapping.hugePageSize else { continue }
            if (address > mapping.address && !SimMath.isAligned(address, huge))
                || (end < mapping.end && !SimMath.isAligned(end, huge))
            {
                throw .simulated(SimErrno.einval)
            }
        }
        var kept: [SimMapping] = []
        for mapping in mappings {
            guard mapping.range.overlaps(range) else {
                kept.append(mapping)
                continue
            }
            if mapping.address < address { kept.append(piece(of: mapping, mapping.address..<address)) }
            if end < mapping.end { kept.append(piece(of: mapping, end..<mapping.end)) }
        }
        mappings = kept
        collectGarbage()
    }

    private func piece(of mapping: SimMapping, _ range: Range<UInt64>) -> SimMapping {
        var piece = mapping
        piece.address = range.lowerBound
        piece.length = range.byteCount
        piece.fileOffset = mapping.fileOffset(of: range.lowerBound)
        if mapping.hugeReservedPages != nil, let huge = mapping.hugePageSize {
            piece.hugeReservedPages = piece.length / huge
        }
        let fileRange = piece.fileOffset..<piece.fileOffset + piece.length
        piece.privateCopied.remove(0..<fileRange.lowerBound)
        piece.privateCopied.remove(fileRange.upperBound..<UInt64.max)
        piece.privateContents.remove(0..<fileRange.lowerBound / pageSize)
        piece.privateContents.remove(fileRange.upperBound / pageSize..<UInt64.max)
        return piece
    }

    // MARK: - Walking the address space

    /// `[range)` cut into mapped pieces (with the mapping's index) and holes (nil), ascending.
    func segments(_ range: Range<UInt64>) -> [(mapping: Int?, range: Range<UInt64>)] {
        var result: [(mapping: Int?, range: Range<UInt64>)] = []
        var cursor = range.lowerBound
        for (index, mapping) in mappings.enumerated() where mapping.end > cursor {
            if mapping.address >= range.upperBound { break }
            if mapping.address > cursor { result.append((nil, cursor..<mapping.address)) }
            let end = min(mapping.end, range.upperBound)
            result.append((index, max(cursor, mapping.address)..<end))
            cursor = end
            if cursor >= range.upperBound { break }
        }
        if cursor < range.upperBound { result.append((nil, cursor..<range.upperBound)) }
        return result
    }

    func mappingIndex(containing address: UInt64) -> Int? {
        var low = 0, high = mappings.count
        while low < high {
            let mid = (low + high) / 2
            if mappings[mid].end <= address { low = mid + 1 } else { high = mid }
        }
        guard low < mappings.count, mappings[low].address <= address else { return nil }
        return low
    }

    /// The first file offset in `range` where a host access raises SIGBUS: past the page holding EOF (the
    /// fault checks page indexes, so the tail of the last partial page is accessible and reads zeros), or
    /// a private guest_memfd page.
    func firstFault(in file: SimFile, _ range: Range<UInt64>) -> UInt64? {
        let accessibleEnd = SimMath.roundUp(file.size, file.granule(pageSize: pageSize)) ?? file.size
        var first: UInt64? = range.upperBound > accessibleEnd ? max(range.lowerBound, accessibleEnd) : nil
        if let gmem = file.gmem, range.lowerBound < file.size {
            let inside = range.lowerBound..<min(range.upperBound, file.size)
            if let run = gmem.state.runs(in: inside).first(where: { $0.value == .private }) {
                first = min(first ?? .max, run.range.lowerBound)
            }
        }
        return first
    }

    // MARK: - madvise

    mutating func madvise(address: UInt64, length: UInt64, advice: Int32) throws(KernelError) {
        guard Self.validAdvice.contains(advice), SimMath.isAligned(address, pageSize) else {
            throw .simulated(SimErrno.einval)
        }
        guard let rounded = SimMath.roundUp(length, pageSize), let end = SimMath.end(address, rounded) else {
            throw .simulated(SimErrno.einval)
        }
        if end == address { return }
        let pieces = segments(address..<end)
        if advice == Self.madvPopulateRead || advice == KVMConstants.madvPopulateWrite {
            for piece in pieces {
                guard let index = piece.mapping else { throw .simulated(SimErrno.enomem) }
                try populate(mapping: index, piece.range, write: advice == KVMConstants.madvPopulateWrite)
            }
            return
        }
        for piece in pieces {
            guard let index = piece.mapping else { continue }
            switch advice {
            case KVMConstants.madvDontneed, Self.madvDontneedLocked: try dropPrivatePages(mapping: index, piece.range)
            case KVMConstants.madvRemove: try removeRange(mapping: index, piece.range)
            case Self.madvCollapse where files[mappings[index].file]?.gmem != nil: throw .simulated(SimErrno.einval)
            default: break
            }
        }
        if pieces.contains(where: { $0.mapping == nil }) { throw .simulated(SimErrno.enomem) }
    }

    /// MADV_DONTNEED: private anonymous pages and private copies are freed (read zeros / the file again);
    /// shared mappings only lose their page tables, the file keeps its pages. On hugetlb the start must be
    /// huge-aligned and the end is rounded up to a huge page.
    private mutating func dropPrivatePages(mapping index: Int, _ range: Range<UInt64>) throws(KernelError) {
        var mapping = mappings[index]
        var addresses = range
        if let huge = mapping.hugePageSize {
            guard SimMath.isAligned(range.lowerBound, huge) else { throw .simulated(SimErrno.einval) }
            addresses = range.lowerBound..<min(mapping.end, SimMath.roundUp(range.upperBound, huge) ?? mapping.end)
        }
        let fileStart = mapping.fileOffset(of: addresses.lowerBound)
        let fileRange = fileStart..<fileStart + addresses.byteCount
        let pages = fileRange.lowerBound / pageSize..<fileRange.upperBound / pageSize
        if mapping.copyOnWrite {
            mapping.privateCopied.remove(fileRange)
            mapping.privateContents.remove(pages)
            mappings[index] = mapping
        } else if var file = files[mapping.file], file.kind == .anonymous, !file.sharedAnonymous {
            file.allocated.remove(fileRange)
            file.uptodate?.remove(fileRange)
            file.contents.remove(pages)
            files[file.id] = file
        }
    }

    /// MADV_REMOVE: punches the backing file (`vfs_fallocate(PUNCH_HOLE|KEEP_SIZE)`); needs a shared,
    /// writable file mapping (private file mapping: EACCES; private anonymous memory has no file: EINVAL).
    private mutating func removeRange(mapping index: Int, _ range: Range<UInt64>) throws(KernelError) {
        let mapping = mappings[index]
        guard var file = files[mapping.file] else { return }
        if file.kind == .anonymous && !file.sharedAnonymous { throw .simulated(SimErrno.einval) }
        guard mapping.shared else { throw .simulated(SimErrno.eacces) }
        let start = mapping.fileOffset(of: range.lowerBound)
        punchHole(&file, start..<start + range.byteCount)
        files[file.id] = file
    }

    /// MADV_POPULATE_READ/WRITE: faults pages in, in order, up to the first page that would raise SIGBUS
    /// (then EFAULT); a write population breaks copy-on-write.
    private mutating func populate(mapping index: Int, _ range: Range<UInt64>, write: Bool) throws(KernelError) {
        var mapping = mappings[index]
        guard var file = files[mapping.file] else { throw .simulated(SimErrno.efault) }
        let start = mapping.fileOffset(of: range.lowerBound)
        let fileRange = start..<start + range.byteCount
        let fault = firstFault(in: file, fileRange)
        let good = fileRange.lowerBound..<(fault ?? fileRange.upperBound)
        if !good.isEmpty {
            touch(&file, good)
            if write && mapping.copyOnWrite {
                Self.copyPrivately(&mapping, from: file, good, pageSize: pageSize)
                mappings[index] = mapping
            }
            files[file.id] = file
        }
        if fault != nil { throw .simulated(SimErrno.efault) }
    }

    /// Makes private copies of `fileRange` for a `MAP_PRIVATE` file mapping (only stored pages are copied;
    /// the rest are private zero pages).
    static func copyPrivately(
        _ mapping: inout SimMapping, from file: SimFile, _ fileRange: Range<UInt64>, pageSize: UInt64
    ) {
        for gap in mapping.privateCopied.gaps(in: fileRange) {
            let gapPages = gap.lowerBound / pageSize..<(gap.upperBound + pageSize - 1) / pageSize
            for page in file.contents.storedIndices(in: gapPages) {
                if let data = file.contents.page(page) { mapping.privateContents.setPage(page, data) }
            }
        }
        mapping.privateCopied.assign(true, to: fileRange)
    }

    // MARK: - mincore

    func residentPages(address: UInt64, length: UInt64) throws(KernelError) -> UInt64 {
        guard SimMath.isAligned(address, pageSize) else { throw .simulated(SimErrno.einval) }
        guard let rounded = SimMath.roundUp(length, pageSize), let end = SimMath.end(address, rounded),
            end <= SimMath.taskSizeMax
        else { throw .simulated(SimErrno.enomem) }
        var resident: UInt64 = 0
        for piece in segments(address..<end) {
            guard let index = piece.mapping else { throw .simulated(SimErrno.enomem) }
            let mapping = mappings[index]
            guard let file = files[mapping.file] else { continue }
            let start = mapping.fileOffset(of: piece.range.lowerBound)
            let fileRange = start..<start + piece.range.byteCount
            var present = IntervalMap<Bool>()
            file.uptodate?.forEachRun(in: fileRange) { present.assign(true, to: $0.range) }
            if mapping.copyOnWrite {
                mapping.privateCopied.forEachRun(in: fileRange) { present.assign(true, to: $0.range) }
            }
            resident += SimMath.coveredBytes(present, in: fileRange) / pageSize
        }
        return resident
    }
}
