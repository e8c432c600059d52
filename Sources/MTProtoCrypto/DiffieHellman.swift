import Synchronization

/// A violation of the spec's Diffie-Hellman checks (`mtproto/auth_key`, `mtproto/security_guidelines`).
/// Each means the peer's parameters are unsafe: abort the handshake.
public enum DHError: Error, Equatable, Sendable, CustomStringConvertible {
    /// dh_prime must be 2048 bits: 2^2047 < p < 2^2048.
    case primeWrongSize(bits: Int)
    /// dh_prime is not prime.
    case primeNotPrime
    /// (dh_prime - 1) / 2 is not prime, so dh_prime is not a safe prime.
    case primeNotSafe
    /// g must be 2, 3, 4, 5, 6 or 7.
    case generatorOutOfRange(Int32)
    /// g is not a quadratic residue mod p, so it does not generate the prime-order subgroup.
    case generatorNotQuadraticResidue(generator: Int32)
    /// A public value (g_a, g_b, or SRP's g_b) is not within 1 < value < p - 1.
    case publicValueOutOfRange
    /// A public value is not within [2^(2048-64), p - 2^(2048-64)].
    case publicValueTooCloseToBounds
    /// A public value is longer than 256 bytes.
    case publicValueTooLong(byteCount: Int)

    public var description: String {
        switch self {
        case .primeWrongSize(let bits):
            "dh_prime has \(bits) bits; MTProto requires a 2048-bit safe prime. The server's DH parameters are unsafe: abort the handshake."
        case .primeNotPrime:
            "dh_prime is not prime; the server's DH parameters are unsafe: abort the handshake."
        case .primeNotSafe:
            "(dh_prime - 1) / 2 is not prime, so dh_prime is not a safe prime; the server's DH parameters are unsafe: abort the handshake."
        case .generatorOutOfRange(let g):
            "g = \(g) is not one of 2...7 as MTProto requires; abort the handshake."
        case .generatorNotQuadraticResidue(let g):
            "g = \(g) is not a quadratic residue modulo dh_prime (the p mod 4g condition fails), so it does not generate the prime-order subgroup; abort the handshake."
        case .publicValueOutOfRange:
            "a DH public value is not strictly between 1 and dh_prime - 1; the peer is broken or hostile: abort the handshake."
        case .publicValueTooCloseToBounds:
            "a DH public value is not within [2^1984, dh_prime - 2^1984] as the security guidelines require; abort the handshake (a client retries with a new secret when its own value fails)."
        case .publicValueTooLong(let count):
            "a DH public value of \(count) bytes cannot be below a 2048-bit prime; abort the handshake."
        }
    }
}

/// A checked Diffie-Hellman group (2048-bit safe prime p and generator g), with the operations the
/// handshake and SRP need. All numbers are big-endian byte arrays, as on the wire.
public struct DHGroup: Sendable, Equatable {
    /// dh_prime, 256 bytes big-endian.
    public let prime: [UInt8]
    public let generator: Int32

    /// Telegram's well-known dh_prime (spec page `mtproto/auth_key`), recognised without a primality test.
    public static let telegramPrime: [UInt8] = hexBytes("""
        C71CAEB9C6B1C9048E6C522F70F13F73980D40238E3E21C14934D037563D930F48198A0AA7C14058229493D22530F4DB\
        FA336F6E0AC925139543AED44CCE7C3720FD51F69458705AC68CD4FE6B6B13ABDC9746512969328454F18FAF8C595F64\
        2477FE96BB2A941D5BCD1D4AC8CC49880708FA9B378E3C4F3A9060BEE67CF9A4A4A695811051907E162753B56B0F6B41\
        0DBA74D8A84B2A14B3144E0EF1284754FD17ED950D5965B4B9DD46582DB1178D169C6BC465B0D6FF9CA3928FEF5B9AE4\
        E418FC15E83EBEA0F87FA9FF5EED70050DED2849F47BF959D956850CE929851F0D8115F635B105EE2E4E15D04B2454BF\
        6F4FADF034B10403119CD8E3B92FCC5B
        """)

    /// Checks p and g as the spec demands: 2048-bit safe prime (Telegram's own prime is trusted
    /// without the slow test), g in 2...7, and g a quadratic residue mod p.
    public init(prime: [UInt8], generator: Int32) throws(DHError) {
        let p = BigNumber(bytes: prime)
        guard p.bitCount == 2048 else { throw .primeWrongSize(bits: p.bitCount) }
        try DHGroup.checkGenerator(generator, prime: p)
        let canonical = p.bytes(paddedTo: 256)
        let known = canonical == DHGroup.telegramPrime || DHGroup.provenSafePrimes.withLock { $0.contains(canonical) }
        if !known {
            guard p.isProbablePrime else { throw .primeNotPrime }
            guard p.shiftedRight(by: 1).isProbablePrime else { throw .primeNotSafe }
            DHGroup.provenSafePrimes.withLock { proven in
                if proven.count < DHGroup.provenSafePrimesLimit { proven.insert(canonical) }
            }
        }
        self.prime = canonical
        self.generator = generator
    }

    /// Safe primes already proven in this process: the two primality tests take a few hundred
    /// milliseconds, and the spec suggests caching the result since servers rarely change p.
    static let provenSafePrimes = Mutex<Set<[UInt8]>>([])
    /// A bound, so a hostile server cannot grow the cache without end.
    static let provenSafePrimesLimit = 16

    /// Telegram's prime with a generator (checked like any other).
    public static func telegram(generator: Int32) throws(DHError) -> DHGroup {
        try DHGroup(prime: telegramPrime, generator: generator)
    }

