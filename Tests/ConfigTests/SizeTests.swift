import Config
import Testing

@Suite struct SizeParsingTests {
    @Test(arguments: [
        ("4096", UInt64(4096)), ("0x1000", 4096), ("0X1f", 31), ("2MiB", 2 << 20), ("1 GiB", 1 << 30),
        ("3TiB", 3 << 40), ("512B", 512), ("4KiB", 4096), ("0", 0), ("0x1_0000_0000", 1 << 32),
        ("18446744073709551615", .max), ("0xFFFFFFFFFFFFFFFF", .max), ("0x00000000000000000001", 1),
        (" 8 MiB ", 8 << 20),
    ])
    func acceptsIntegersHexAndBinaryUnits(text: String, expected: UInt64) throws {
        #expect(try parseSize(text) == expected)
    }

    @Test func rejectsNegative() {
        #expect { try parseSize("-4096") } throws: { ($0 as? SizeParseError)?.summary.contains("negative") == true }
    }

    @Test func rejectsFractionWithExactRewrite() throws {
        let error = try #require(throws: SizeParseError.self) { try parseSize("1.5GiB") }
        #expect(error.summary.contains("fractional"))
        #expect(error.detail.contains("1536MiB"))
    }

    @Test(arguments: [("2MB", "2MiB"), ("4k", "4KiB"), ("1gib", "1GiB"), ("3T", "3TiB"), ("16kB", "16KiB")])
    func suggestsBinaryUnit(text: String, suggestion: String) throws {
        let error = try #require(throws: SizeParseError.self) { try parseSize(text) }
        #expect(error.detail.contains("did you mean \(suggestion)?"), "\(error)")
        #expect(error.detail.contains("binary"))
    }

    @Test func rejectsUnknownUnitWithoutGuess() throws {
        let error = try #require(throws: SizeParseError.self) { try parseSize("4 pages") }
        #expect(error.detail.contains("B, KiB, MiB, GiB and TiB"))
    }

    @Test(arguments: ["18446744073709551616", "0x10000000000000000", "16777216TiB", "99999999999999999999999GiB"])
    func rejectsOverflow(text: String) throws {
        let error = try #require(throws: SizeParseError.self) { try parseSize(text) }
        #expect(error.summary.contains("does not fit in 64 bits"))
    }

    @Test(arguments: ["", "0x", "0xZZ", "MiB", "abc", "1e6"])
    func rejectsGarbage(text: String) {
        #expect(throws: SizeParseError.self) { try parseSize(text) }
    }

    @Test func rangeEndIsInclusive() throws {
        #expect(try parseRange("0xA0000-0xFFFFF") == GuestRange(gpa: 0xA0000, size: 384 << 10))
        #expect(try parseRange("1MiB - 2MiB") == GuestRange(gpa: 1 << 20, size: (1 << 20) + 1))
        #expect(try parseRange("0x0-0xFFFFFFFFFFFFFFFE") == GuestRange(gpa: 0, size: .max))
    }

    @Test(arguments: ["0x2000-0x1000", "0x1000", "-0x1000", "0x1000-", "0x0-0xFFFFFFFFFFFFFFFF", "1-2-3"])
    func rejectsBadRanges(text: String) {
        #expect(throws: SizeParseError.self) { try parseRange(text) }
    }

    @Test func formatsWithLargestExactUnit() {
        #expect(formatSize(2 << 20) == "2 MiB")
        #expect(formatSize(1536 << 20) == "1536 MiB")
        #expect(formatSize(4097) == "4097 B")
        #expect(formatSize(0) == "0 B")
        #expect(formatHex(0x1_0000_0000) == "0x100000000")
        #expect(formatRange(0xA0000..<0x100000) == "0xA0000-0xFFFFF")
    }

    @Test(arguments: [UInt64(0), 1, 4096, 0xA0000, 3 << 40, .max])
    func formattedHexParsesBack(value: UInt64) throws {
        #expect(try parseSize(formatHex(value)) == value)
    }
}
