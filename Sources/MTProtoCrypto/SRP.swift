import COpenSSL

/// Why a 2FA (SRP) computation was refused.
public enum SRPError: Error, Equatable, Sendable, CustomStringConvertible {
    /// p or g failed the Diffie-Hellman checks.
    case unsafeGroup(DHError)
    /// srp_B is not within 0 < B < p.
    case serverValueOutOfRange
    /// g_b = B - k*v mod p is outside the safe window (2^1983 bits on both sides), so the password
    /// proof would leak: the server is broken or hostile.
    case unsafeServerValue
    /// The client's A is not within 0 < A < p.
    case clientValueOutOfRange

    public var description: String {
        switch self {
        case .unsafeGroup(let error):
            "the 2FA password parameters are unsafe: \(error)"
        case .serverValueOutOfRange:
            "srp_B is not between 0 and p; refetch account.getPassword and try again, and do not send the password proof."
        case .unsafeServerValue:
            "srp_B yields an unsafe g_b; refetch account.getPassword and try again, and do not send the password proof."
        case .clientValueOutOfRange:
            "the client's SRP value A is not between 0 and p; reject the check."
        }
    }
}

/// The client's proof for inputCheckPasswordSRP: A (srp_A, 256 bytes) and M1 (32 bytes).
public struct SRPCheck: Sendable, Equatable {
    public let a: [UInt8]
    public let m1: [UInt8]

    public init(a: [UInt8], m1: [UInt8]) {
        self.a = a
        self.m1 = m1
    }
}

/// Telegram's 2FA: passwordKdfAlgoSHA256SHA256PBKDF2HMACSHA512iter100000SHA256ModPow (spec page
/// `api/srp`), client and server sides.
public enum SRP {
    /// The parameters of the current password, as account.password carries them.
    public struct Parameters: Sendable, Equatable {
        public let salt1: [UInt8]
        public let salt2: [UInt8]
        public let g: Int32
        /// p, big-endian (256 bytes).
        public let p: [UInt8]

        public init(salt1: [UInt8], salt2: [UInt8], g: Int32, p: [UInt8]) {
            self.salt1 = salt1
            self.salt2 = salt2
            self.g = g
            self.p = p
        }
    }

    /// x = PH2(password, salt1, salt2) = SH(pbkdf2(sha512, PH1, salt1, 100000), salt2),
    /// PH1 = SH(SH(password, salt1), salt2), SH(data, salt) = SHA256(salt + data + salt).
    public static func passwordHash(password: String, salt1: [UInt8], salt2: [UInt8]) -> [UInt8] {
        let hash1 = Hashing.sha256(parts: [salt1, Array(password.utf8), salt1])
        let hash2 = Hashing.sha256(parts: [salt2, hash1, salt2])
        let hash3 = pbkdf2SHA512(password: hash2, salt: salt1, iterations: 100_000, length: 64)
        return Hashing.sha256(parts: [salt2, hash3, salt2])
    }

    /// The verifier v = g^x mod p (256 bytes) that a server stores instead of the password.
    public static func verifier(password: String, parameters: Parameters) throws(SRPError) -> [UInt8] {
        let group = try checkedGroup(parameters)
        let x = passwordHash(password: password, salt1: parameters.salt1, salt2: parameters.salt2)
        return verifier(passwordHash: x, group: group)
    }

    static func verifier(passwordHash x: [UInt8], group: DHGroup) -> [UInt8] {
        let p = BigNumber(bytes: group.prime)
        return DHGroup.power(BigNumber(UInt64(group.generator)), secret: x, prime: p).bytes(paddedTo: 256)
    }

    /// The client's proof (A, M1) for the password, against the server's srp_B. `a` is drawn from
    /// `entropy` (256 bytes), redrawn until A is safe and u is not zero.
    public static func computeCheck(
        password: String, parameters: Parameters, srpB: [UInt8], entropy: inout some EntropySource
    ) throws(SRPError) -> SRPCheck {
        try computeCheck(passwordHash: passwordHash(password: password, salt1: parameters.salt1, salt2: parameters.salt2),
                         parameters: parameters, srpB: srpB, entropy: &entropy)
    }

    /// As above with x precomputed (PBKDF2 with 100,000 rounds is the slow part).
    public static func computeCheck(
        passwordHash x: [UInt8], parameters: Parameters, srpB: [UInt8], entropy: inout some EntropySource
    ) throws(SRPError) -> SRPCheck {
        let group = try checkedGroup(parameters)
        let p = BigNumber(bytes: group.prime)
        let g = BigNumber(UInt64(group.generator))
        let b = BigNumber(bytes: srpB)
        guard !b.isZero, b.compare(p) < 0 else { throw .serverValueOutOfRange }
        let pForHash = group.prime
        let gForHash = g.bytes(paddedTo: 256)
        let bForHash = b.bytes(paddedTo: 256)

        let k = BigNumber(bytes: Hashing.sha256(parts: [pForHash, gForHash]))
        let v = BigNumber(bytes: verifier(passwordHash: x, group: group))
        let kv = BigNumber.modMul(k, v, p)
        let gB = BigNumber.modSub(b, kv, p)
        guard isSafe(gB, prime: p) else { throw .unsafeServerValue }

        var secret: [UInt8]
        var aForHash: [UInt8]
        var u: BigNumber
        while true {
            secret = entropy.bytes(256)
            let aValue = DHGroup.power(g, secret: secret, prime: p)
            guard isSafe(aValue, prime: p) else { continue }
            aForHash = aValue.bytes(paddedTo: 256)
            u = BigNumber(bytes: Hashing.sha256(parts: [aForHash, bForHash]))
            if !u.isZero { break }
        }
        // S = (g_b)^(a + u*x) mod p; the exponent is not reduced, exactly as tdesktop and Telethon.
        let exponent = BigNumber.add(BigNumber(bytes: secret), BigNumber.mul(u, BigNumber(bytes: x)))
        let s = DHGroup.power(gB, secret: exponent.bytes, prime: p)
        let sessionKey = Hashing.sha256(s.bytes(paddedTo: 256))
        let m1 = proof(parameters: parameters, pForHash: pForHash, gForHash: gForHash, aForHash: aForHash, bForHash: bForHash, sessionKey: sessionKey)
        return SRPCheck(a: aForHash, m1: m1)
    }

