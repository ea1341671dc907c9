/// A JSON value, enough to write a JSON Schema with an `Encodable` encoder.
public indirect enum JSONValue: Sendable, Hashable, Encodable {
    case string(String)
    case bool(Bool)
    case int(Int)
    case array([JSONValue])
    case object([String: JSONValue])

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .string(let value): try container.encode(value)
        case .bool(let value): try container.encode(value)
        case .int(let value): try container.encode(value)
        case .array(let value): try container.encode(value)
        case .object(let value): try container.encode(value)
        }
    }
}

/// The JSON Schema (draft 2020-12) of a v1 manifest, for editors. Built from the same key lists and
/// enums as the loader, and the same size patterns as `parseSize`, so it cannot drift from them.
/// Semantic rules (alignment, overlaps) are beyond a schema; `gmemctl validate` checks those.
public enum ManifestSchema {
    public static var document: JSONValue {
        let root = object(
            ManifestKeys.root, required: ManifestKeys.requiredRoot,
            properties: [
                "apiVersion": .object(["const": .string(Manifest.apiVersion)]),
                "kind": .object(["const": .string(Manifest.kind)]),
                "metadata": object(
                    ManifestKeys.metadata, required: ManifestKeys.requiredMetadata, properties: ["name": nonEmptyString]
                ),
                "spec": spec,
            ])
        guard case .object(var fields) = root else { return root }
        fields["$schema"] = .string("https://json-schema.org/draft/2020-12/schema")
        fields["$id"] = .string("https://gmemctl.dev/schema/gmemctl-v1.json")
        fields["title"] = .string("gmemctl GuestMemory manifest")
        fields["description"] = .string(
            "The guest memory of one VM: blocks, their mappings into guest physical memory, and the private/shared layout."
        )
        fields["$defs"] = .object(["size": size, "range": range])
        return .object(fields)
    }

    static var spec: JSONValue {
        object(
            ManifestKeys.spec, required: ManifestKeys.requiredSpec,
            properties: [
                "vm": object(
                    ManifestKeys.vm, required: [],
                    properties: [
                        "type": choice(VMType.self, "default: the kernel's plain VM type (shared memory only)")
                    ]),
                "blocks": list(
                    object(
                        ManifestKeys.block, required: ManifestKeys.requiredBlock,
                        properties: [
                            "name": nonEmptyString,
                            "size": ref("size"),
                            "backend": object(
                                ManifestKeys.backend, required: ManifestKeys.requiredBackend,
                                properties: [
                                    "type": choice(
                                        BackendType.self,
                                        "legacy: guest_memfd + separate shared backing; in-place: one mmap-able guest_memfd; auto: in-place when the host can"
                                    ),
                                    "shared": object(
                                        ManifestKeys.shared, required: ManifestKeys.requiredShared,
                                        properties: [
                                            "source": choice(SharedSource.self, "the shared backing of a legacy block"),
                                            "pageSize": ref("size"),
                                            "prealloc": .object(["type": .string("boolean"), "default": .bool(false)]),
                                        ]),
                                ]),
                        ])),
                "mappings": list(
                    object(
                        ManifestKeys.mapping, required: ManifestKeys.requiredMapping,
                        properties: [
                            "block": nonEmptyString,
                            "offset": ref("size"),
                            "size": ref("size"),
                            "gpa": ref("size"),
                        ])),
                "layout": object(
                    ManifestKeys.layout, required: [],
                    properties: [
                        "default": choice(
                            MemoryState.self, "default private for VMs with private memory, shared for vm.type default"),
                        "shared": list(ref("range")),
                        "private": list(ref("range")),
                    ]),
                "listeners": list(
                    object(
                        ManifestKeys.listener, required: ManifestKeys.requiredListener,
                        properties: ["name": nonEmptyString])),
            ])
    }

    static var size: JSONValue {
        .object([
            "description": .string(
                "bytes: an integer, hex (0x1000) or a binary unit (2MiB, 1 GiB; B, KiB, MiB, GiB, TiB)"),
            "oneOf": .array([
                .object(["type": .string("integer"), "minimum": .int(0)]),
                .object(["type": .string("string"), "pattern": .string(sizePattern)]),
            ]),
        ])
    }

    static var range: JSONValue {
        .object([
            "description": .string("a guest physical range: {gpa, size} or \"START-END\" with an inclusive end"),
            "oneOf": .array([
                .object(["type": .string("string"), "pattern": .string(rangePattern)]),
                object(
                    ManifestKeys.range, required: ManifestKeys.requiredRange,
                    properties: ["gpa": ref("size"), "size": ref("size")]),
            ]),
        ])
    }

    static var nonEmptyString: JSONValue { .object(["type": .string("string"), "minLength": .int(1)]) }

    static func ref(_ name: String) -> JSONValue { .object(["$ref": .string("#/$defs/\(name)")]) }

    static func list(_ item: JSONValue) -> JSONValue { .object(["type": .string("array"), "items": item]) }

    static func choice<E: RawRepresentable & CaseIterable>(_ type: E.Type, _ description: String) -> JSONValue
    where E.RawValue == String {
        .object(["enum": .array(E.allCases.map { .string($0.rawValue) }), "description": .string(description)])
    }

    /// A closed object: exactly the loader's keys, so that editors flag the same unknown keys.
    static func object(_ keys: [String], required: [String], properties: [String: JSONValue]) -> JSONValue {
        precondition(Set(keys) == Set(properties.keys), "schema and loader key lists differ")
        var result: [String: JSONValue] = [
            "type": .string("object"),
            "additionalProperties": .bool(false),
            "properties": .object(properties),
        ]
        if !required.isEmpty { result["required"] = .array(required.map { .string($0) }) }
        return .object(result)
    }
}
