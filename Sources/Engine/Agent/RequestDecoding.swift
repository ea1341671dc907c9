import Foundation
import GmemCore
import GmemProtocol

/// Turns one line into a request or a listener's answer, or says precisely what is wrong with it: the
/// field at fault, and the request's `id` whenever it can be read, so a client can tie the error to its
/// request. Duplicate keys are refused (a JSON decoder would silently keep one of them).
enum RequestDecoding {
    enum Outcome {
        case request(AgentRequest)
        case answer(ListenerAnswer)
        case invalid(id: AgentRequestID?, problem: String)
    }

    static func decode(_ line: [UInt8]) -> Outcome {
        let data = Data(line)
        let id = requestID(in: data)
        if let duplicate = TopLevelKeys.firstDuplicate(in: line) {
            return .invalid(id: id, problem: "not a request: field \"\(duplicate)\" appears twice")
        }
        do {
            return .request(try JSONDecoder().decode(AgentRequest.self, from: data))
        } catch {
            if let answer = try? JSONDecoder().decode(ListenerAnswer.self, from: data) { return .answer(answer) }
            if let field = unrepresentableNumber(in: data) {
                return .invalid(id: id, problem: "not a request: \(field)")
            }
            return .invalid(id: id, problem: "not a request: \(describe(error))")
        }
    }

    /// The decoder calls a number its field cannot hold "not valid JSON" without naming the field: find it.
    private static func unrepresentableNumber(in data: Data) -> String? {
        guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return nil }
        for field in ["v", "gpa", "size", "since"] {
            guard let number = object[field] as? NSNumber, !(number is Bool) else { continue }
            let value = number.doubleValue
            let whole = value.rounded() == value
            if value < 0 || !whole || value >= 18_446_744_073_709_551_616.0 {
                return "field \"\(field)\": \(number) is not a whole number from 0 to 2^64 - 1"
            }
        }
        return nil
    }

    /// The `id` of a line that may not decode as a whole.
    private static func requestID(in data: Data) -> AgentRequestID? {
        struct IDOnly: Decodable { var id: AgentRequestID? }
        return (try? JSONDecoder().decode(IDOnly.self, from: data))?.id
    }

    static func describe(_ error: Error) -> String {
        guard let error = error as? DecodingError else { return "\(error)" }
        func field(_ context: DecodingError.Context) -> String {
            context.codingPath.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
        }
        switch error {
        case .dataCorrupted(let context):
            // A value the field's type cannot hold (a negative or oversized number) names the field.
            if !context.codingPath.isEmpty { return "field \"\(field(context))\": \(context.debugDescription)" }
            return "malformed JSON (\(context.debugDescription))"
        case .keyNotFound(let key, _):
            return "missing field \"\(key.stringValue)\""
        case .typeMismatch(_, let context), .valueNotFound(_, let context):
            return "field \"\(field(context))\": \(context.debugDescription)"
        @unknown default:
            return "\(error)"
        }
    }
}

/// The keys of a JSON object line's top level, read without building the object. Only well-formed input
/// matters here: anything else is left to the decoder, which reports it.
enum TopLevelKeys {
    static func firstDuplicate(in bytes: [UInt8]) -> String? {
        var seen = Set<String>()
        var depth = 0
        var index = 0
        var expectKey = false
        var topIsObject = false
        while index < bytes.count {
            let byte = bytes[index]
            switch byte {
            case UInt8(ascii: "\""):
                guard let end = stringEnd(bytes, from: index) else { return nil }
                if depth == 1 && topIsObject && expectKey {
                    guard let key = decodeString(Array(bytes[index...end])) else { return nil }
                    if !seen.insert(key).inserted { return key }
                    expectKey = false
                }
                index = end
            case UInt8(ascii: "{"):
                depth += 1
                if depth == 1 { (topIsObject, expectKey) = (true, true) }
            case UInt8(ascii: "["):
                depth += 1
            case UInt8(ascii: "}"), UInt8(ascii: "]"):
                depth -= 1
            case UInt8(ascii: ","):
                if depth == 1 { expectKey = true }
            default:
                break
            }
            index += 1
        }
        return nil
    }

    /// The index of the closing quote of the string opening at `start`.
    private static func stringEnd(_ bytes: [UInt8], from start: Int) -> Int? {
        var index = start + 1
        while index < bytes.count {
            switch bytes[index] {
            case UInt8(ascii: "\\"): index += 2
            case UInt8(ascii: "\""): return index
            default: index += 1
            }
        }
        return nil
    }

    /// A key with escapes (`"o\u0070"`) compares as what it means.
    private static func decodeString(_ quoted: [UInt8]) -> String? {
        guard quoted.contains(UInt8(ascii: "\\")) else {
            return String(decoding: quoted.dropFirst().dropLast(), as: UTF8.self)
        }
        return try? JSONDecoder().decode(String.self, from: Data(quoted))
    }
}
