import GmemCore

/// The contents of the guest runner's scratch memory: a GDT, 4-level page tables that identity-map with
/// 2 MiB pages every 1 GiB region a probe touches, and the probe code. Pure bytes, no kernel calls.
///
/// Scratch layout (offsets from the scratch GPA):
///   0x0000 GDT (null, 64-bit code 0x08, data 0x10)   0x1000 PML4   0x2000 PDPT
///   0x3000 ..< 0x8000 code                            0x8000 ..< end  one page directory per 1 GiB region
///
/// Page tables only ever grow: an entry, once present, never changes. That matters on shadow-paging hosts
/// (PVM), where KVM caches shadows of guest page tables and does not see host-side writes to them; adding
/// entries that were not present is safe (the guest faults, KVM walks the tables again), changing them is not.
struct GuestLongModeImage {
    static let gdtOffset: UInt64 = 0x0000
    static let pml4Offset: UInt64 = 0x1000
    static let pdptOffset: UInt64 = 0x2000
    static let codeOffset: UInt64 = 0x3000
    static let codeCapacity: UInt64 = 0x5000
    static let pageDirectoryPoolOffset: UInt64 = 0x8000
    static let minimumScratchSize: UInt64 = pageDirectoryPoolOffset + 0x1000
    /// One PML4 entry (one PDPT) is used, so targets must lie below 512 GiB.
    static let reachLimit: UInt64 = 512 << 30

    static let codeSelector: UInt16 = 0x08
    static let dataSelector: UInt16 = 0x10
    /// Port the guest reports each byte it read on (`out 0x10, al`).
    static let reportPort: UInt16 = 0x10

    /// A write into scratch memory: offset from the scratch GPA, and the bytes.
    struct Patch: Equatable {
        var offset: UInt64
        var bytes: [UInt8]
    }

    let scratchGPA: UInt64
    let scratchSize: UInt64
    /// Page-directory offset (inside scratch) for each 1 GiB region index already mapped.
    private(set) var pageDirectories: [UInt64: UInt64] = [:]

    init(scratchGPA: UInt64, scratchSize: UInt64) {
        self.scratchGPA = scratchGPA
        self.scratchSize = scratchSize
    }

    var pageDirectoryCapacity: Int { Int((scratchSize - Self.pageDirectoryPoolOffset) / 0x1000) }
    var codeGPA: UInt64 { scratchGPA + Self.codeOffset }
    var pml4GPA: UInt64 { scratchGPA + Self.pml4Offset }
    var gdtGPA: UInt64 { scratchGPA + Self.gdtOffset }

    /// GDT and the PML4 entry: written once, before any page directory.
    func basePatches() -> [Patch] {
        let nullDescriptor: UInt64 = 0
        let code64: UInt64 = 0x00AF_9A00_0000_FFFF  // P, DPL 0, S, execute/read, L = 1, G
        let data: UInt64 = 0x00CF_9200_0000_FFFF  // P, DPL 0, S, read/write, D/B = 1, G
        let presentWritable: UInt64 = 0x3
        return [
            Patch(offset: Self.gdtOffset, bytes: littleEndian([nullDescriptor, code64, data])),
            Patch(offset: Self.pml4Offset, bytes: littleEndian([(scratchGPA + Self.pdptOffset) | presentWritable])),
        ]
    }

    /// Adds page directories for regions not yet mapped; returns the patches that do it (PD page first,
    /// then the PDPT entry that makes it reachable). Fails when the pool is exhausted.
    mutating func mapRegions(containing addresses: [UInt64]) -> (patches: [Patch], missingCapacity: Bool) {
        var patches: [Patch] = []
        let regions = Set(addresses.map { $0 >> 30 }).sorted()
        for region in regions where pageDirectories[region] == nil {
            guard pageDirectories.count < pageDirectoryCapacity else { return (patches, true) }
            let directoryOffset = Self.pageDirectoryPoolOffset + UInt64(pageDirectories.count) * 0x1000
            let largePresentWritable: UInt64 = 0x83  // P | RW | PS (2 MiB)
            let entries = (0..<UInt64(512)).map { ((region << 30) | ($0 << 21)) | largePresentWritable }
            patches.append(Patch(offset: directoryOffset, bytes: littleEndian(entries)))
            patches.append(
                Patch(
                    offset: Self.pdptOffset + region * 8,
                    bytes: littleEndian([(scratchGPA + directoryOffset) | 0x3])))
            pageDirectories[region] = directoryOffset
        }
        return (patches, false)
    }

    /// Code: for each target `mov rbx, gpa; mov al, [rbx]; out 0x10, al; [mov byte [rbx], marker]`, then `hlt`.
    static func code(for targets: [GuestProbeTarget]) -> [UInt8] {
        var code: [UInt8] = []
        for target in targets {
            code += [0x48, 0xBB] + littleEndian([target.gpa])  // mov rbx, imm64
            code += [0x8A, 0x03]  // mov al, [rbx]
            code += [0xE6, UInt8(reportPort)]  // out imm8, al
            if let marker = target.writeMarker {
                code += [0xC6, 0x03, marker]  // mov byte [rbx], imm8
            }
        }
        code.append(0xF4)  // hlt
        return code
    }

    private func littleEndian(_ words: [UInt64]) -> [UInt8] { Self.littleEndian(words) }

    private static func littleEndian(_ words: [UInt64]) -> [UInt8] {
        words.flatMap { word in (0..<8).map { UInt8(truncatingIfNeeded: word >> ($0 * 8)) } }
    }
}

/// One guest access of `GuestRunner.probe`: read the byte at `gpa`, then write `writeMarker` there (if set).
public struct GuestProbeTarget: Sendable, Hashable {
    public var gpa: UInt64
    public var writeMarker: UInt8?

    public init(gpa: UInt64, writeMarker: UInt8? = nil) {
        self.gpa = gpa
        self.writeMarker = writeMarker
    }
}
