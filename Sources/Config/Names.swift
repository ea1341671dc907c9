/// The names a manifest gives (guest, blocks, listeners): 1 to 63 characters of ASCII letters, digits, `-`,
/// `_` and `.`, starting and ending with a letter or a digit, like a DNS label. Names end up in memfd names
/// (`gmemctl:GUEST:BLOCK`, at most 135 of the kernel's 249 bytes), log lines, JSON and terminals, and are
/// typed on command lines: nothing in them can break any of those.
public enum NameRule {
    public static let maxLength = 63
    public static let description =
        "1 to 63 characters of letters a-z and A-Z, digits, `-`, `_` and `.`, starting and ending with a letter or digit"

    /// Why `name` is not a valid name (naming the first offending character), or nil when it is one.
    public static func problem(_ name: String) -> String? {
        let scalars = Array(name.unicodeScalars)
        guard !scalars.isEmpty else { return "the name is empty" }
        guard scalars.count <= maxLength else {
            return "the name is \(scalars.count) characters long, more than \(maxLength)"
        }
        for (index, scalar) in scalars.enumerated() {
            let edge = index == 0 || index == scalars.count - 1
            if isAlphanumeric(scalar) { continue }
            if !edge && (scalar == "-" || scalar == "_" || scalar == ".") { continue }
            let position = "at position \(index + 1)"
            if scalar == "-" || scalar == "_" || scalar == "." {
                return "the name \(index == 0 ? "starts" : "ends") with `\(scalar)`"
            }
            return "character \(describe(scalar)) \(position) is not allowed"
        }
        return nil
    }

    static func isAlphanumeric(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x30...0x39, 0x41...0x5A, 0x61...0x7A: return true
        default: return false
        }
    }

    /// `U+001B (a control character)` or `` `/` (U+002F) ``: readable, and safe to print.
    public static func describe(_ scalar: Unicode.Scalar) -> String {
        let hex = String(scalar.value, radix: 16, uppercase: true)
        let code = "U+" + String(repeating: "0", count: max(0, 4 - hex.count)) + hex
        if scalar.value < 0x20 || scalar.value == 0x7F || (0x80...0x9F).contains(scalar.value) {
            return "\(code) (a control character)"
        }
        if scalar.value == 0x20 { return "\(code) (a space)" }
        if !scalar.isASCII { return "\(code) (not ASCII)" }
        return "`\(scalar)` (\(code))"
    }

    /// `text` with control characters written as `\u{1B}`, for quoting a user's string in a message.
    public static func printable(_ text: String) -> String {
        var out = ""
        for scalar in text.unicodeScalars {
            if scalar.value < 0x20 || scalar.value == 0x7F || (0x80...0x9F).contains(scalar.value) {
                out += "\\u{\(String(scalar.value, radix: 16, uppercase: true))}"
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
        return out
    }
}
