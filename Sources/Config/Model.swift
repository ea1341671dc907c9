/// The manifest model (`apiVersion: gmemctl/v1`, `kind: GuestMemory`). Plain values: the loader fills
/// them from YAML and records where each field came from in `sourceMap`, so that later checks (for
/// example against a kernel profile in Engine) can point at the exact line and column.

public enum VMType: String, Sendable, Hashable, Codable, CaseIterable {
    case `default` = "default"
    case swProtected = "sw-protected"
    case sevSnp = "sev-snp"
    case tdx = "tdx"

    /// Whether guests of this type can have private memory at all (a `default` VM never can).
    public var hasPrivateMemory: Bool { self != .default }
}

public enum MemoryState: String, Sendable, Hashable, Codable, CaseIterable {
    case `private` = "private"
    case shared = "shared"

    public var opposite: MemoryState { self == .private ? .shared : .private }
}

public enum BackendType: String, Sendable, Hashable, Codable, CaseIterable {
    /// guest_memfd (private) plus a separate shared backing.
    case legacy = "legacy"
    /// One mmap-able guest_memfd serving both states.
    case inPlace = "in-place"
    /// In-place when the host can convert in place, else legacy.
    case auto = "auto"
}

public enum SharedSource: String, Sendable, Hashable, Codable, CaseIterable {
    case anonymous = "anonymous"
    case memfd = "memfd"
    case hugetlb = "hugetlb"
}

/// The shared backing of a legacy block.
public struct SharedBacking: Sendable, Hashable, Codable {
    public var source: SharedSource
    /// Page size of a hugetlb backing (e.g. 2 MiB, 1 GiB); nil for other sources.
    public var pageSize: UInt64?
    /// Populate the backing up front.
    public var prealloc: Bool

    public init(source: SharedSource = .anonymous, pageSize: UInt64? = nil, prealloc: Bool = false) {
        self.source = source
        self.pageSize = pageSize
        self.prealloc = prealloc
    }
}

public struct Backend: Sendable, Hashable, Codable {
    public var type: BackendType
    /// Shared backing used when the block is (or resolves to) legacy; defaults to anonymous memory.
    public var shared: SharedBacking

    public init(type: BackendType, shared: SharedBacking = SharedBacking()) {
        self.type = type
        self.shared = shared
    }
}

public struct Block: Sendable, Hashable, Codable {
    public var name: String
    public var size: UInt64
    public var backend: Backend

    public init(name: String, size: UInt64, backend: Backend) {
        self.name = name
        self.size = size
        self.backend = backend
    }
}

/// A window `[offset, offset+size)` of a block placed at guest physical address `gpa` (a memslot).
public struct Mapping: Sendable, Hashable, Codable {
    public var block: String
    public var offset: UInt64
    public var size: UInt64
    public var gpa: UInt64

    public init(block: String, offset: UInt64, size: UInt64, gpa: UInt64) {
        self.block = block
        self.offset = offset
        self.size = size
        self.gpa = gpa
    }

    /// `[gpa, gpa+size)`; a range that would run past 2^64 (a validation error) is cut at UInt64.max rather
    /// than trapping, so every check can still look at it.
    public var gpaRange: Range<UInt64> { saturatingRange(gpa, size) }
    public var offsetRange: Range<UInt64> { saturatingRange(offset, size) }
}

/// A guest-physical range `[gpa, gpa+size)`.
public struct GuestRange: Sendable, Hashable, Codable {
    public var gpa: UInt64
    public var size: UInt64

    public init(gpa: UInt64, size: UInt64) {
        self.gpa = gpa
        self.size = size
    }

    /// `[gpa, gpa+size)`, cut at UInt64.max when it would run past 2^64 (validation reports that).
    public var range: Range<UInt64> { saturatingRange(gpa, size) }
}

public struct LayoutSpec: Sendable, Hashable, Codable {
    public var defaultState: MemoryState
    public var shared: [GuestRange]
    public var `private`: [GuestRange]

    public init(defaultState: MemoryState = .private, shared: [GuestRange] = [], private: [GuestRange] = []) {
        self.defaultState = defaultState
        self.shared = shared
        self.private = `private`
    }
}

