import Testing
@testable import MTProtoNIO
@Test func placeholder() { #expect(Bool(true)) }
