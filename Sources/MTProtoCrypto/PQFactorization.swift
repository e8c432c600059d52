/// Why pq could not be split as the handshake requires.
public enum PQFactorizationError: Error, Equatable, Sendable, CustomStringConvertible {
    /// pq arrived as more than 8 bytes (or none).
    case invalidEncoding(byteCount: Int)
    /// pq is below 6, or prime: not a product of two primes.
    case notSemiprime(UInt64)
    /// pq has more than two prime factors, or a repeated one.
    case notProductOfTwoDistinctPrimes(UInt64)
    /// A factor is not below 2^32 (the spec's p and q are 4-byte values).
    case factorOutOfRange(UInt64)

    public var description: String {
        switch self {
        case .invalidEncoding(let count):
            "pq arrived as \(count) bytes; it must be a big-endian number of 1 to 8 bytes. The server's resPQ is malformed: restart the handshake."
        case .notSemiprime(let pq):
            "pq = \(pq) is not a product of two primes (it is prime or too small); the server's resPQ is bogus: restart the handshake or pick another server."
        case .notProductOfTwoDistinctPrimes(let pq):
            "pq = \(pq) is not the product of exactly two different primes; the server's resPQ is bogus: restart the handshake."
        case .factorOutOfRange(let pq):
            "pq = \(pq) has a factor of 2^32 or more; MTProto's p and q are 32-bit primes: the server's resPQ is bogus."
        }
    }
}

/// The proof-of-work step: factoring pq (a product of two 32-bit primes) with Pollard-Brent rho on
/// Montgomery arithmetic, and generating such a pq for the server side.
public enum PQFactorization {
    /// Splits `pq` into primes p < q.
    public static func factor(_ pq: UInt64) throws(PQFactorizationError) -> (p: UInt64, q: UInt64) {
        guard pq >= 6, !isPrime(pq) else { throw .notSemiprime(pq) }
        let divisor = pq % 2 == 0 ? 2 : pollardBrent(pq)
        let other = pq / divisor
        let (p, q) = divisor < other ? (divisor, other) : (other, divisor)
        guard p != q, isPrime(p), isPrime(q) else { throw .notProductOfTwoDistinctPrimes(pq) }
        guard q < 1 << 32 else { throw .factorOutOfRange(pq) }
        return (p, q)
    }

    /// The wire form: pq as big-endian bytes (a TL string), p and q as minimal big-endian bytes.
    public static func factor(bigEndian pq: [UInt8]) throws(PQFactorizationError) -> (p: [UInt8], q: [UInt8]) {
        guard (1...8).contains(pq.count) else { throw .invalidEncoding(byteCount: pq.count) }
        let value = pq.reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        let (p, q) = try factor(value)
        return (bigEndianBytes(p), bigEndianBytes(q))
    }

    /// Minimal big-endian bytes of a number, as TL strings carry pq, p and q.
    public static func bigEndianBytes(_ value: UInt64) -> [UInt8] {
        let bytes = (0..<8).reversed().map { UInt8(truncatingIfNeeded: value >> (8 * UInt64($0))) }
        return Bytes.minimal(bytes)
    }

    /// A fresh pq for a server: two different random primes in [2^31, 3037000499] so that pq < 2^63.
    public static func generate(entropy: inout some EntropySource) -> (pq: UInt64, p: UInt64, q: UInt64) {
        func randomPrime() -> UInt64 {
            let low: UInt64 = 1 << 31
            let span: UInt64 = 3_037_000_499 - low
            while true {
                let raw = entropy.bytes(8).reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
                let candidate = (low + raw % span) | 1
                if candidate <= 3_037_000_499, isPrime(candidate) { return candidate }
            }
        }
        let first = randomPrime()
        var second = randomPrime()
        while second == first { second = randomPrime() }
        let (p, q) = first < second ? (first, second) : (second, first)
        return (p * q, p, q)
    }

