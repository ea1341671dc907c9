import Config
import Testing

/// Addresses near 2^64: every rule must report them, none may trap on `gpa + size`.
@Suite struct AddressOverflowTests {
    @Test func mappingEndingAtTwoToTheSixtyFourIsAnErrorNotACrash() {
        let result = load(
            """
            apiVersion: gmemctl/v1
            kind: GuestMemory
            metadata: { name: ovf }
            spec:
              vm: { type: tdx }
              blocks:
                - { name: ram, size: 16MiB, backend: { type: in-place } }
              mappings:
                - { block: ram, offset: 0, size: 16MiB, gpa: 0xFFFFFFFFFF000000 }
              layout:
                default: private
                shared:
                  - { gpa: 0xFFFFFFFFFFFFF000, size: 8KiB }
            """)
        #expect(!result.isValid)
        expectDiagnostic(
            result, path: "spec.mappings[0].size", line: 9, column: 38,
            summary: "past the end of the 64-bit guest address space")
        expectDiagnostic(
            result, path: "spec.layout.shared[0].size", line: 13, column: 42,
            summary: "past the end of the 64-bit guest address space")
    }

    @Test func saturatedRangesStayOrdered() {
        let mapping = Mapping(block: "ram", offset: UInt64.max - 0xFFF, size: 0x2000, gpa: UInt64.max - 0xFFF)
        #expect(mapping.gpaRange == (UInt64.max - 0xFFF)..<UInt64.max)
        #expect(mapping.offsetRange.upperBound == UInt64.max)
        #expect(GuestRange(gpa: 0x1000, size: 0x1000).range == 0x1000..<0x2000)
    }
}
