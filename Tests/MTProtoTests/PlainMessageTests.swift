import Testing
@testable import MTProto

@Suite("PlainMessage: the unencrypted envelope")
struct PlainMessageTests {
    @Test("encodes auth_key_id 0, msg_id and length little-endian, then the body; decodes it back")
    func roundTrip() throws {
        let message = PlainMessage(messageID: 0x68DF_DD5E_0007_A8AC, body: [0xF1, 0x8E, 0x7E, 0xBE, 1, 2, 3, 4])
        let bytes = message.encoded()
        #expect(bytes == [0, 0, 0, 0, 0, 0, 0, 0, 0xAC, 0xA8, 0x07, 0x00, 0x5E, 0xDD, 0xDF, 0x68, 8, 0, 0, 0] + message.body)
        #expect(try PlainMessage(decoding: bytes) == message)
    }

    @Test("refuses what is not exactly one unencrypted TL message", arguments: [
        ([UInt8](repeating: 0, count: 19), PlainMessageError.tooShort(byteCount: 19)),
        ([0, 0, 0, 0, 0, 0, 0, 0x80] + [UInt8](repeating: 0, count: 16), .notPlain),
        ([UInt8](repeating: 0, count: 16) + [8, 0, 0, 0] + [1, 2, 3, 4], .lengthMismatch(declared: 8, available: 4)),
        ([UInt8](repeating: 0, count: 16) + [4, 0, 0, 0] + [1, 2, 3, 4, 5], .lengthMismatch(declared: 4, available: 5)),
        ([UInt8](repeating: 0, count: 16) + [0xFF, 0xFF, 0xFF, 0xFF], .lengthMismatch(declared: 0xFFFF_FFFF, available: 0)),
        ([UInt8](repeating: 0, count: 20), .bodyNotWordAligned(length: 0)),
        ([UInt8](repeating: 0, count: 16) + [2, 0, 0, 0, 1, 2], .bodyNotWordAligned(length: 2)),
    ])
    func refuses(bytes: [UInt8], expected: PlainMessageError) {
        #expect(throws: expected) { try PlainMessage(decoding: bytes) }
    }

    @Test("error texts say what happened and what to do")
    func descriptions() {
        let text = PlainMessageError.lengthMismatch(declared: 8, available: 4).description
        #expect(text.contains("8-byte body") && text.contains("4 bytes") && text.contains("Drop the connection"))
    }
}

@Suite("PlainMessageIDs: msg_id of the key exchange")
struct PlainMessageIDsTests {
    @Test("seconds in the high word, the fraction in the low word, client ids divisible by 4")
    func layout() {
        var ids = PlainMessageIDs(sender: .client)
        let id = ids.next(at: UnixTime(seconds: 1_759_501_662.5))
        #expect(id >> 32 == 1_759_501_662)
        #expect(id & 0xFFFF_FFFF == 0x8000_0000)
        #expect(PlainMessageIDs.isValid(id, from: .client))
    }

    @Test("strictly increasing even when the clock stands still or steps back; server ids are 1 mod 4")
    func monotonic() {
        var ids = PlainMessageIDs(sender: .server)
        let now = UnixTime(seconds: 1_800_000_000)
        let first = ids.next(at: now)
        let second = ids.next(at: now)
        let third = ids.next(at: UnixTime(seconds: 1_700_000_000))
        #expect(first < second && second < third)
        #expect([first, second, third].allSatisfy { $0 & 3 == 1 })
    }

    @Test("parity rules of received ids")
    func parity() {
        #expect(PlainMessageIDs.isValid(0x6000_0000_0000_0004, from: .client))
        #expect(!PlainMessageIDs.isValid(0x6000_0000_0000_0006, from: .client))
        #expect(!PlainMessageIDs.isValid(0, from: .client))
        #expect(PlainMessageIDs.isValid(0x6000_0000_0000_0001, from: .server))
        #expect(PlainMessageIDs.isValid(0x6000_0000_0000_0003, from: .server))
        #expect(!PlainMessageIDs.isValid(0x6000_0000_0000_0004, from: .server))
    }

    @Test("a clock outside the 32-bit range cannot wrap the id")
    func clamped() {
        var ids = PlainMessageIDs(sender: .client)
        #expect(ids.next(at: UnixTime(seconds: -5)) >> 32 == 0)
        #expect(ids.next(at: UnixTime(seconds: 1e12)) >> 32 == Int64(Int32.max))
    }
}
