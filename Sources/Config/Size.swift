/// Sizes and guest addresses as manifests write them: `4096`, `0x1000`, `2MiB`, `1 GiB`, `512B`.
/// Units are binary only (KiB = 1024 B); decimal-looking units are refused with the right spelling.

public struct SizeParseError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What is wrong with the text.
    public var summary: String
    /// What would be valid.
    public var detail: String

    public init(_ summary: String, detail: String) {
        self.summary = summary
        self.detail = detail
    }

    public var description: String { detail.isEmpty ? summary : "\(summary); \(detail)" }
}

public enum SizeUnit: String, Sendable, CaseIterable {
    case B, KiB, MiB, GiB, TiB

    public var bytes: UInt64 {
        switch self {
        case .B: return 1
        case .KiB: return 1 << 10
        case .MiB: return 1 << 20
        case .GiB: return 1 << 30
        case .TiB: return 1 << 40
        }
    }

    /// The binary unit a user most likely meant by a misspelt or decimal one (`MB`, `mib`, `G`).
    static func suggestion(for text: String) -> SizeUnit? {
        let lower = text.lowercased()
        guard let first = lower.first else { return nil }
        let rest = lower.dropFirst()
        guard ["", "b", "ib", "i"].contains(String(rest)) || lower == "bytes" || lower == "byte" else { return nil }
        switch first {
        case "b": return .B
        case "k": return .KiB
        case "m": return .MiB
        case "g": return .GiB
        case "t": return .TiB
        default: return nil
        }
    }
}

/// The pattern of a size in the JSON Schema, matching what `parseSize` accepts.
public let sizePattern = #"^\s*(0[xX][0-9a-fA-F_]+|[0-9][0-9_]*\s*(B|KiB|MiB|GiB|TiB)?)\s*$"#
/// The pattern of a `START-END` range string.
public let rangePattern =
    #"^\s*(0[xX][0-9a-fA-F_]+|[0-9][0-9_]*\s*(B|KiB|MiB|GiB|TiB)?)\s*-\s*(0[xX][0-9a-fA-F_]+|[0-9][0-9_]*\s*(B|KiB|MiB|GiB|TiB)?)\s*$"#

/// Parses a size or address. Hex (`0x...`) takes no unit; decimal takes an optional unit, with or
/// without a space. `_` may separate digits (`0x1_0000_0000`).
public func parseSize(_ text: String) throws(SizeParseError) -> UInt64 {
    if let plain = parsePlainNumber(text) { return plain }
    let trimmed = text.trimmingSpaces
    let examples = "write a byte count (4096), hex (0x1000) or a binary unit (2MiB, 1 GiB)"
    guard !trimmed.isEmpty else { throw SizeParseError("empty size", detail: examples) }
    if trimmed.hasPrefix("-") {
        throw SizeParseError("size \"\(trimmed)\" is negative", detail: "sizes and addresses are unsigned; " + examples)
    }
    if trimmed.hasPrefix("0x") || trimmed.hasPrefix("0X") {
        let digits = trimmed.dropFirst(2).filter { $0 != "_" }
        guard !digits.isEmpty, digits.allSatisfy(\.isHexDigit) else {
            throw SizeParseError(
                "\"\(trimmed)\" is not a hex number",
                detail: "hex takes digits 0-9 and a-f and no unit, e.g. 0x100000000")
        }
        let significant = String(digits.drop(while: { $0 == "0" }))
        guard significant.count <= 16, let value = UInt64(significant.isEmpty ? "0" : significant, radix: 16) else {
            throw SizeParseError(
                "\"\(trimmed)\" does not fit in 64 bits", detail: "the largest value is 0xFFFFFFFFFFFFFFFF")
        }
        return value
    }

    let numberEnd = trimmed.firstIndex { !($0.isASCII && ($0.isNumber || $0 == "_")) } ?? trimmed.endIndex
    let number = trimmed[..<numberEnd].filter { $0 != "_" }
    let unitText = trimmed[numberEnd...].trimmingSpaces
    guard !number.isEmpty else {
        throw SizeParseError("\"\(trimmed)\" is not a size", detail: examples)
    }
    if unitText.hasPrefix(".") || unitText.hasPrefix(",") {
        throw SizeParseError("size \"\(trimmed)\" is fractional", detail: fractionHint(trimmed))
    }
    let unit: SizeUnit
    if unitText.isEmpty {
        unit = .B
    } else if let known = SizeUnit(rawValue: unitText) {
        unit = known
    } else if let meant = SizeUnit.suggestion(for: unitText) {
        throw SizeParseError(
            "unknown unit \"\(unitText)\" in \"\(trimmed)\"",
            detail: "did you mean \(number)\(meant.rawValue)? gmemctl sizes are binary (1 KiB = 1024 B)")
    } else {
        throw SizeParseError(
            "unknown unit \"\(unitText)\" in \"\(trimmed)\"", detail: "units are B, KiB, MiB, GiB and TiB")
    }
    guard let count = UInt64(number) else {
        throw SizeParseError(
            "\"\(trimmed)\" does not fit in 64 bits",
            detail: "the largest size is 18446744073709551615 bytes (16 EiB - 1)")
    }
    let (value, overflow) = count.multipliedReportingOverflow(by: unit.bytes)
    guard !overflow else {
        throw SizeParseError(
            "\"\(trimmed)\" does not fit in 64 bits",
            detail: "the largest size is 18446744073709551615 bytes (16 EiB - 1)")
    }
    return value
}