public struct Listener: Sendable, Hashable, Codable {
    public var name: String
    public init(name: String) { self.name = name }
}

public struct Metadata: Sendable, Hashable, Codable {
    public var name: String
    public init(name: String) { self.name = name }
}

public struct VMSpec: Sendable, Hashable, Codable {
    public var type: VMType
    public init(type: VMType = .default) { self.type = type }
}

public struct Spec: Sendable, Hashable, Codable {
    public var vm: VMSpec
    public var blocks: [Block]
    public var mappings: [Mapping]
    public var layout: LayoutSpec
    public var listeners: [Listener]

    public init(
        vm: VMSpec = VMSpec(), blocks: [Block] = [], mappings: [Mapping] = [],
        layout: LayoutSpec = LayoutSpec(), listeners: [Listener] = []
    ) {
        self.vm = vm
        self.blocks = blocks
        self.mappings = mappings
        self.layout = layout
        self.listeners = listeners
    }
}

/// Where each field of a manifest came from, by field path (`spec.blocks[0].backend.type`).
///
/// A loaded manifest keeps its YAML tree and finds a path's node by walking it, only when a diagnostic
/// asks: building a path string and a dictionary entry for every node cost a quarter of loading 100,000
/// layout ranges, for positions that are almost never printed. Manifests made in memory or decoded use
/// a table.
public struct SourceMap: Sendable, Hashable, Codable {
    public var file: String
    private var storage: Storage

    private enum Storage: Sendable {
        case table([String: SourceRange])
        /// The document and, for its few large mappings (hostile input), by mapping path, where each schema
        /// key's first pair is (-1: absent), so that the validator's lookups never scan a long mapping.
        case tree(YAMLNode, keyIndex: [String: [String: Int]])
    }

    public init(file: String, ranges: [String: SourceRange] = [:]) {
        self.file = file
        self.storage = .table(ranges)
    }

    init(file: String, root: YAMLNode, keyIndex: [String: [String: Int]]) {
        self.file = file
        self.storage = .tree(root, keyIndex: keyIndex)
    }

    /// Mappings with more pairs than this get a key index when loaded; smaller ones are scanned.
    static let indexedMappingSize = 16

    /// Every path's range. Built on each call for a loaded manifest (every string-keyed node, the first
    /// of duplicate keys); for tests and encoding, not for hot paths.
    public var ranges: [String: SourceRange] {
        get {
            switch storage {
            case .table(let ranges): return ranges
            case .tree(let root, _):
                var ranges: [String: SourceRange] = [:]
                Self.collect(root, path: "", file: file, into: &ranges)
                return ranges
            }
        }
        set { storage = .table(newValue) }
    }

    /// The range recorded for exactly `path`, if any.
    public func recorded(_ path: String) -> SourceRange? {
        switch storage {
        case .table(let ranges): return ranges[path]
        case .tree(let root, let keyIndex):
            let (node, complete) = Self.walk(root, to: path, keyIndex: keyIndex)
            return complete ? node.range(in: file) : nil
        }
    }

    /// The range of `path`, else of its nearest recorded ancestor (`a.b[2].c` -> `a.b[2]` -> `a.b` -> `a`).
    public func range(for path: String) -> SourceRange? {
        switch storage {
        case .table(let ranges):
            var current = path
            while !current.isEmpty {
                if let found = ranges[current] { return found }
                guard let cut = current.lastIndex(where: { $0 == "." || $0 == "[" }) else { break }
                current = String(current[..<cut])
            }
            return ranges[""]
        case .tree(let root, let keyIndex):
            // The deepest node on the path is the nearest recorded ancestor.
            return Self.walk(root, to: path, keyIndex: keyIndex).node.range(in: file)
        }
    }

