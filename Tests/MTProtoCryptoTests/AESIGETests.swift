import Testing
@testable import MTProtoCrypto

@Suite("AES-256-IGE")
struct AESIGETests {
    /// Every backend this machine can run.
    static let backends: [AESIGE.Backend] = AESIGE.hardwareAccelerated ? [.aesni, .openSSL] : [.openSSL]

    // OpenSSL's test/igetest.c vectors (from Ben Laurie's IGE description); they use AES-128 keys.
    @Test("OpenSSL igetest vector 0 (encrypt)", arguments: backends)
    func publishedVectorEncrypt(backend: AESIGE.Backend) {
        let key = hex("000102030405060708090a0b0c0d0e0f")
        let iv = hex("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f")
        let plaintext = [UInt8](repeating: 0, count: 32)
        let expected = hex("1a8519a6557be652e9da8e43da4ef4453cf456b4ca488aa383c79c98b34797cb")
        #expect(AESIGE.aes128(.encrypt, plaintext, key: key, iv: iv, backend: backend) == expected)
        #expect(AESIGE.aes128(.decrypt, expected, key: key, iv: iv, backend: backend) == plaintext)
    }

    @Test("OpenSSL igetest vector 1 (decrypt)", arguments: backends)
    func publishedVectorDecrypt(backend: AESIGE.Backend) {
        let key = Array("This is an imple".utf8)
        let iv = Array("mentation of IGE mode for OpenSS".utf8)
        let input = Array("L. Let's hope Ben got it right!\n".utf8)
        let expected = hex("99706487a1cde613bc6de0b6f24b1c7aa448c8b9c3403e3467a8cad89340f53b")
        #expect(AESIGE.aes128(.decrypt, input, key: key, iv: iv, backend: backend) == expected)
        #expect(AESIGE.aes128(.encrypt, expected, key: key, iv: iv, backend: backend) == input)
    }

    /// FIPS-197 appendix C.3: checks the AES-NI AES-256 key schedule (both directions) on its own.
    @Test func fips197AES256Block() {
        guard AESIGE.hardwareAccelerated else { return }
        let key = hex("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f")
        let plaintext = hex("00112233445566778899aabbccddeeff")
        let expected = hex("8ea2b7ca516745bfeafc49904b496089")
        var output = [UInt8](repeating: 0, count: 16)
        caesniEncryptBlock(key: key, input: plaintext, output: &output)
        #expect(output == expected)
        caesniDecryptBlock(key: key, input: expected, output: &output)
        #expect(output == plaintext)
    }

    @Test("Telethon 1.45 encrypt_ige, byte for byte", arguments: backends)
    func telethonVectors(backend: AESIGE.Backend) throws {
        for vector in TelethonVectors.aesIGE {
            var data = hex(vector.plaintext)
            try AESIGE.encrypt(&data, key: hex(vector.key), iv: hex(vector.iv), backend: backend)
            #expect(data == hex(vector.ciphertext))
            try AESIGE.decrypt(&data, key: hex(vector.key), iv: hex(vector.iv), backend: backend)
            #expect(data == hex(vector.plaintext))
        }
    }

    @Test func copyingFormsMatchInPlaceForms() throws {
        let vector = TelethonVectors.aesIGE[3]
        let ciphertext = try AESIGE.encrypt(hex(vector.plaintext), key: hex(vector.key), iv: hex(vector.iv))
        #expect(ciphertext == hex(vector.ciphertext))
        #expect(try AESIGE.decrypt(ciphertext, key: hex(vector.key), iv: hex(vector.iv)) == hex(vector.plaintext))
    }

    @Test func bufferRegionFormsWorkInsideALargerBuffer() throws {
        let vector = TelethonVectors.aesIGE[2]
        var packet = [UInt8](repeating: 0xAA, count: 8) + hex(vector.plaintext) + [UInt8](repeating: 0xBB, count: 8)
        try packet.withUnsafeMutableBytes { buffer in
            let region = UnsafeMutableRawBufferPointer(rebasing: buffer[8..<(buffer.count - 8)])
            try AESIGE.encrypt(region, key: hex(vector.key), iv: hex(vector.iv))
        }
        #expect(Array(packet[8..<(packet.count - 8)]) == hex(vector.ciphertext))
        #expect(packet.prefix(8).allSatisfy { $0 == 0xAA } && packet.suffix(8).allSatisfy { $0 == 0xBB })
        try packet.withUnsafeMutableBytes { buffer in
            try AESIGE.decrypt(UnsafeMutableRawBufferPointer(rebasing: buffer[8..<(buffer.count - 8)]), key: hex(vector.key), iv: hex(vector.iv))
        }
        #expect(Array(packet[8..<(packet.count - 8)]) == hex(vector.plaintext))
    }

