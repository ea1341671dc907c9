import Foundation

/// A JSON value decoded without Foundation's NSNumber ambiguity (a boolean is never a number here).
enum JSONValue: Decodable, Equatable, CustomStringConvertible {
    case null, bool(Bool), integer(Int64), number(Double), string(String), array([JSONValue]), object(
        [String: JSONValue])

    init(from decoder: Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? container.decode(Int64.self) {
            self = .integer(value)
        } else if let value = try? container.decode(Double.self) {
            self = .number(value)
        } else if let value = try? container.decode(String.self) {
            self = .string(value)
        } else if let value = try? container.decode([JSONValue].self) {
            self = .array(value)
        } else {
            self = .object(try container.decode([String: JSONValue].self))
        }
    }

    static func parse(_ text: String) throws -> JSONValue {
        try JSONDecoder().decode(JSONValue.self, from: Data(text.utf8))
    }

    subscript(key: String) -> JSONValue? {
        if case .object(let object) = self { return object[key] } else { return nil }
    }

    var typeName: String {
        switch self {
        case .null: return "null"
        case .bool: return "boolean"
        case .integer: return "integer"
        case .number: return "number"
        case .string: return "string"
        case .array: return "array"
        case .object: return "object"
        }
    }

    var description: String {
        switch self {
        case .null: return "null"
        case .bool(let value): return "\(value)"
        case .integer(let value): return "\(value)"
        case .number(let value): return "\(value)"
        case .string(let value): return "\"\(value)\""
        case .array(let values): return "[\(values.map(\.description).joined(separator: ", "))]"
        case .object(let object): return "{\(object.keys.sorted().joined(separator: ", "))}"
        }
    }

    /// Every object key in the document, with its path.
    func keys(path: String = "$") -> [(path: String, key: String)] {
        switch self {
        case .object(let object):
            return object.flatMap { key, value in [(path, key)] + value.keys(path: "\(path).\(key)") }
        case .array(let values):
            return values.enumerated().flatMap { $1.keys(path: "\(path)[\($0)]") }
        default:
            return []
        }
    }
}

/// A small JSON Schema checker for the keywords gmemctl's document schemas use: type, properties, required,
/// additionalProperties, items, enum, const, $ref (to #/$defs/...) and allOf. It reports every violation
/// with its JSON path, so a failing test says what differs.
struct SchemaChecker {
    let root: JSONValue

    init(schemaJSON: String) throws { root = try JSONValue.parse(schemaJSON) }

    func violations(of value: JSONValue) -> [String] {
        var found: [String] = []
        check(value, against: root, path: "$", into: &found)
        return found
    }

    private func check(_ value: JSONValue, against schema: JSONValue, path: String, into found: inout [String]) {
        if case .string(let reference)? = schema["$ref"] {
            guard reference.hasPrefix("#/$defs/"), let target = root["$defs"]?[String(reference.dropFirst(8))] else {
                found.append("\(path): unresolvable $ref \(reference)")
                return
            }
            check(value, against: target, path: path, into: &found)
        }
        if case .array(let parts)? = schema["allOf"] {
            for part in parts { check(value, against: part, path: path, into: &found) }
        }
        if let constant = schema["const"], constant != value {
            found.append("\(path): expected \(constant), got \(value)")
        }
        if case .array(let options)? = schema["enum"], !options.contains(value) {
            found.append("\(path): \(value) is not one of \(options)")
        }
        if case .string(let type)? = schema["type"],
            !(value.typeName == type || (type == "number" && value.typeName == "integer"))
        {
            found.append("\(path): expected \(type), got \(value.typeName) \(value)")
            return
        }
        if case .object(let object) = value {
            if case .array(let required)? = schema["required"] {
                for case .string(let key) in required where object[key] == nil {
                    found.append("\(path): missing required \"\(key)\"")
                }
            }
            for (key, child) in object {
                if let childSchema = schema["properties"]?[key] {
                    check(child, against: childSchema, path: "\(path).\(key)", into: &found)
                } else if case .object? = schema["additionalProperties"],
                    let additional = schema["additionalProperties"]
                {
                    check(child, against: additional, path: "\(path).\(key)", into: &found)
                } else if schema["additionalProperties"] == .bool(false) {
                    found.append("\(path): unexpected property \"\(key)\"")
                }
            }
        }
        if case .array(let values) = value, let items = schema["items"] {
            for (index, element) in values.enumerated() {
                check(element, against: items, path: "\(path)[\(index)]", into: &found)
            }
        }
    }
}
