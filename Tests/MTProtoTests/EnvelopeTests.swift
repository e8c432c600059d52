import Testing
import MTProtoCrypto
@testable import MTProto

@Suite struct EnvelopeTests {
    /// Property: for random keys, directions and body sizes, seal → open gives back every field.
    @Test func sealThenOpenRoundTrips() throws {
        var entropy = SeededEntropy(seed: 5)
        for round in 0..<60 {
            let key = Fixtures.authKey(seed: UInt64(round) + 100)
            let direction: Direction = round % 2 == 0 ? .clientToServer : .serverToClient
            let size = entropy.int(in: 0...4_000) & ~3
            let message = SessionMessage(
                messageID: Int64(bitPattern: entropy.next()), seqNo: Int32(truncatingIfNeeded: entropy.next()), body: entropy.bytes(size))
            let salt = Int64(bitPattern: entropy.next())
            let session = Int64(bitPattern: entropy.next())
            var source: any EntropySource = SeededEntropy(seed: UInt64(round))
            let packet = Envelope.seal(message, salt: salt, sessionID: session, authKey: key, direction: direction, entropy: &source, maxExtraPaddingBlocks: 3)
            #expect((packet.count - 24) % 16 == 0)
            let opened = try Envelope.open(packet, authKey: key, direction: direction)
            #expect(opened.messageID == message.messageID)
            #expect(opened.seqNo == message.seqNo)
            #expect(opened.body == message.body)
            #expect(opened.salt == salt)
            #expect(opened.sessionID == session)
            #expect((12...1024).contains(opened.paddingLength))
        }
    }

    @Test func theOtherDirectionOrAnotherKeyCannotOpenIt() throws {
        let key = Fixtures.authKey()
        var source: any EntropySource = SeededEntropy(seed: 1)
        let packet = Envelope.seal(SessionMessage(messageID: 4, seqNo: 1, body: [1, 2, 3, 4]), salt: 1, sessionID: 2, authKey: key, direction: .clientToServer, entropy: &source, maxExtraPaddingBlocks: 0)
        #expect(throws: SessionError.undecryptable(.messageKeyMismatch)) { try Envelope.open(packet, authKey: key, direction: .serverToClient) }
        let other = Fixtures.authKey(seed: 2)
        #expect(throws: SessionError.undecryptable(.authKeyIDMismatch(expected: other.id, received: key.id))) {
            try Envelope.open(packet, authKey: other, direction: .clientToServer)
        }
    }
}
