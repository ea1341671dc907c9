import GmemCore

/// Host loads and stores through the simulated address space, with the fault rules of docs/kernels.md:
/// nothing mapped -> EFAULT; past EOF of the file -> SIGBUS; a private guest_memfd page -> SIGBUS (6.18: a
/// gmem without INIT_SHARED is all private; in-place ABIs: its per-page state). The first touch of a page
/// faults it in (allocates it) and reads zeros. Like a `memcpy`, an access stops at the first faulting page:
/// pages before it have been read or written.
extension SimulatedKernelState {
    mutating func read(address: UInt64, count: Int) throws(KernelError) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(max(0, count))
        let pageSize = pageSize
        try access(address: address, count: count) {
            (mapping: inout SimMapping, file: inout SimFile, offset: UInt64, range: Range<Int>) in
            bytes += Self.readChunk(mapping, file, offset: offset, count: range.count, pageSize: pageSize)
        }
        return bytes
    }

    mutating func write(address: UInt64, bytes: [UInt8]) throws(KernelError) {
        let pageSize = pageSize
        try access(address: address, count: bytes.count) {
            (mapping: inout SimMapping, file: inout SimFile, offset: UInt64, range: Range<Int>) in
            Self.writeChunk(&mapping, &file, offset: offset, bytes: bytes[range], pageSize: pageSize)
        }
    }

    /// Walks `[address, address + count)` page by page, faulting each page in, and hands each chunk (never
    /// crossing a page) to `body` with its file offset and its position in the caller's buffer.
    private mutating func access(
        address: UInt64, count: Int,
        _ body: (inout SimMapping, inout SimFile, UInt64, Range<Int>) -> Void
    ) throws(KernelError) {
        guard count > 0 else { return }
        guard let end = SimMath.end(address, UInt64(count)) else { throw .simulated(SimErrno.efault) }
        var cursor = address
        while cursor < end {
            guard let index = mappingIndex(containing: cursor), var file = files[mappings[index].file] else {
                throw .simulated(SimErrno.efault)
            }
            var mapping = mappings[index]
            let chunkEnd = min(end, (cursor / pageSize + 1) * pageSize, mapping.end)
            let offset = mapping.fileOffset(of: cursor)
            if firstFault(in: file, offset..<offset + 1) != nil { throw .simulatedSigbus }
            touch(&file, offset..<offset + 1)
            body(&mapping, &file, offset, Int(cursor - address)..<Int(chunkEnd - address))
            mappings[index] = mapping
            files[file.id] = file
            cursor = chunkEnd
        }
    }

    private static func readChunk(
        _ mapping: SimMapping, _ file: SimFile, offset: UInt64, count: Int, pageSize: UInt64
    ) -> [UInt8] {
        let page = offset / pageSize
        let inPage = Int(offset % pageSize)
        if mapping.copyOnWrite && mapping.privateCopied.value(at: offset) == true {
            return mapping.privateContents.read(page: page, offset: inPage, count: count)
        }
        return file.contents.read(page: page, offset: inPage, count: count)
    }

    private static func writeChunk(
        _ mapping: inout SimMapping, _ file: inout SimFile, offset: UInt64, bytes: ArraySlice<UInt8>,
        pageSize: UInt64
    ) {
        let page = offset / pageSize
        let inPage = Int(offset % pageSize)
        if mapping.copyOnWrite {
            if mapping.privateCopied.value(at: offset) != true {
                copyPrivately(&mapping, from: file, page * pageSize..<(page + 1) * pageSize, pageSize: pageSize)
            }
            mapping.privateContents.write(page: page, pageSize: pageSize, offset: inPage, bytes: bytes)
        } else {
            file.contents.write(page: page, pageSize: pageSize, offset: inPage, bytes: bytes)
        }
    }
}
