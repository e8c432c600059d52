import Testing
import MTProtoCrypto

@Suite("RSA private keys, RSA_PAD and the old scheme")
struct RSAPrivateKeyTests {
    let key: RSAPrivateKey

    init() throws { key = try RSAPrivateKey(pem: TestKeys.privateKey2048PKCS8) }

    @Test func loadsBothPEMFormsAndTheirPublicHalf() throws {
        let pkcs1 = try RSAPrivateKey(pem: TestKeys.privateKey2048PKCS1)
        #expect(pkcs1.publicKey == key.publicKey)
        #expect(key.publicKey == (try RSAPublicKey(pem: TestKeys.publicKey2048PKCS1)))
    }

    @Test func exportedPEMLoadsBack() throws {
        let pem = try key.pem()
        #expect(pem.hasPrefix("-----BEGIN PRIVATE KEY-----"))
        #expect(try RSAPrivateKey(pem: pem).publicKey == key.publicKey)
    }

    @Test func generatedKeyWorksEndToEnd() throws {
        let fresh = try RSAPrivateKey.generate()
        #expect(fresh.publicKey.bitCount == 2048)
        #expect(fresh.publicKey.exponent == [0x01, 0x00, 0x01])
        let reloaded = try RSAPrivateKey(pem: try fresh.pem())
        #expect(reloaded.publicKey == fresh.publicKey)
        var entropy = SeededEntropy(seed: 3)
        let data = entropy.bytes(100)
        let ciphertext = try RSAPublicKey(pem: fresh.publicKey.pkcs1PEM).encryptWithRSAPad(data, entropy: &entropy)
        #expect(Array(try reloaded.decryptRSAPad(ciphertext)[0..<100]) == data)
    }

    @Test func rawRoundTrip() throws {
        var entropy = SeededEntropy(seed: 4)
        let value = [0x00] + entropy.bytes(255)
        let ciphertext = try key.publicKey.rawEncrypt(value)
        #expect(ciphertext.count == 256)
        #expect(try key.rawDecrypt(ciphertext) == value)
    }

    @Test("RSA_PAD round trip for every allowed data length", arguments: [0, 1, 96, 143, 144])
    func rsaPadRoundTrip(length: Int) throws {
        var entropy = SeededEntropy(seed: UInt64(length))
        let data = entropy.bytes(length)
        let ciphertext = try key.publicKey.encryptWithRSAPad(data, entropy: &entropy)
        #expect(ciphertext.count == 256)
        let dataWithPadding = try key.decryptRSAPad(ciphertext)
        #expect(dataWithPadding.count == 192)
        #expect(Array(dataWithPadding[0..<length]) == data)
    }

    /// Replays the spec's step 4.1 by hand from the random bytes, and checks the library does the same.
    @Test func rsaPadFollowsTheSpecStepByStep() throws {
        var recorder = SeededEntropy(seed: 99)
        let data = hex("955FF5A9081460E7D3FA727791000000043C2357CF0000000456BFB29F00000015A084B3B9CA2A17F03925F44B78FE68D6701FCD212CEB87C966E5318F5564A8845FAD32D10A4C7967DA49A89FBE508AD24AA3150992B499B3B2C72CDC0F364C02000000")
        let padding = recorder.bytes(192 - data.count)
        var tempKey = recorder.bytes(32)
        var entropy = SeededEntropy(seed: 99)
        let ciphertext = try key.publicKey.encryptWithRSAPad(data, entropy: &entropy)

        let dataWithPadding = data + padding
        var keyAESEncrypted: [UInt8]
        let modulus = key.publicKey.modulus
        repeat {
            let dataWithHash = Array(dataWithPadding.reversed()) + Hashing.sha256(tempKey + dataWithPadding)
            let aesEncrypted = try AESIGE.encrypt(dataWithHash, key: tempKey, iv: [UInt8](repeating: 0, count: 32))
            let tempKeyXor = zip(tempKey, Hashing.sha256(aesEncrypted)).map { $0 ^ $1 }
            keyAESEncrypted = tempKeyXor + aesEncrypted
            if keyAESEncrypted.lexicographicallyPrecedes(modulus) { break }
            tempKey = recorder.bytes(32)
        } while true
        #expect(try key.publicKey.rawEncrypt(keyAESEncrypted) == ciphertext)
    }

