import Testing
@testable import MTProtoCrypto

@Suite("Diffie-Hellman")
struct DiffieHellmanTests {
    @Test func specSampleGroupAndKeys() throws {
        let answer = hex(SpecVectors.answer)
        let prime = Array(answer[44..<300])
        #expect(prime == DHGroup.telegramPrime)
        let group = try DHGroup(prime: prime, generator: 3)
        // g_b = 3^b mod dh_prime, auth_key = g_a^b mod dh_prime, as the sample computes them.
        #expect(group.publicValue(secret: hex(SpecVectors.b)) == hex(SpecVectors.gB))
        try group.checkPublicValue(SpecVectors.gA)
        try group.checkPublicValue(hex(SpecVectors.gB))
        #expect(try group.sharedKey(peerPublicValue: SpecVectors.gA, secret: hex(SpecVectors.b)) == hex(SpecVectors.authKey))
    }

    @Test func bothSidesAgreeAndTheRawFormIsMinimal() throws {
        let group = try DHGroup.telegram(generator: 3)
        var entropy = SeededEntropy(seed: 21)
        for _ in 0..<4 {
            let client = group.generateKeyPair(entropy: &entropy)
            let server = group.generateKeyPair(entropy: &entropy)
            let clientKey = try group.sharedKey(peerPublicValue: server.publicValue, secret: client.secret)
            let serverKey = try group.sharedKey(peerPublicValue: client.publicValue, secret: server.secret)
            #expect(clientKey == serverKey && clientKey.count == 256)
            let raw = try group.rawSharedKey(peerPublicValue: server.publicValue, secret: client.secret)
            #expect(raw.first != 0 && [UInt8](repeating: 0, count: 256 - raw.count) + raw == clientKey)
        }
    }

    @Test func secretsComeFromTheEntropySource() {
        var a = SeededEntropy(seed: 5), b = SeededEntropy(seed: 5)
        #expect(DHGroup.generateSecret(entropy: &a) == b.bytes(256))
    }

    @Test("every allowed generator with its residue condition", arguments: Int32(2)...7)
    func generatorConditions(g: Int32) throws {
        let p = BigNumber(bytes: DHGroup.telegramPrime)
        let residue: Bool
        switch g {
        case 2: residue = p.modulo(8) == 7
        case 3: residue = p.modulo(3) == 2
        case 4: residue = true
        case 5: residue = [1, 4].contains(p.modulo(5))
        case 6: residue = [19, 23].contains(p.modulo(24))
        default: residue = [3, 5, 6].contains(p.modulo(7))
        }
        // Euler's criterion, g^((p-1)/2) mod p == 1, is the definition the shortcut must agree with.
        let half = BigNumber.sub(p, BigNumber(1)).shiftedRight(by: 1)
        let euler = BigNumber.modExp(BigNumber(UInt64(g)), half, p).compare(BigNumber(1)) == 0
        #expect(residue == euler)
        if residue {
            #expect(try DHGroup.telegram(generator: g).generator == g)
        } else {
            #expect(throws: DHError.generatorNotQuadraticResidue(generator: g)) { try DHGroup.telegram(generator: g) }
        }
    }

    @Test("generators outside 2...7", arguments: [Int32(-1), 0, 1, 8, 1000])
    func generatorOutOfRange(g: Int32) {
        #expect(throws: DHError.generatorOutOfRange(g)) { try DHGroup.telegram(generator: g) }
    }

    @Test func primeSizeIsChecked() {
        #expect(throws: DHError.primeWrongSize(bits: 2047)) { try DHGroup(prime: [0x7F] + [UInt8](repeating: 0xFF, count: 255), generator: 3) }
        #expect(throws: DHError.primeWrongSize(bits: 2049)) { try DHGroup(prime: [1] + DHGroup.telegramPrime, generator: 3) }
        #expect(throws: DHError.primeWrongSize(bits: 0)) { try DHGroup(prime: [], generator: 3) }
    }

    /// RFC 3526 group 14: a 2048-bit safe prime that is not Telegram's, so it takes the full
    /// primality path (p mod 24 = 23 and p mod 5 = 4, p mod 7 = 5: every g in 2...7 is a residue).
    static let rfc3526Group14 = hex("""
        FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B139B22514A08798E3404DD\
        EF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED\
        EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF0598DA48361C55D39A69163FA8FD24CF5F\
        83655D23DCA3AD961C62F356208552BB9ED529077096966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B\
        E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF6955817183995497CEA956AE515D2261898FA0510\
        15728E5A8AACAA68FFFFFFFFFFFFFFFF
        """)