    /// The node at `path` or the deepest one on the way to it, and whether the whole path was found.
    private static func walk(
        _ root: YAMLNode, to path: String,
        keyIndex: [String: [String: Int]]
    ) -> (node: YAMLNode, complete: Bool) {
        var node = root
        // `path[..<named]` is the path of `node`; components are `key` (after `.` or at the start) or `[n]`.
        var named = path.startIndex
        while named < path.endIndex {
            if path[named] == "[" {
                let digits = path.index(after: named)
                guard let close = path[digits...].firstIndex(of: "]"), let item = Int(path[digits..<close]),
                    case .sequence(let items) = node.content, items.indices.contains(item)
                else { return (node, false) }
                node = items[item]
                named = path.index(after: close)
            } else {
                let start = path[named] == "." ? path.index(after: named) : named
                let end = path[start...].firstIndex { $0 == "." || $0 == "[" } ?? path.endIndex
                let key = path[start..<end]
                guard case .mapping(let pairs) = node.content else { return (node, false) }
                // A large mapping's index has its schema keys (-1: absent); other keys are searched for.
                var found = pairs.count > indexedMappingSize ? keyIndex[String(path[..<named])]?[String(key)] : nil
                if found == nil { found = pairs.firstIndex { $0.key.scalar.map { $0.value == key } ?? false } }
                guard let found, found >= 0 else { return (node, false) }
                node = pairs[found].value
                named = end
            }
        }
        return (node, true)
    }

    private static func collect(_ node: YAMLNode, path: String, file: String, into ranges: inout [String: SourceRange])
    {
        ranges[path] = node.range(in: file)
        switch node.content {
        case .scalar: break
        case .sequence(let items):
            for (index, item) in items.enumerated() {
                collect(item, path: "\(path)[\(index)]", file: file, into: &ranges)
            }
        case .mapping(let pairs):
            for pair in pairs {
                guard let key = pair.key.scalar?.value else { continue }
                let child = path.isEmpty ? key : "\(path).\(key)"
                if ranges[child] == nil { collect(pair.value, path: child, file: file, into: &ranges) }
            }
        }
    }

    // Equal when they locate the same paths; a tree is compared by its document, and hashed by its extent.
    public static func == (a: SourceMap, b: SourceMap) -> Bool {
        guard a.file == b.file else { return false }
        if case .tree(let x, _) = a.storage, case .tree(let y, _) = b.storage, x == y { return true }
        return a.ranges == b.ranges
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(file)
    }

    private enum CodingKeys: String, CodingKey { case file, ranges }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            file: try container.decode(String.self, forKey: .file),
            ranges: try container.decode([String: SourceRange].self, forKey: .ranges))
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(file, forKey: .file)
        try container.encode(ranges, forKey: .ranges)
    }
}

public struct Manifest: Sendable, Hashable, Codable {
    public static let apiVersion = "gmemctl/v1"
    public static let kind = "GuestMemory"
    /// Where guest-physical memory ends at the latest: 2^57, the widest guest KVM has (5-level paging, 57
    /// address bits). Block sizes, mapping ends and layout range ends are refused past it, so every length
    /// gmemctl computes stays far below 2^63 (and fits an `Int`).
    public static let guestAddressLimit: UInt64 = 1 << 57
    public static let guestAddressLimitName = "128 PiB (2^57)"

    public var metadata: Metadata
    public var spec: Spec
    public var sourceMap: SourceMap

    public init(metadata: Metadata, spec: Spec, sourceMap: SourceMap = SourceMap(file: "<memory>")) {
        self.metadata = metadata
        self.spec = spec
        self.sourceMap = sourceMap
    }

    public func block(named name: String) -> Block? { spec.blocks.first { $0.name == name } }

    /// A diagnostic located at `path` in this manifest's source.
    public func diagnostic(
        _ severity: Severity = .error, at path: String, summary: String, detail: String = ""
    ) -> Diagnostic {
        Diagnostic(severity, summary: summary, detail: detail, path: path, range: sourceMap.range(for: path))
    }
}

/// `start..<start+size`, or `start..<UInt64.max` when the sum overflows.
func saturatingRange(_ start: UInt64, _ size: UInt64) -> Range<UInt64> {
    let (end, overflow) = start.addingReportingOverflow(size)
    return start..<(overflow ? UInt64.max : end)
}
