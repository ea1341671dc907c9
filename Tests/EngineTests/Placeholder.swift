import Testing

@Test func placeholder_EngineTests() { #expect(Bool(true)) }