    /// Deterministic Miller-Rabin: these bases are exact for every n < 2^64.
    public static func isPrime(_ n: UInt64) -> Bool {
        if n < 2 { return false }
        for small: UInt64 in [2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37] {
            if n % small == 0 { return n == small }
        }
        let montgomery = Montgomery(modulus: n)
        var d = n - 1
        var shifts = 0
        while d % 2 == 0 {
            d /= 2
            shifts += 1
        }
        let one = montgomery.one
        let minusOne = montgomery.toMontgomery(n - 1)
        witness: for base: UInt64 in [2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37] {
            var x = montgomery.power(montgomery.toMontgomery(base), d)
            if x == one || x == minusOne { continue }
            for _ in 1..<max(shifts, 1) {
                x = montgomery.multiply(x, x)
                if x == minusOne { continue witness }
            }
            return false
        }
        return true
    }

    /// A non-trivial divisor of odd composite `n`: Brent's cycle finding with the gcd batched over 512
    /// steps, on three sequences (different constants) in lockstep. One sequence is bound by
    /// multiplier latency; independent ones fill the multiplier's spare throughput, and the first to
    /// hit a factor ends the search, which shrinks rho's slow tail. Measured: three lanes beat one,
    /// two and four on both the mean and the maximum (CryptoBench).
    private static func pollardBrent(_ n: UInt64) -> UInt64 {
        let m = Montgomery(modulus: n)
        // Rho finds a divisor of any composite for nearly every constant; the bound only guards
        // against an input no reasoning foresaw, which then reads as "no divisor" (and fails the
        // caller's checks).
        for round in UInt64(0)..<11 {
            let c = Lanes(m.toMontgomery(3 * round + 1), m.toMontgomery(3 * round + 2), m.toMontgomery(3 * round + 3))
            let start = m.toMontgomery(2)
            var y = Lanes(start, start, start)
            var x = y
            var saved = y
            var product = Lanes(m.one, m.one, m.one)
            var range = 1
            let batch = 512
            search: while range <= 1 << 26 {
                x = y
                for _ in 0..<range { y = y.step(m, c) }
                var done = 0
                while done < range {
                    saved = y
                    let count = min(batch, range - done)
                    for _ in 0..<count {
                        y = y.step(m, c)
                        product = product.accumulate(m, x, y)
                    }
                    done += count
                    for lane in 0..<3 {
                        var divisor = gcd(product[lane], n)
                        if divisor == 1 { continue }
                        if divisor == n {
                            // The batch overshot: walk this lane's batch again one step at a time.
                            var walker = saved[lane]
                            repeat {
                                walker = m.add(m.multiply(walker, walker), c[lane])
                                divisor = gcd(m.distance(x[lane], walker), n)
                            } while divisor == 1
                        }
                        if divisor != n { return divisor }
                        // This lane cycled modulo both factors at once: try fresh constants.
                        break search
                    }
                }
                range *= 2
            }
        }
        return n
    }

    /// Three rho sequences side by side, spelled out so each lane stays in registers.
    private struct Lanes {
        var a: UInt64, b: UInt64, c: UInt64

        init(_ a: UInt64, _ b: UInt64, _ c: UInt64) {
            (self.a, self.b, self.c) = (a, b, c)
        }

        subscript(lane: Int) -> UInt64 {
            switch lane {
            case 0: a
            case 1: b
            default: c
            }
        }

        /// y -> y^2 + c in every lane.
        @inline(__always)
        func step(_ m: Montgomery, _ k: Lanes) -> Lanes {
            Lanes(m.add(m.multiply(a, a), k.a), m.add(m.multiply(b, b), k.b), m.add(m.multiply(c, c), k.c))
        }

        /// product *= |x - y| in every lane.
        @inline(__always)
        func accumulate(_ m: Montgomery, _ x: Lanes, _ y: Lanes) -> Lanes {
            Lanes(m.multiply(a, m.distance(x.a, y.a)), m.multiply(b, m.distance(x.b, y.b)), m.multiply(c, m.distance(x.c, y.c)))
        }
    }

