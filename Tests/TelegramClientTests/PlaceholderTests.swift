import Testing
@testable import TelegramClient
@Test func placeholder() { #expect(Bool(true)) }
