import Testing
@testable import MTProto

@Suite("HandshakeError: texts for people")
struct HandshakeErrorTests {
    static let all: [HandshakeError] = [
        .malformedEnvelope(.notPlain), .invalidMessageID(6), .unexpectedMessage(constructor: 0x3BCB_F734, expected: .resPQ),
        .malformedMessage(.reqDHParams), .nonceMismatch(.resPQ), .serverNonceMismatch(.dhGenOK), .newNonceHashMismatch(.dhGenRetry),
        .encryptedDataNotBlockAligned(.serverDHInnerData, byteCount: 17), .innerHashMismatch(.clientDHInnerData),
        .innerPaddingTooLong(.serverDHInnerData, byteCount: 24), .noKnownServerKey(offered: [0xD09D_1D85_DE64_FD85]),
        .pqOutOfRange(byteCount: 9), .pqNotFactorable, .dhGeneratorInvalid(9), .dhPrimeUnsafe, .dhGeneratorNotQuadraticResidue(2),
        .gAOutOfRange, .serverRejectedDHParams, .serverRejectedKey, .tooManyRetries(limit: 5), .unknownFingerprint(0x1234),
        .proofOfWorkMismatch, .rsaDecryptionFailed, .dcMismatch(accepted: [2, 10002], received: 4),
        .temporaryKeyLifetimeInvalid(0), .gBOutOfRange, .retryIDMismatch, .tooManyAttempts(limit: 8),
    ]

    @Test("every error says what happened and what to do", arguments: all)
    func describes(error: HandshakeError) {
        let text = error.description
        let remedies = ["Close the connection", "Drop the connection", "Check the configured", "Point the client", "configure the client", "Wait,", "Close it"]
        #expect(text.count > 60)
        #expect(remedies.contains { text.contains($0) }, "\(text)")
    }

    @Test("values that are public on the wire appear in the text")
    func details() {
        #expect(HandshakeError.noKnownServerKey(offered: [0xD09D_1D85_DE64_FD85]).description.contains("0xd09d1d85de64fd85"))
        #expect(HandshakeError.dcMismatch(accepted: [2, 10002], received: 4).description.contains("DC 4"))
        #expect(HandshakeError.unexpectedMessage(constructor: 0x3BCB_F734, expected: .resPQ).description.contains("0x3bcbf734"))
    }
}
