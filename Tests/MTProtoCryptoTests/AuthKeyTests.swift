import Testing
import MTProtoCrypto

@Suite("AuthKey")
struct AuthKeyTests {
    @Test func idAndAuxHashMatchTelethon() throws {
        let key = try AuthKey(hex(TelethonVectors.authKey))
        #expect(UInt64(bitPattern: key.id) == TelethonVectors.authKeyID)
        // Telethon reads aux_hash as a little-endian long; we keep the 8 digest bytes.
        let aux = key.auxHash.enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
        #expect(aux == TelethonVectors.authKeyAuxHash)
        #expect(key.idBytes.count == 8)
    }

    @Test func idIsTheLast8BytesOfSHA1LittleEndian() throws {
        let bytes = hex(SpecVectors.authKey)
        let key = try AuthKey(bytes)
        let digest = Hashing.sha1(bytes)
        #expect(key.idBytes == Array(digest[12..<20]))
        #expect(key.auxHash == Array(digest[0..<8]))
    }

    @Test("wrong lengths are typed errors", arguments: [0, 255, 257, 512])
    func wrongLength(length: Int) {
        #expect(throws: AuthKeyError.invalidLength(length)) { try AuthKey([UInt8](repeating: 1, count: length)) }
    }

    @Test func minimalFormIsLeftPadded() throws {
        var bytes = hex(TelethonVectors.authKey)
        bytes[0] = 0
        let padded = try AuthKey(bytes)
        let minimal = try AuthKey(minimalBigEndian: Array(bytes.dropFirst()))
        #expect(padded == minimal)
        #expect(minimal.bytes.count == 256)
        #expect(throws: AuthKeyError.invalidLength(257)) { try AuthKey(minimalBigEndian: [UInt8](repeating: 1, count: 257)) }
    }

    @Test func descriptionNeverShowsKeyBytes() throws {
        let bytes = hex(TelethonVectors.authKey)
        let key = try AuthKey(bytes)
        let fragment = hexString(Array(bytes[0..<4]))
        for text in [key.description, key.debugDescription, String(describing: key), String(reflecting: key)] {
            #expect(!text.lowercased().contains(fragment))
            #expect(text.contains("AuthKey"))
        }
        #expect(AuthKeyError.invalidLength(3).description.contains("256"))
    }

    @Test func equalityIsByBytes() throws {
        let a = try AuthKey(hex(TelethonVectors.authKey))
        var other = hex(TelethonVectors.authKey)
        other[255] ^= 1
        #expect(a == (try AuthKey(hex(TelethonVectors.authKey))))
        #expect(a != (try AuthKey(other)))
    }
}