    @Test func anotherSafePrimePassesTheFullCheck() throws {
        let group = try DHGroup(prime: Self.rfc3526Group14, generator: 2)
        #expect(group.prime == Self.rfc3526Group14)
        // Proven once, remembered: a second group with the same prime is accepted as well.
        #expect(DHGroup.provenSafePrimes.withLock { $0.contains(Self.rfc3526Group14) })
        #expect(try DHGroup(prime: Self.rfc3526Group14, generator: 4).generator == 4)
        for g in Int32(2)...7 { #expect(try DHGroup(prime: Self.rfc3526Group14, generator: g).generator == g) }
        var entropy = SeededEntropy(seed: 9)
        let a = group.generateKeyPair(entropy: &entropy), b = group.generateKeyPair(entropy: &entropy)
        #expect(try group.sharedKey(peerPublicValue: b.publicValue, secret: a.secret) == group.sharedKey(peerPublicValue: a.publicValue, secret: b.secret))
    }

    @Test func leadingZerosInThePrimeAreAccepted() throws {
        #expect(try DHGroup(prime: [0, 0] + DHGroup.telegramPrime, generator: 3).prime == DHGroup.telegramPrime)
    }

    @Test func compositePrimeIsRejected() {
        // Telegram's prime + 2: odd, 2048 bits, composite; g = 4 has no residue condition to trip first.
        var composite = DHGroup.telegramPrime
        composite[255] = composite[255] &+ 2
        let candidate = BigNumber(bytes: composite)
        #expect(!candidate.isProbablePrime)
        #expect(throws: DHError.primeNotPrime) { try DHGroup(prime: composite, generator: 4) }
    }

    @Test func primeThatIsNotSafeIsRejected() throws {
        // The largest 2048-bit prime whose (q - 1) / 2 is composite: deterministic, found in a few hundred steps.
        var candidate = BigNumber.sub(BigNumber.powerOfTwo(2048), BigNumber(1))
        while true {
            if candidate.isProbablePrime && !candidate.shiftedRight(by: 1).isProbablePrime { break }
            candidate = BigNumber.sub(candidate, BigNumber(2))
        }
        let bytes = candidate.bytes(paddedTo: 256)
        #expect(throws: DHError.primeNotSafe) { try DHGroup(prime: bytes, generator: 4) }
    }

    @Test func publicValueBounds() throws {
        let group = try DHGroup.telegram(generator: 3)
        let p = BigNumber(bytes: group.prime)
        let one = BigNumber(1)
        func bytes(_ n: BigNumber) -> [UInt8] { n.bytes(paddedTo: 256) }
        let bound = BigNumber.powerOfTwo(2048 - 64)
        for outside in [BigNumber(0), one, BigNumber.sub(p, one), p] {
            #expect(throws: DHError.publicValueOutOfRange) { try group.checkPublicValue(bytes(outside)) }
        }
        for near in [BigNumber(2), BigNumber.sub(bound, one), BigNumber.add(BigNumber.sub(p, bound), one), BigNumber.sub(p, BigNumber(2))] {
            #expect(throws: DHError.publicValueTooCloseToBounds) { try group.checkPublicValue(bytes(near)) }
        }
        try group.checkPublicValue(bytes(bound))
        try group.checkPublicValue(bytes(BigNumber.sub(p, bound)))
        #expect(throws: DHError.publicValueTooLong(byteCount: 257)) { try group.checkPublicValue([1] + [UInt8](repeating: 0, count: 256)) }
        #expect(throws: DHError.publicValueOutOfRange) {
            _ = try group.sharedKey(peerPublicValue: [1], secret: [UInt8](repeating: 7, count: 256))
        }
    }

    @Test func modularArithmeticHelpers() {
        #expect(ModularArithmetic.power([4], [13], modulus: [0x01, 0xF1]) == [0x01, 0xBD])  // 4^13 mod 497 = 445
        #expect(ModularArithmetic.secretPower([4], [13], modulus: [0x01, 0xF1]) == [0x01, 0xBD])
        #expect(ModularArithmetic.power([3], hex(SpecVectors.b), modulus: DHGroup.telegramPrime) == hex(SpecVectors.gB))
    }

    @Test func errorsExplainThemselves() {
        let errors: [DHError] = [
            .primeWrongSize(bits: 1), .primeNotPrime, .primeNotSafe, .generatorOutOfRange(9), .generatorNotQuadraticResidue(generator: 2),
            .publicValueOutOfRange, .publicValueTooCloseToBounds, .publicValueTooLong(byteCount: 300),
        ]
        for error in errors { #expect(error.description.contains("abort")) }
    }
}