    /// The quadratic-residue condition on p mod 4g for each allowed g (spec page `mtproto/auth_key`).
    static func checkGenerator(_ g: Int32, prime p: BigNumber) throws(DHError) {
        let residue: Bool
        switch g {
        case 2: residue = p.modulo(8) == 7
        case 3: residue = p.modulo(3) == 2
        case 4: residue = true
        case 5: residue = [1, 4].contains(p.modulo(5))
        case 6: residue = [19, 23].contains(p.modulo(24))
        case 7: residue = [3, 5, 6].contains(p.modulo(7))
        default: throw .generatorOutOfRange(g)
        }
        guard residue else { throw .generatorNotQuadraticResidue(generator: g) }
    }

    /// Checks a peer's (or our own) public value: 1 < value < p - 1 and
    /// 2^(2048-64) <= value <= p - 2^(2048-64).
    public func checkPublicValue(_ value: [UInt8]) throws(DHError) {
        try DHGroup.checkPublicValue(value, prime: BigNumber(bytes: prime))
    }

    static func checkPublicValue(_ value: [UInt8], prime p: BigNumber) throws(DHError) {
        guard Bytes.minimal(value).count <= 256 else { throw .publicValueTooLong(byteCount: value.count) }
        let x = BigNumber(bytes: value)
        let one = BigNumber(1)
        let pMinusOne = BigNumber.sub(p, one)
        guard x.compare(one) > 0, x.compare(pMinusOne) < 0 else { throw .publicValueOutOfRange }
        let bound = BigNumber.powerOfTwo(2048 - 64)
        guard x.compare(bound) >= 0, x.compare(BigNumber.sub(p, bound)) <= 0 else { throw .publicValueTooCloseToBounds }
    }

    /// A fresh 2048-bit secret exponent (a or b) from `entropy`.
    public static func generateSecret(entropy: inout some EntropySource) -> [UInt8] {
        entropy.bytes(256)
    }

    /// g^secret mod p, 256 bytes big-endian.
    public func publicValue(secret: [UInt8]) -> [UInt8] {
        DHGroup.power(BigNumber(UInt64(generator)), secret: secret, prime: BigNumber(bytes: prime)).bytes(paddedTo: 256)
    }

    /// A secret and its public value, drawing new secrets until the public value passes the checks
    /// (so our own g_a/g_b never trips the peer's range check).
    public func generateKeyPair(entropy: inout some EntropySource) -> (secret: [UInt8], publicValue: [UInt8]) {
        while true {
            let secret = DHGroup.generateSecret(entropy: &entropy)
            let value = publicValue(secret: secret)
            if (try? checkPublicValue(value)) != nil { return (secret, value) }
        }
    }

    /// The shared key (auth_key): peer^secret mod p as exactly 256 big-endian bytes, after checking
    /// the peer's value.
    public func sharedKey(peerPublicValue: [UInt8], secret: [UInt8]) throws(DHError) -> [UInt8] {
        try rawSharedKey(peerPublicValue: peerPublicValue, secret: secret).paddedTo256
    }

    /// The shared key in minimal big-endian form (leading zero bytes dropped), as Telethon keeps it.
    public func rawSharedKey(peerPublicValue: [UInt8], secret: [UInt8]) throws(DHError) -> [UInt8] {
        let p = BigNumber(bytes: prime)
        try DHGroup.checkPublicValue(peerPublicValue, prime: p)
        return DHGroup.power(BigNumber(bytes: peerPublicValue), secret: secret, prime: p).bytes
    }

    /// base^secret mod p with the exponent marked secret (OpenSSL's constant-time ladder).
    static func power(_ base: BigNumber, secret: [UInt8], prime: BigNumber) -> BigNumber {
        let exponent = BigNumber(bytes: secret)
        exponent.markSecret()
        return BigNumber.modExp(base, exponent, prime)
    }

    static func hexBytes(_ text: String) -> [UInt8] {
        var result = [UInt8]()
        var pending: UInt8?
        for scalar in text.unicodeScalars {
            guard let nibble = UInt8(String(scalar), radix: 16) else { continue }
            if let high = pending {
                result.append(high << 4 | nibble)
                pending = nil
            } else {
                pending = nibble
            }
        }
        return result
    }
}

extension Array where Element == UInt8 {
    fileprivate var paddedTo256: [UInt8] { [UInt8](repeating: 0, count: 256 - count) + self }
}

/// Modular exponentiation on big-endian byte arrays through OpenSSL (variable time: for public
/// exponents such as RSA's e; secrets go through DHGroup).
public enum ModularArithmetic {
    /// base^exponent mod modulus as minimal big-endian bytes. Precondition: modulus is not zero.
    public static func power(_ base: [UInt8], _ exponent: [UInt8], modulus: [UInt8]) -> [UInt8] {
        let m = BigNumber(bytes: modulus)
        precondition(!m.isZero, "modular exponentiation by a zero modulus")
        return BigNumber.modExp(BigNumber(bytes: base), BigNumber(bytes: exponent), m).bytes
    }

    /// base^exponent mod modulus with the exponent treated as secret (constant-time path).
    public static func secretPower(_ base: [UInt8], _ exponent: [UInt8], modulus: [UInt8]) -> [UInt8] {
        let m = BigNumber(bytes: modulus)
        precondition(!m.isZero && m.modulo(2) == 1, "constant-time modular exponentiation needs an odd modulus")
        return DHGroup.power(BigNumber(bytes: base), secret: exponent, prime: m).bytes
    }
}
