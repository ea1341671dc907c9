import Testing

@testable import gmemctl

@Suite struct HumanOutputTests {
    /// Addresses print as lowercase hex without padding, the same as `String(_:radix:)`, at every width.
    @Test(arguments: [0, 1, 0xF, 0x10, 0x1000, 0xDEAD_BEEF, 1 << 52, UInt64.max - 1, UInt64.max] as [UInt64])
    func hexAddressesPrintLikeStringRadix16(value: UInt64) {
        var out = "at "
        HumanOutput.appendHex(value, to: &out)
        #expect(out == "at 0x" + String(value, radix: 16))
    }
}
