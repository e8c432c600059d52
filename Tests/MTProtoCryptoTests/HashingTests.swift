import Testing
import MTProtoCrypto

@Suite("SHA-1 / SHA-256")
struct HashingTests {
    // FIPS 180 "abc" examples.
    @Test func knownAnswers() {
        #expect(Hashing.sha1(Array("abc".utf8)) == hex("a9993e364706816aba3e25717850c26c9cd0d89d"))
        #expect(Hashing.sha256(Array("abc".utf8)) == hex("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"))
        #expect(Hashing.sha1([]) == hex("da39a3ee5e6b4b0d3255bfef95601890afd80709"))
        #expect(Hashing.sha256([]) == hex("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"))
    }

    @Test func partsHashAsTheirConcatenation() {
        let parts: [[UInt8]] = [Array("a".utf8), [], Array("bc".utf8)]
        #expect(Hashing.sha1(parts: parts) == Hashing.sha1(Array("abc".utf8)))
        #expect(Hashing.sha256(parts: parts) == Hashing.sha256(Array("abc".utf8)))
        let raw = Array("ab".utf8).withUnsafeBytes { prefix in
            Array("c".utf8).withUnsafeBytes { Hashing.sha256(prefix, $0) }
        }
        #expect(raw == Hashing.sha256(Array("abc".utf8)))
    }
}
