import Testing
import MTProtoCrypto

@Suite("Handshake symmetric crypto")
struct HandshakeCryptoTests {
    @Test func specSampleTemporaryKeyAndAnswer() throws {
        let (key, iv) = try HandshakeCrypto.temporaryKeyAndIV(newNonce: hex(SpecVectors.newNonce), serverNonce: hex(SpecVectors.serverNonce))
        #expect(key == hex(SpecVectors.temporaryAESKey))
        #expect(iv == hex(SpecVectors.temporaryAESIV))
        let decrypted = try AESIGE.decrypt(hex(SpecVectors.encryptedAnswer), key: key, iv: iv)
        #expect(decrypted == hex(SpecVectors.answerHash) + hex(SpecVectors.answer) + hex(SpecVectors.answerPadding))
        #expect(try HandshakeCrypto.verifyHashAndPadding(decrypted, answerLength: hex(SpecVectors.answer).count) == hex(SpecVectors.answer))
        // Re-encrypting with the sample's padding gives the sample's ciphertext (the server side).
        var padding = ReplayEntropy(hex(SpecVectors.answerPadding))
        let wrapped = HandshakeCrypto.withHashAndPadding(hex(SpecVectors.answer), entropy: &padding)
        #expect(try AESIGE.encrypt(wrapped, key: key, iv: iv) == hex(SpecVectors.encryptedAnswer))
    }

    @Test func specSampleNewNonceHash() throws {
        let authKey = try AuthKey(hex(SpecVectors.authKey))
        #expect(try HandshakeCrypto.newNonceHash(newNonce: hex(SpecVectors.newNonce), number: 1, authKey: authKey) == hex(SpecVectors.newNonceHash1))
    }

    @Test func telethonNonceDerivations() throws {
        let authKey = try AuthKey(hex(TelethonVectors.authKey))
        let newNonce = hex(TelethonVectors.newNonce)
        for number in UInt8(1)...3 {
            let hash = try HandshakeCrypto.newNonceHash(newNonce: newNonce, number: number, authKey: authKey)
            #expect(hash == hex(TelethonVectors.newNonceHashes[Int(number) - 1]))
        }
        let (key, iv) = try HandshakeCrypto.temporaryKeyAndIV(newNonce: newNonce, serverNonce: hex(TelethonVectors.serverNonce))
        #expect(key == hex(TelethonVectors.temporaryAESKey) && iv == hex(TelethonVectors.temporaryAESIV))
    }

    @Test func initialServerSalt() throws {
        let newNonce = hex(SpecVectors.newNonce), serverNonce = hex(SpecVectors.serverNonce)
        let salt = try HandshakeCrypto.initialServerSalt(newNonce: newNonce, serverNonce: serverNonce)
        let xored = zip(newNonce.prefix(8), serverNonce.prefix(8)).map { $0 ^ $1 }
        let expected = xored.enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
        #expect(UInt64(bitPattern: salt) == expected)
    }

    @Test func paddingIsZeroToFifteenBytes() {
        var entropy = SeededEntropy(seed: 2)
        for length in 0..<40 {
            let wrapped = HandshakeCrypto.withHashAndPadding([UInt8](repeating: 9, count: length), entropy: &entropy)
            #expect(wrapped.count % 16 == 0 && wrapped.count - 20 - length < 16)
        }
    }

    @Test func answerChecks() throws {
        let answer: [UInt8] = Array(0..<40)
        var entropy = SeededEntropy(seed: 3)
        let wrapped = HandshakeCrypto.withHashAndPadding(answer, entropy: &entropy)
        #expect(throws: HandshakeCryptoError.answerTooShort(length: wrapped.count)) {
            _ = try HandshakeCrypto.verifyHashAndPadding(wrapped, answerLength: wrapped.count)
        }
        #expect(throws: HandshakeCryptoError.answerTooShort(length: wrapped.count)) {
            _ = try HandshakeCrypto.verifyHashAndPadding(wrapped, answerLength: -1)
        }
        #expect(throws: HandshakeCryptoError.invalidAnswerPadding(length: wrapped.count - 20 - 20)) {
            _ = try HandshakeCrypto.verifyHashAndPadding(wrapped, answerLength: 20)
        }
        var tampered = wrapped
        tampered[25] ^= 1
        #expect(throws: HandshakeCryptoError.answerHashMismatch) {
            _ = try HandshakeCrypto.verifyHashAndPadding(tampered, answerLength: 40)
        }
    }

    @Test func nonceLengthsAreChecked() throws {
        let authKey = try AuthKey(hex(SpecVectors.authKey))
        #expect(throws: HandshakeCryptoError.invalidNonceLength(name: "new_nonce", length: 16)) {
            _ = try HandshakeCrypto.temporaryKeyAndIV(newNonce: [UInt8](repeating: 0, count: 16), serverNonce: [UInt8](repeating: 0, count: 16))
        }
        #expect(throws: HandshakeCryptoError.invalidNonceLength(name: "server_nonce", length: 32)) {
            _ = try HandshakeCrypto.initialServerSalt(newNonce: [UInt8](repeating: 0, count: 32), serverNonce: [UInt8](repeating: 0, count: 32))
        }
        #expect(throws: HandshakeCryptoError.invalidNonceLength(name: "new_nonce", length: 0)) {
            _ = try HandshakeCrypto.newNonceHash(newNonce: [], number: 1, authKey: authKey)
        }
    }

    @Test func errorsExplainThemselves() {
        let errors: [HandshakeCryptoError] = [.invalidNonceLength(name: "n", length: 1), .answerTooShort(length: 2), .invalidAnswerPadding(length: 3), .answerHashMismatch]
        for error in errors { #expect(error.description.contains("abort")) }
    }
}