    /// M1 = H(H(p) xor H(g) | H(salt1) | H(salt2) | A | B | K).
    static func proof(parameters: Parameters, pForHash: [UInt8], gForHash: [UInt8], aForHash: [UInt8], bForHash: [UInt8], sessionKey: [UInt8]) -> [UInt8] {
        Hashing.sha256(parts: [
            Bytes.xor(Hashing.sha256(pForHash), Hashing.sha256(gForHash)),
            Hashing.sha256(parameters.salt1),
            Hashing.sha256(parameters.salt2),
            aForHash,
            bForHash,
            sessionKey,
        ])
    }

    /// tdesktop's and Telethon's window for SRP values: both the value and p - value need at least
    /// 2048 - 64 significant bits.
    static func isSafe(_ value: BigNumber, prime p: BigNumber) -> Bool {
        guard value.compare(p) < 0 else { return false }
        let difference = BigNumber.sub(p, value)
        return value.bitCount >= 2048 - 64 && difference.bitCount >= 2048 - 64
    }

    static func checkedGroup(_ parameters: Parameters) throws(SRPError) -> DHGroup {
        do {
            return try DHGroup(prime: parameters.p, generator: parameters.g)
        } catch {
            throw .unsafeGroup(error)
        }
    }

    static func pbkdf2SHA512(password: [UInt8], salt: [UInt8], iterations: Int32, length: Int) -> [UInt8] {
        var output = [UInt8](repeating: 0, count: length)
        let ok = password.withUnsafeBufferPointer { passwordBytes in
            salt.withUnsafeBufferPointer { saltBytes in
                output.withUnsafeMutableBufferPointer { outputBytes in
                    passwordBytes.withMemoryRebound(to: CChar.self) { passwordChars in
                        PKCS5_PBKDF2_HMAC(passwordChars.baseAddress, Int32(passwordBytes.count),
                                          saltBytes.baseAddress, Int32(saltBytes.count), iterations,
                                          EVP_sha512(), Int32(length), outputBytes.baseAddress)
                    }
                }
            }
        }
        precondition(ok == 1, "PKCS5_PBKDF2_HMAC failed (out of memory)")
        return output
    }
}

/// The server side of SRP for the test DC: holds b and B for one account.getPassword answer and
/// checks the client's (A, M1).
public struct SRPServerSession: Sendable {
    public let parameters: SRP.Parameters
    /// srp_B, 256 bytes.
    public let b: [UInt8]
    private let secret: [UInt8]
    private let verifier: [UInt8]

    /// `verifier` is v = g^x mod p from `SRP.verifier(password:parameters:)`; b is drawn from `entropy`.
    public init(parameters: SRP.Parameters, verifier: [UInt8], entropy: inout some EntropySource) throws(SRPError) {
        let group = try SRP.checkedGroup(parameters)
        let p = BigNumber(bytes: group.prime)
        let g = BigNumber(UInt64(group.generator))
        let k = BigNumber(bytes: Hashing.sha256(parts: [group.prime, g.bytes(paddedTo: 256)]))
        let kv = BigNumber.modMul(k, BigNumber(bytes: verifier), p)
        while true {
            let candidate = entropy.bytes(256)
            let gb = DHGroup.power(g, secret: candidate, prime: p)
            // The client rejects B unless B - k*v (= g^b) is in the safe window.
            guard SRP.isSafe(gb, prime: p) else { continue }
            let bValue = BigNumber.modAdd(kv, gb, p)
            guard !bValue.isZero else { continue }
            self.secret = candidate
            self.b = bValue.bytes(paddedTo: 256)
            break
        }
        self.parameters = SRP.Parameters(salt1: parameters.salt1, salt2: parameters.salt2, g: parameters.g, p: group.prime)
        self.verifier = verifier
    }

    /// True when (A, M1) proves knowledge of the password (M1 compared in constant time).
    public func verify(_ check: SRPCheck) throws(SRPError) -> Bool {
        let p = BigNumber(bytes: parameters.p)
        let a = BigNumber(bytes: check.a)
        guard !a.isZero, a.compare(p) < 0 else { throw .clientValueOutOfRange }
        let aForHash = a.bytes(paddedTo: 256)
        let u = BigNumber(bytes: Hashing.sha256(parts: [aForHash, b]))
        // S = (A * v^u)^b mod p
        let vu = BigNumber.modExp(BigNumber(bytes: verifier), u, p)
        let base = BigNumber.modMul(a, vu, p)
        let s = DHGroup.power(base, secret: secret, prime: p)
        let sessionKey = Hashing.sha256(s.bytes(paddedTo: 256))
        let gForHash = BigNumber(UInt64(parameters.g)).bytes(paddedTo: 256)
        let expected = SRP.proof(parameters: parameters, pForHash: parameters.p, gForHash: gForHash, aForHash: aForHash, bForHash: b, sessionKey: sessionKey)
        return ConstantTime.equals(expected, check.m1)
    }
}