    @Test func backendsAgreeOnLargeRandomInput() throws {
        guard AESIGE.hardwareAccelerated else { return }
        var entropy = SeededEntropy(seed: 7)
        let key = entropy.bytes(32), iv = entropy.bytes(32)
        let plaintext = entropy.bytes(64 * 1024)
        var viaAESNI = plaintext, viaOpenSSL = plaintext
        try AESIGE.encrypt(&viaAESNI, key: key, iv: iv, backend: .aesni)
        try AESIGE.encrypt(&viaOpenSSL, key: key, iv: iv, backend: .openSSL)
        #expect(viaAESNI == viaOpenSSL)
        try AESIGE.decrypt(&viaAESNI, key: key, iv: iv, backend: .openSSL)
        try AESIGE.decrypt(&viaOpenSSL, key: key, iv: iv, backend: .aesni)
        #expect(viaAESNI == plaintext && viaOpenSSL == plaintext)
    }

    @Test func backendsAgreeOnEveryLengthUpTo2KiB() throws {
        guard AESIGE.hardwareAccelerated else { return }
        var entropy = SeededEntropy(seed: 8)
        for blocks in 1...128 {
            let key = entropy.bytes(32), iv = entropy.bytes(32)
            let plaintext = entropy.bytes(16 * blocks)
            var viaAESNI = plaintext, viaOpenSSL = plaintext
            try AESIGE.encrypt(&viaAESNI, key: key, iv: iv, backend: .aesni)
            try AESIGE.encrypt(&viaOpenSSL, key: key, iv: iv, backend: .openSSL)
            #expect(viaAESNI == viaOpenSSL)
            try AESIGE.decrypt(&viaAESNI, key: key, iv: iv, backend: .aesni)
            #expect(viaAESNI == plaintext)
        }
    }

    /// The per-packet form: raw key and IV, from one buffer into another or in place, either backend.
    @Test("run256 matches the array form, into another buffer and in place", arguments: backends)
    func rawFormMatchesTheArrayForm(backend: AESIGE.Backend) throws {
        var entropy = SeededEntropy(seed: 9)
        let key = entropy.bytes(32), iv = entropy.bytes(32)
        let plaintext = entropy.bytes(16 * 37)
        let expected = try AESIGE.encrypt(plaintext, key: key, iv: iv)
        var separate = [UInt8](repeating: 0, count: plaintext.count)
        var inPlace = plaintext
        key.withUnsafeBytes { key in
            iv.withUnsafeBytes { iv in
                plaintext.withUnsafeBytes { input in
                    separate.withUnsafeMutableBytes { AESIGE.run256(.encrypt, from: input, into: $0, key: key, iv: iv, backend: backend) }
                }
                inPlace.withUnsafeMutableBytes { AESIGE.run256(.encrypt, from: UnsafeRawBufferPointer($0), into: $0, key: key, iv: iv, backend: backend) }
            }
        }
        #expect(separate == expected && inPlace == expected)
        var decrypted = [UInt8](repeating: 0, count: expected.count)
        key.withUnsafeBytes { key in
            iv.withUnsafeBytes { iv in
                expected.withUnsafeBytes { input in
                    decrypted.withUnsafeMutableBytes { AESIGE.run256(.decrypt, from: input, into: $0, key: key, iv: iv, backend: backend) }
                }
            }
        }
        #expect(decrypted == plaintext)
    }

    @Test func emptyInputIsAllowedAndUnchanged() throws {
        #expect(try AESIGE.encrypt([], key: [UInt8](repeating: 1, count: 32), iv: [UInt8](repeating: 2, count: 32)) == [])
    }

    @Test("a length that is not whole blocks is a typed error", arguments: [1, 15, 17, 33, 1023])
    func partialBlock(length: Int) {
        let key = [UInt8](repeating: 1, count: 32), iv = [UInt8](repeating: 2, count: 32)
        #expect(throws: AESIGEError.lengthNotMultipleOfBlock(length: length)) {
            _ = try AESIGE.encrypt([UInt8](repeating: 0, count: length), key: key, iv: iv)
        }
        #expect(throws: AESIGEError.lengthNotMultipleOfBlock(length: length)) {
            var data = [UInt8](repeating: 0, count: length)
            try AESIGE.decrypt(&data, key: key, iv: iv)
        }
    }

    @Test func wrongKeyAndIVLengthsAreTypedErrors() {
        #expect(throws: AESIGEError.invalidKeyLength(16)) {
            _ = try AESIGE.encrypt([UInt8](repeating: 0, count: 16), key: [UInt8](repeating: 1, count: 16), iv: [UInt8](repeating: 2, count: 32))
        }
        #expect(throws: AESIGEError.invalidIVLength(16)) {
            _ = try AESIGE.decrypt([UInt8](repeating: 0, count: 16), key: [UInt8](repeating: 1, count: 32), iv: [UInt8](repeating: 2, count: 16))
        }
    }

    @Test func errorsExplainThemselves() {
        #expect(AESIGEError.lengthNotMultipleOfBlock(length: 17).description.contains("17 bytes"))
        #expect(AESIGEError.invalidKeyLength(3).description.contains("32 bytes"))
        #expect(AESIGEError.invalidIVLength(3).description.contains("IV"))
    }
}
