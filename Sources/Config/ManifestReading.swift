/// From the YAML node tree to the `Manifest` model: the schema of v1, field by field.
extension NodeReader {
    /// The manifest, or nil when the document is not a mapping at all. Fields that fail their schema
    /// check keep a neutral value (0, defaults) and are marked tainted for the semantic checks.
    mutating func manifest(_ root: YAMLNode) -> Manifest? {
        guard
            let top = fields(
                root, path: "", known: ManifestKeys.root, required: ManifestKeys.requiredRoot, what: "a manifest")
        else {
            return nil
        }
        if let node = top["apiVersion"], let value = string(node, path: "apiVersion", what: "apiVersion"),
            value != Manifest.apiVersion
        {
            error(
                "unsupported apiVersion `\(value)`", detail: "this gmemctl reads apiVersion: \(Manifest.apiVersion)",
                path: "apiVersion", node: node, taint: false)
        }
        if let node = top["kind"], let value = string(node, path: "kind", what: "kind"), value != Manifest.kind {
            error(
                "unsupported kind `\(value)`", detail: "a manifest has kind: \(Manifest.kind)", path: "kind",
                node: node, taint: false)
        }
        var metadata = Metadata(name: "")
        if let node = top["metadata"],
            let meta = fields(
                node, path: "metadata", known: ManifestKeys.metadata, required: ManifestKeys.requiredMetadata,
                what: "metadata"),
            let nameNode = meta["name"], let name = string(nameNode, path: "metadata.name", what: "metadata.name")
        {
            metadata.name = name
        }
        var spec = Spec()
        if let node = top["spec"] {
            spec = readSpec(node)
        }
        return Manifest(metadata: metadata, spec: spec, sourceMap: sourceMap(root))
    }

    private mutating func readSpec(_ node: YAMLNode) -> Spec {
        var spec = Spec()
        guard
            let fields = fields(
                node, path: "spec", known: ManifestKeys.spec, required: ManifestKeys.requiredSpec, what: "spec")
        else {
            return spec
        }
        if let vmNode = fields["vm"],
            let vm = self.fields(vmNode, path: "spec.vm", known: ManifestKeys.vm, required: [], what: "spec.vm"),
            let typeNode = vm["type"],
            let type = choice(typeNode, path: "spec.vm.type", what: "VM type", as: VMType.self)
        {
            spec.vm.type = type
        }
        if let list = fields["blocks"], let items = sequence(list, path: "spec.blocks", what: "spec.blocks") {
            spec.blocks = items.enumerated().map { readBlock($1, path: "spec.blocks[\($0)]") }
        }
        if let list = fields["mappings"], let items = sequence(list, path: "spec.mappings", what: "spec.mappings") {
            spec.mappings = items.enumerated().map { readMapping($1, path: "spec.mappings[\($0)]") }
        }
        // Without an explicit default, a VM that can have private memory starts private (the
        // confidential-computing norm) and a `default` VM, which never can, starts shared.
        spec.layout.defaultState = spec.vm.type.hasPrivateMemory ? .private : .shared
        if let node = fields["layout"] {
            readLayout(node, into: &spec.layout)
        }
        if let list = fields["listeners"], let items = sequence(list, path: "spec.listeners", what: "spec.listeners") {
            spec.listeners = items.enumerated().map { index, item in
                let path = "spec.listeners[\(index)]"
                guard
                    let listener = self.fields(
                        item, path: path, known: ManifestKeys.listener, required: ManifestKeys.requiredListener,
                        what: "a listener"),
                    let nameNode = listener["name"],
                    let name = string(nameNode, path: "\(path).name", what: "listener name")
                else {
                    return Listener(name: "")
                }
                return Listener(name: name)
            }
        }
        return spec
    }

    private mutating func readBlock(_ node: YAMLNode, path: @autoclosure () -> String) -> Block {
        var block = Block(name: "", size: 0, backend: Backend(type: .auto))
        guard
            let fields = fields(
                node, path: path(), known: ManifestKeys.block, required: ManifestKeys.requiredBlock, what: "a block")
        else {
            return block
        }
        if let value = fields["name"], let name = string(value, path: "\(path()).name", what: "block name") {
            block.name = name
        }
        if let value = fields["size"], let size = size(value, path: "\(path()).size", what: "block size") {
            block.size = size
        }
        if let value = fields["backend"] { block.backend = readBackend(value, path: "\(path()).backend") }
        return block
    }

