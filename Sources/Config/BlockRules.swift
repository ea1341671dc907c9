/// Rules of `spec.blocks` and `spec.listeners`: sizes, backings, unique names, unmapped blocks.
extension ManifestValidator {
    mutating func checkBlocks() {
        var firstByName: [String: String] = [:]
        let mappedBlocks = Set(spec.mappings.map(\.block))
        for (index, block) in spec.blocks.enumerated() {
            let path = "spec.blocks[\(index)]"
            if !isTainted("\(path).name") && !block.name.isEmpty {
                if let first = firstByName[block.name] {
                    error(
                        "\(path).name", "duplicate block name `\(block.name)`",
                        "already used by \(whereIs(first)); block names must be unique")
                } else {
                    firstByName[block.name] = path
                }
            }
            guard !isTainted(path) else { continue }
            if block.size == 0 {
                error(
                    "\(path).size", "block `\(block.name)` has size 0",
                    "a block needs at least one page (\(formatSize(pageSize)))")
            } else if block.size > Manifest.guestAddressLimit {
                error(
                    "\(path).size", "block `\(block.name)` is larger than \(Manifest.guestAddressLimitName)",
                    "a block is at most \(formatHex(Manifest.guestAddressLimit)) bytes, the widest guest-physical address space"
                )
            } else {
                checkAligned(block.size, to: pageSize, at: "\(path).size", what: "block size", unitName: pageSizeName)
            }
            checkBacking(block, path: path)
            if !isTainted("spec.mappings") && !mappedBlocks.contains(block.name) {
                warning(
                    "\(path).name", "block `\(block.name)` is not mapped",
                    "no mapping places it in the guest; add a mapping with `block: \(block.name)` or remove the block")
            }
        }
    }

    private mutating func checkBacking(_ block: Block, path: String) {
        let sharedPath = "\(path).backend.shared"
        let shared = block.backend.shared
        if block.backend.type == .inPlace {
            if manifest.sourceMap.recorded(sharedPath) != nil || shared != SharedBacking() {
                warning(
                    sharedPath, "`shared` settings are ignored for an in-place block",
                    "an in-place block serves shared memory from its guest_memfd; remove `shared`, or use backend type legacy or auto"
                )
            }
            return
        }
        if shared.source != .hugetlb {
            if shared.pageSize != nil {
                warning(
                    "\(sharedPath).pageSize",
                    "pageSize applies only to hugetlb backings; ignored for source `\(shared.source.rawValue)`",
                    "remove pageSize, or use source: hugetlb")
            }
            return
        }
        guard let hugePage = hugePageSize(of: block, path: path, reporting: true) else { return }
        if block.size > 0 {
            checkAligned(
                block.size, to: hugePage, at: "\(path).size", what: "block size",
                unitName: "the \(formatSize(hugePage)) hugetlb page size")
        }
    }

    /// The usable hugetlb page size of a block, reporting (once, from the block check) why it is not.
    mutating func hugePageSize(of block: Block, path: String, reporting: Bool) -> UInt64? {
        guard block.backend.type != .inPlace, block.backend.shared.source == .hugetlb,
            !isTainted("\(path).backend")
        else { return nil }
        guard let size = block.backend.shared.pageSize else {
            if reporting {
                error(
                    "\(path).backend.shared", "hugetlb backing of block `\(block.name)` needs a pageSize",
                    "add `pageSize: 2MiB` or `pageSize: 1GiB` (a size the host's hugetlbfs offers)")
            }
            return nil
        }
        guard size.nonzeroBitCount == 1, size >= pageSize else {
            if reporting {
                error(
                    "\(path).backend.shared.pageSize",
                    "hugetlb page size \(formatHex(size)) is not a power of two of at least \(formatSize(pageSize))",
                    "x86 hugetlb page sizes are 2MiB and 1GiB")
            }
            return nil
        }
        return size
    }

    mutating func checkListeners() {
        var firstByName: [String: String] = [:]
        for (index, listener) in spec.listeners.enumerated() where !isTainted("spec.listeners[\(index)]") {
            let path = "spec.listeners[\(index)]"
            if let first = firstByName[listener.name] {
                error(
                    "\(path).name", "duplicate listener name `\(listener.name)`",
                    "already used by \(whereIs(first)); listener names must be unique")
            } else {
                firstByName[listener.name] = path
            }
        }
    }
}
