import Testing
@testable import MTProtoCrypto
@Test func placeholder() { #expect(Bool(true)) }
