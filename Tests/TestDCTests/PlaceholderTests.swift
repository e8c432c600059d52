import Testing
@testable import TestDC
@Test func placeholder() { #expect(Bool(true)) }