    private mutating func readBackend(_ node: YAMLNode, path: @autoclosure () -> String) -> Backend {
        var backend = Backend(type: .auto)
        guard
            let fields = fields(
                node, path: path(), known: ManifestKeys.backend, required: ManifestKeys.requiredBackend,
                what: "a backend")
        else {
            return backend
        }
        if let value = fields["type"],
            let type = choice(value, path: "\(path()).type", what: "backend type", as: BackendType.self)
        {
            backend.type = type
        }
        if let value = fields["shared"],
            let shared = self.fields(
                value, path: "\(path()).shared", known: ManifestKeys.shared, required: ManifestKeys.requiredShared,
                what: "a shared backing")
        {
            if let node = shared["source"],
                let source = choice(node, path: "\(path()).shared.source", what: "shared source", as: SharedSource.self)
            {
                backend.shared.source = source
            }
            if let node = shared["pageSize"],
                let size = size(node, path: "\(path()).shared.pageSize", what: "page size")
            {
                backend.shared.pageSize = size
            }
            if let node = shared["prealloc"],
                let prealloc = bool(node, path: "\(path()).shared.prealloc", what: "prealloc")
            {
                backend.shared.prealloc = prealloc
            }
        }
        return backend
    }

    private mutating func readMapping(_ node: YAMLNode, path: @autoclosure () -> String) -> Mapping {
        var mapping = Mapping(block: "", offset: 0, size: 0, gpa: 0)
        guard
            let fields = fields(
                node, path: path(), known: ManifestKeys.mapping, required: ManifestKeys.requiredMapping,
                what: "a mapping")
        else {
            return mapping
        }
        if let value = fields["block"], let name = string(value, path: "\(path()).block", what: "block reference") {
            mapping.block = name
        }
        if let value = fields["offset"], let offset = size(value, path: "\(path()).offset", what: "offset") {
            mapping.offset = offset
        }
        if let value = fields["size"], let size = size(value, path: "\(path()).size", what: "mapping size") {
            mapping.size = size
        }
        if let value = fields["gpa"], let gpa = size(value, path: "\(path()).gpa", what: "guest physical address") {
            mapping.gpa = gpa
        }
        return mapping
    }

    private mutating func readLayout(_ node: YAMLNode, into layout: inout LayoutSpec) {
        guard
            let fields = fields(
                node, path: "spec.layout", known: ManifestKeys.layout, required: [], what: "spec.layout")
        else { return }
        if let value = fields["default"],
            let state = choice(value, path: "spec.layout.default", what: "default state", as: MemoryState.self)
        {
            layout.defaultState = state
        }
        if let list = fields["shared"],
            let items = sequence(list, path: "spec.layout.shared", what: "spec.layout.shared")
        {
            layout.shared = items.enumerated().map { readRange($1, path: "spec.layout.shared[\($0)]") }
        }
        if let list = fields["private"],
            let items = sequence(list, path: "spec.layout.private", what: "spec.layout.private")
        {
            layout.private = items.enumerated().map { readRange($1, path: "spec.layout.private[\($0)]") }
        }
    }

    /// `{gpa, size}` or `"START-END"` (inclusive end).
    private mutating func readRange(_ node: YAMLNode, path: @autoclosure () -> String) -> GuestRange {
        if let scalar = node.scalar, !scalar.isNull {
            do {
                return try parseRange(scalar.value)
            } catch {
                self.error("invalid range: \(error.summary)", detail: error.detail, path: path(), node: node)
                return GuestRange(gpa: 0, size: 0)
            }
        }
        guard
            let fields = fields(
                node, path: path(), known: ManifestKeys.range, required: ManifestKeys.requiredRange,
                what: "a layout range")
        else {
            return GuestRange(gpa: 0, size: 0)
        }
        var range = GuestRange(gpa: 0, size: 0)
        if let value = fields["gpa"], let gpa = size(value, path: "\(path()).gpa", what: "guest physical address") {
            range.gpa = gpa
        }
        if let value = fields["size"], let size = size(value, path: "\(path()).size", what: "range size") {
            range.size = size
        }
        return range
    }
}
