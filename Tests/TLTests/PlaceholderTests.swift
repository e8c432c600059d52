import Testing
@testable import TL
@Test func placeholder() { #expect(Bool(true)) }
