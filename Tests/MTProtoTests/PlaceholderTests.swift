import Testing
@testable import MTProto
@Test func placeholder() { #expect(Bool(true)) }