    /// key_aes_encrypted is >= n for a fair share of temp_keys (n's top byte is below 0xFF); across
    /// fixed seeds some first attempts must fail, and every retry must still decrypt.
    @Test func rsaPadRetriesWhenTheValueIsNotBelowTheModulus() throws {
        struct Counting: EntropySource {
            var calls = 0
            var seeded: SeededEntropy
            mutating func fill(_ buffer: UnsafeMutableRawBufferPointer) {
                calls += 1
                seeded.fill(buffer)
            }
        }
        var retried = 0
        for seed in 0..<40 {
            var entropy = Counting(seeded: SeededEntropy(seed: UInt64(seed)))
            let data: [UInt8] = Array(0..<50)
            let ciphertext = try key.publicKey.encryptWithRSAPad(data, entropy: &entropy)
            #expect(Array(try key.decryptRSAPad(ciphertext)[0..<50]) == data)
            if entropy.calls > 2 { retried += 1 }
        }
        #expect(retried > 0)
    }

    /// One key serves many connections at once (the test DC): concurrent decryptions must all succeed.
    @Test func concurrentDecryptionsWithOneKey() async throws {
        var entropy = SeededEntropy(seed: 40)
        let inputs = (0..<8).map { _ in entropy.bytes(120) }
        var ciphertexts: [[UInt8]] = []
        for input in inputs { ciphertexts.append(try key.publicKey.encryptWithRSAPad(input, entropy: &entropy)) }
        let shared = key
        let results = try await withThrowingTaskGroup(of: (Int, [UInt8]).self) { group in
            for (index, ciphertext) in ciphertexts.enumerated() {
                group.addTask { (index, Array(try shared.decryptRSAPad(ciphertext)[0..<120])) }
            }
            var collected = [[UInt8]](repeating: [], count: inputs.count)
            for try await (index, plaintext) in group { collected[index] = plaintext }
            return collected
        }
        #expect(results == inputs)
    }

    @Test func tamperedRSAPadIsAHashMismatch() throws {
        var entropy = SeededEntropy(seed: 6)
        let plaintext = try key.rawDecrypt(try key.publicKey.encryptWithRSAPad(Array(0..<64), entropy: &entropy))
        var tampered = plaintext
        tampered[200] ^= 1
        let ciphertext = try key.publicKey.rawEncrypt(tampered)
        #expect(throws: RSAError.hashMismatch) { _ = try key.decryptRSAPad(ciphertext) }
    }

    @Test func oldSchemeRoundTripAndHashCheck() throws {
        var entropy = SeededEntropy(seed: 8)
        let data = entropy.bytes(96)
        let ciphertext = try key.publicKey.encryptWithOldScheme(data, entropy: &entropy)
        let plaintext = try key.decryptOldScheme(ciphertext)
        #expect(plaintext.dataWithPadding.count == 235)
        #expect(try plaintext.data(length: 96) == data)
        #expect(throws: RSAError.hashMismatch) { _ = try plaintext.data(length: 95) }
        #expect(throws: RSAError.dataTooLong(length: 236, maximum: 235)) { _ = try plaintext.data(length: 236) }
        #expect(throws: RSAError.dataTooLong(length: -1, maximum: 235)) { _ = try plaintext.data(length: -1) }
    }

    @Test func oldSchemeBlockMustStartWithZero() throws {
        let ciphertext = try key.publicKey.rawEncrypt([0x01] + [UInt8](repeating: 7, count: 255))
        #expect(throws: RSAError.malformedPlaintext) { _ = try key.decryptOldScheme(ciphertext) }
    }

    @Test func ciphertextChecks() throws {
        #expect(throws: RSAError.invalidCiphertextLength(length: 255, expected: 256)) {
            _ = try key.decryptRSAPad([UInt8](repeating: 1, count: 255))
        }
        #expect(throws: RSAError.valueNotBelowModulus) { _ = try key.rawDecrypt([UInt8](repeating: 0xFF, count: 256)) }
    }

    @Test func smallKeysCannotCarryMTProtoPayloads() throws {
        let small = try RSAPrivateKey(pem: TestKeys.privateKey1024PKCS8)
        #expect(small.publicKey.bitCount == 1024)
        #expect(throws: RSAError.unsupportedModulusSize(bits: 1024)) { _ = try small.decryptRSAPad([UInt8](repeating: 1, count: 128)) }
        #expect(throws: RSAError.unsupportedModulusSize(bits: 1024)) { _ = try small.decryptOldScheme([UInt8](repeating: 1, count: 128)) }
    }

    @Test func badPrivatePEMs() {
        #expect(throws: RSAError.noPEMBlock) { try RSAPrivateKey(pem: "nothing here") }
        #expect(throws: RSAError.self) { try RSAPrivateKey(pem: "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----") }
        #expect(throws: RSAError.self) { try RSAPrivateKey(pem: TestKeys.publicKey2048PKCS1) }
    }
}
