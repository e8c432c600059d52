import Testing

@testable import MTProtoCrypto

@Suite struct AESCTRTests {
    // NIST SP 800-38A, F.5.5 CTR-AES256.Encrypt.
    static let key = hex("603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4")
    static let counter = hex("f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff")
    static let plaintext = hex(
        "6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e5130c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710")
    static let ciphertext = hex(
        "601ec313775789a5b7a7f504bbf3d228f443e3ca4d62b59aca84e990cacaf5c52b0930daa23de94ce87017ba2d84988ddfc9c58db67aada613c2dd08457941a6")

    static func hex(_ text: String) -> [UInt8] {
        var bytes: [UInt8] = []
        var index = text.startIndex
        while index < text.endIndex {
            let next = text.index(index, offsetBy: 2)
            bytes.append(UInt8(text[index..<next], radix: 16) ?? 0)
            index = next
        }
        return bytes
    }

    @Test func matchesNISTVectorInOneCall() throws {
        let stream = try AESCTR(key: Self.key, iv: Self.counter)
        #expect(stream.applied(to: Self.plaintext) == Self.ciphertext)
    }

    /// The counter and the unused keystream carry over between calls: any split gives the same bytes.
    @Test(arguments: [1, 3, 7, 16, 17, 31])
    func keepsItsStateAcrossCalls(chunk: Int) throws {
        let stream = try AESCTR(key: Self.key, iv: Self.counter)
        var output: [UInt8] = []
        var offset = 0
        while offset < Self.plaintext.count {
            let end = min(offset + chunk, Self.plaintext.count)
            output += stream.applied(to: Array(Self.plaintext[offset..<end]))
            offset = end
        }
        #expect(output == Self.ciphertext)
    }

    @Test func decryptingIsTheSameOperation() throws {
        let stream = try AESCTR(key: Self.key, iv: Self.counter)
        #expect(stream.applied(to: Self.ciphertext) == Self.plaintext)
    }

    @Test func wrongSizesAreTypedErrors() {
        #expect(throws: AESCTRError.invalidKeyLength(16)) { try AESCTR(key: Array(Self.key.prefix(16)), iv: Self.counter) }
        #expect(throws: AESCTRError.invalidIVLength(8)) { try AESCTR(key: Self.key, iv: Array(Self.counter.prefix(8))) }
    }

    // RFC 4231 test case 2.
    @Test func hmacSHA256MatchesRFC4231() {
        let digest = Hashing.hmacSHA256(key: Array("Jefe".utf8), data: Array("what do ya want for nothing?".utf8))
        #expect(digest == Self.hex("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"))
    }
}
