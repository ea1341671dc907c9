import Testing

@Test func placeholder_KVMTests() { #expect(Bool(true)) }