    /// Binary gcd (Stein): shifts and subtractions instead of the ~40-cycle divisions of Euclid's,
    /// which would otherwise rival the rho steps between two gcds.
    private static func gcd(_ a: UInt64, _ b: UInt64) -> UInt64 {
        if a == 0 { return b }
        if b == 0 { return a }
        var (u, v) = (a, b)
        let shift = (u | v).trailingZeroBitCount
        u >>= u.trailingZeroBitCount
        repeat {
            v >>= v.trailingZeroBitCount
            if u > v { swap(&u, &v) }
            v -= u
        } while v != 0
        return u << shift
    }
}

/// Montgomery arithmetic modulo an odd 64-bit number: multiplication without division.
struct Montgomery {
    let modulus: UInt64
    /// -modulus^-1 mod 2^64.
    let negativeInverse: UInt64
    /// 2^128 mod modulus, to enter Montgomery form.
    let rSquared: UInt64
    let one: UInt64

    init(modulus: UInt64) {
        precondition(modulus % 2 == 1, "Montgomery arithmetic needs an odd modulus")
        self.modulus = modulus
        var inverse: UInt64 = 1
        for _ in 0..<6 { inverse = inverse &* (2 &- modulus &* inverse) }
        self.negativeInverse = 0 &- inverse
        let r = (UInt64.max % modulus + 1) % modulus
        self.one = r
        // r^2 mod n by exact 128-bit division.
        let square = r.multipliedFullWidth(by: r)
        self.rSquared = modulus.dividingFullWidth((high: square.high, low: square.low)).remainder
    }

    /// REDC: (high * 2^64 + low) / 2^64 mod modulus, for inputs below modulus * 2^64. Branch-free:
    /// the final correction depends on the data, and a mispredicted branch per multiplication
    /// would cost more than the multiplication itself.
    @inline(__always)
    func reduce(high: UInt64, low: UInt64) -> UInt64 {
        let m = low &* negativeInverse
        let mn = m.multipliedFullWidth(by: modulus)
        // low + mn.low is 0 mod 2^64 by the choice of m, so it carries exactly when low is not 0.
        let carry: UInt64 = low != 0 ? 1 : 0
        let (partial, overflow1) = high.addingReportingOverflow(mn.high)
        let (total, overflow2) = partial.addingReportingOverflow(carry)
        let (reduced, borrow) = total.subtractingReportingOverflow(modulus)
        let keepReduced: UInt64 = (overflow1 ? 1 : 0) | (overflow2 ? 1 : 0) | (borrow ? 0 : 1)
        let mask = 0 &- keepReduced
        return (reduced & mask) | (total & ~mask)
    }

    @inline(__always)
    func multiply(_ a: UInt64, _ b: UInt64) -> UInt64 {
        let product = a.multipliedFullWidth(by: b)
        return reduce(high: product.high, low: product.low)
    }

    @inline(__always)
    func add(_ a: UInt64, _ b: UInt64) -> UInt64 {
        let (sum, overflow) = a.addingReportingOverflow(b)
        let (reduced, borrow) = sum.subtractingReportingOverflow(modulus)
        let keepReduced: UInt64 = (overflow ? 1 : 0) | (borrow ? 0 : 1)
        let mask = 0 &- keepReduced
        return (reduced & mask) | (sum & ~mask)
    }

    /// |a - b|, branch-free; a gcd with the modulus does not care about the sign.
    @inline(__always)
    func distance(_ a: UInt64, _ b: UInt64) -> UInt64 {
        let (difference, borrow) = a.subtractingReportingOverflow(b)
        let mask = 0 &- UInt64(borrow ? 1 : 0)
        return (difference ^ mask) &+ (mask & 1)
    }

    func toMontgomery(_ value: UInt64) -> UInt64 { multiply(value % modulus, rSquared) }

    func power(_ base: UInt64, _ exponent: UInt64) -> UInt64 {
        var result = one
        var base = base
        var exponent = exponent
        while exponent > 0 {
            if exponent & 1 == 1 { result = multiply(result, base) }
            base = multiply(base, base)
            exponent >>= 1
        }
        return result
    }
}
