import Testing
@testable import TLGen
@Test func placeholder() { #expect(Bool(true)) }
