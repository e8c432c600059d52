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
