import Testing
@testable import MTProtoCrypto

@Suite("RSA public keys")
struct RSAPublicKeyTests {
    @Test("Telethon's bundled keys: PEM parsed, fingerprint equal", arguments: 0..<8)
    func telethonFingerprints(index: Int) throws {
        let vector = TelethonVectors.rsaKeys[index]
        let key = try RSAPublicKey(pem: vector.pem)
        #expect(key.fingerprint == vector.fingerprint)
        #expect(key.bitCount == 2048)
        // Re-exported PKCS#1 PEM reads back to the same key (what Telethon's add_key takes).
        #expect(try RSAPublicKey(pem: key.pkcs1PEM) == key)
    }

    @Test func spkiAndPKCS1FormsOfOneKeyAgree() throws {
        let pkcs1 = try RSAPublicKey(pem: TestKeys.publicKey2048PKCS1)
        let spki = try RSAPublicKey(pem: TestKeys.publicKey2048SPKI)
        #expect(pkcs1 == spki)
        #expect(pkcs1.exponent == [0x01, 0x00, 0x01])
        #expect(pkcs1.byteCount == 256)
        #expect(pkcs1.description.contains("2048 bits"))
        // Our PKCS#1 writer reproduces OpenSSL's output exactly.
        let body = { (pem: String) in pem.split(separator: "\n").filter { !$0.hasPrefix("-----") }.joined() }
        #expect(body(pkcs1.pkcs1PEM) == body(TestKeys.publicKey2048PKCS1))
    }

    @Test func oldSchemeMatchesTelethonByteForByte() throws {
        let key = try RSAPublicKey(pem: TelethonVectors.rsaKeys[0].pem)
        var entropy = ReplayEntropy(hex(TelethonVectors.oldSchemePadding))
        let ciphertext = try key.encryptWithOldScheme(hex(TelethonVectors.oldSchemeData), entropy: &entropy)
        #expect(ciphertext == hex(TelethonVectors.oldSchemeCiphertext))
        #expect(entropy.remaining == 0)
    }

    @Test func rawEncryptIsModularExponentiation() throws {
        let key = try RSAPublicKey(modulus: [0x0D, 0x8B], exponent: [0x03])  // n = 3467, e = 3
        #expect(try key.rawEncrypt([0x02]) == [0x00, 0x08])
        #expect(throws: RSAError.valueNotBelowModulus) { _ = try key.rawEncrypt([0x0D, 0x8B]) }
        #expect(throws: RSAError.unsupportedModulusSize(bits: 12)) {
            var entropy = SeededEntropy(seed: 1)
            _ = try key.encryptWithRSAPad([1, 2, 3], entropy: &entropy)
        }
        #expect(throws: RSAError.unsupportedModulusSize(bits: 12)) {
            var entropy = SeededEntropy(seed: 1)
            _ = try key.encryptWithOldScheme([1, 2, 3], entropy: &entropy)
        }
    }

    @Test func tooMuchDataIsATypedError() throws {
        let key = try RSAPublicKey(pem: TestKeys.publicKey2048PKCS1)
        var entropy = SeededEntropy(seed: 2)
        #expect(throws: RSAError.dataTooLong(length: 145, maximum: 144)) {
            _ = try key.encryptWithRSAPad([UInt8](repeating: 1, count: 145), entropy: &entropy)
        }
        #expect(throws: RSAError.dataTooLong(length: 236, maximum: 235)) {
            _ = try key.encryptWithOldScheme([UInt8](repeating: 1, count: 236), entropy: &entropy)
        }
    }

    @Test func badComponentsAreRejected() {
        #expect(throws: RSAError.malformedKey("the modulus is not a usable number")) { try RSAPublicKey(modulus: [0], exponent: [3]) }
        #expect(throws: RSAError.malformedKey("the exponent is zero")) { try RSAPublicKey(modulus: [0x0D, 0x8B], exponent: [0, 0]) }
    }

    @Test func malformedPEMsAreTypedErrors() {
        #expect(throws: RSAError.noPEMBlock) { try RSAPublicKey(pem: "not a key") }
        #expect(throws: RSAError.noPEMBlock) { try RSAPublicKey(pem: "-----BEGIN RSA PUBLIC KEY-----\nAAAA\n") }
        #expect(throws: RSAError.unsupportedPEMLabel("CERTIFICATE")) {
            try RSAPublicKey(pem: "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----")
        }
        #expect(throws: RSAError.malformedKey("the PEM body is not valid base64")) {
            try RSAPublicKey(pem: "-----BEGIN RSA PUBLIC KEY-----\n!!!!\n-----END RSA PUBLIC KEY-----")
        }
        #expect(throws: RSAError.malformedKey("the DER is not a PKCS#1 RSAPublicKey")) {
            try RSAPublicKey(pem: "-----BEGIN RSA PUBLIC KEY-----\nAAAA\n-----END RSA PUBLIC KEY-----")
        }
        #expect(throws: RSAError.malformedKey("the DER is not an X.509 SubjectPublicKeyInfo")) {
            try RSAPublicKey(pem: "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----")
        }
        // A truncated real key.
        let truncated = TestKeys.publicKey2048PKCS1.split(separator: "\n").enumerated()
            .filter { $0.offset != 2 }.map(\.element).joined(separator: "\n")
        #expect(throws: RSAError.self) { try RSAPublicKey(pem: truncated) }
    }

    /// Garbage and mutated keys only ever produce a key or a typed error.
    @Test func mutatedKeysNeverCrash() throws {
        var entropy = SeededEntropy(seed: 17)
        let der = try RSAPublicKey(pem: TestKeys.publicKey2048SPKI).pkcs1DER
        var accepted = 0
        for round in 0..<2000 {
            var mutated = der
            if round % 3 == 0 {
                mutated = entropy.bytes(Int(entropy.bytes(1)[0]))
            } else {
                for _ in 0..<(1 + round % 4) {
                    let index = Int(entropy.bytes(2).reduce(0) { $0 << 8 | Int($1) }) % mutated.count
                    mutated[index] = entropy.bytes(1)[0]
                }
                if round % 5 == 0 { mutated = Array(mutated.prefix(Int(entropy.bytes(1)[0]))) }
            }
            do {
                _ = try RSAPublicKey(pkcs1DER: mutated)
                accepted += 1
            } catch {
                #expect(!error.description.isEmpty)
            }
            #expect(throws: RSAError.self) { _ = try RSAPublicKey(subjectPublicKeyInfoDER: mutated) }
        }
        // Changing modulus bytes keeps a valid structure: some mutations must still parse.
        #expect(accepted > 0)
    }

    @Test func nonRSASubjectPublicKeyInfoIsRejected() {
        // SEQUENCE { SEQUENCE { OID 1.2.840.10045.2.1 (EC) }, BIT STRING { 0 } }
        let der: [UInt8] = [0x30, 0x0F, 0x30, 0x09, 0x06, 0x07, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x02, 0x01, 0x03, 0x02, 0x00, 0x00]
        #expect(throws: RSAError.malformedKey("the key is not an RSA key")) { try RSAPublicKey(subjectPublicKeyInfoDER: der) }
    }

    @Test func errorsExplainThemselves() {
        let errors: [RSAError] = [
            .noPEMBlock, .unsupportedPEMLabel("X"), .malformedKey("y"), .unsupportedModulusSize(bits: 1),
            .dataTooLong(length: 1, maximum: 0), .valueNotBelowModulus, .invalidCiphertextLength(length: 1, expected: 2),
            .hashMismatch, .malformedPlaintext, .openSSL("z"),
        ]
        #expect(Set(errors.map(\.description)).count == errors.count)
    }
}
