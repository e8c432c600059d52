import Testing
@testable import TLSchema
@Test func placeholder() { #expect(Bool(true)) }