/// The common case without building strings: only decimal digits (at most 19, so no overflow) or `0x` and at
/// most 16 hex digits. Anything else (units, `_`, spaces, errors) takes the full path.
private func parsePlainNumber(_ text: String) -> UInt64? {
    let bytes = text.utf8
    guard !bytes.isEmpty else { return nil }
    var value: UInt64 = 0
    if bytes.count > 2, bytes.first == UInt8(ascii: "0"), bytes.dropFirst().first == UInt8(ascii: "x") {
        guard bytes.count <= 18 else { return nil }
        for byte in bytes.dropFirst(2) {
            let digit: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
            default: return nil
            }
            value = value << 4 | UInt64(digit)
        }
        return value
    }
    guard bytes.count <= 19 else { return nil }
    for byte in bytes {
        guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
        value = value * 10 + UInt64(byte - UInt8(ascii: "0"))
    }
    return value
}

/// Parses `"START-END"` (end inclusive, as in `/proc/iomem`) into a guest range.
public func parseRange(_ text: String) throws(SizeParseError) -> GuestRange {
    let trimmed = text.trimmingSpaces
    let parts = trimmed.split(separator: "-", omittingEmptySubsequences: false)
    guard parts.count == 2, !parts[0].trimmingSpaces.isEmpty, !parts[1].trimmingSpaces.isEmpty else {
        throw SizeParseError(
            "\"\(trimmed)\" is not a range",
            detail: "write \"START-END\" with an inclusive end (\"0xA0000-0xFFFFF\") or {gpa: 0xA0000, size: 384KiB}")
    }
    let start = try parseSize(String(parts[0]))
    let end = try parseSize(String(parts[1]))
    guard end >= start else {
        throw SizeParseError(
            "range \"\(trimmed)\" ends before it starts", detail: "the end is inclusive and must be at least the start")
    }
    let (size, overflow) = (end - start).addingReportingOverflow(1)
    guard !overflow else {
        throw SizeParseError("range \"\(trimmed)\" spans all 2^64 bytes", detail: "its size does not fit in 64 bits")
    }
    return GuestRange(gpa: start, size: size)
}

/// `2 MiB`, `1 GiB`, `4097 B`: the largest binary unit that divides the value exactly.
public func formatSize(_ value: UInt64) -> String {
    for unit in SizeUnit.allCases.reversed() where unit != .B {
        if value >= unit.bytes && value % unit.bytes == 0 { return "\(value / unit.bytes) \(unit.rawValue)" }
    }
    return "\(value) B"
}

/// `0x100000000`: addresses in messages.
public func formatHex(_ value: UInt64) -> String {
    "0x" + String(value, radix: 16, uppercase: true)
}

/// `0xA0000-0xFFFFF` (inclusive end, the range syntax of manifests).
public func formatRange(_ range: Range<UInt64>) -> String {
    range.isEmpty
        ? "\(formatHex(range.lowerBound)) (empty)" : "\(formatHex(range.lowerBound))-\(formatHex(range.upperBound - 1))"
}

private func fractionHint(_ text: String) -> String {
    // "1.5GiB" -> "write 1536MiB": the same amount in the next smaller unit when that is exact.
    let numberEnd = text.firstIndex { !($0.isNumber || $0 == ".") } ?? text.endIndex
    let unitText = text[numberEnd...].trimmingSpaces
    if let unit = SizeUnit(rawValue: unitText), unit != .B,
        let smaller = SizeUnit.allCases.firstIndex(of: unit).map({ SizeUnit.allCases[$0 - 1] }),
        let value = Double(text[..<numberEnd])
    {
        let scaled = value * Double(unit.bytes / smaller.bytes)
        if scaled == scaled.rounded(), scaled < 1e15 {
            return "sizes are whole numbers; write \(UInt64(scaled))\(smaller.rawValue)"
        }
    }
    return "sizes are whole numbers of bytes; use a smaller unit (1536MiB rather than 1.5GiB)"
}

extension StringProtocol {
    var trimmingSpaces: String {
        String(drop(while: { $0 == " " || $0 == "\t" }).reversed().drop(while: { $0 == " " || $0 == "\t" }).reversed())
    }
}
