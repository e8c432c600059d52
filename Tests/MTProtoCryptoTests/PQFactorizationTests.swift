import Testing
@testable import MTProtoCrypto

@Suite("pq factorization")
struct PQFactorizationTests {
    @Test func specExamples() throws {
        let brief = try PQFactorization.factor(0x17ED48941A08F981)
        #expect(brief.p == 0x494C553B && brief.q == 0x53911073)
        let sample = try PQFactorization.factor(SpecVectors.pq)
        #expect(sample.p == SpecVectors.p && sample.q == SpecVectors.q)
    }

    @Test func agreesWithTelethon() throws {
        for vector in TelethonVectors.pq {
            let (p, q) = try PQFactorization.factor(vector.pq)
            #expect(p == vector.p && q == vector.q)
        }
    }

    /// pq above 2^63 exercises the overflow paths of the Montgomery reduction.
    @Test func fullWidth64BitProducts() throws {
        let cases: [(UInt64, UInt64)] = [(4_294_967_279, 4_294_967_291), (3_037_000_453, 4_294_967_291), (2, 4_294_967_291)]
        for (p, q) in cases {
            let factors = try PQFactorization.factor(p * q)
            #expect(factors.p == p && factors.q == q)
        }
        var entropy = SeededEntropy(seed: 12)
        var checked = 0
        while checked < 40 {
            let candidates = (0..<2).map { _ in UInt64(entropy.bytes(4).reduce(UInt32(0)) { $0 << 8 | UInt32($1) }) | 0x8000_0001 }
            guard PQFactorization.isPrime(candidates[0]), PQFactorization.isPrime(candidates[1]), candidates[0] != candidates[1] else { continue }
            let factors = try PQFactorization.factor(candidates[0] * candidates[1])
            #expect(factors.p == candidates.min() && factors.q == candidates.max())
            checked += 1
        }
    }

    @Test func montgomeryArithmeticMatchesPlainArithmetic() {
        var entropy = SeededEntropy(seed: 13)
        func random() -> UInt64 { entropy.bytes(8).reduce(UInt64(0)) { $0 << 8 | UInt64($1) } }
        for modulus in [UInt64(3), 0x7FFF_FFFF, 0x8000_0000_0000_0001, UInt64.max, UInt64.max - 58] + (0..<50).map({ _ in random() | 1 }) {
            let m = Montgomery(modulus: modulus)
            for _ in 0..<50 {
                let a = random() % modulus, b = random() % modulus
                let product = a.multipliedFullWidth(by: b)
                let expected = modulus.dividingFullWidth((high: product.high, low: product.low)).remainder
                #expect(m.multiply(m.toMontgomery(a), m.toMontgomery(b)) == m.toMontgomery(expected))
                let (sum, overflow) = a.addingReportingOverflow(b)
                let expectedSum = overflow || sum >= modulus ? sum &- modulus : sum
                #expect(m.add(a, b) == expectedSum)
                #expect(m.distance(a, b) == (a > b ? a - b : b - a))
            }
        }
    }

    @Test func wireForm() throws {
        let (p, q) = try PQFactorization.factor(bigEndian: hex("1460E7D3FA727791"))
        #expect(p == hex("3C2357CF") && q == hex("56BFB29F"))
        #expect(throws: PQFactorizationError.invalidEncoding(byteCount: 9)) { _ = try PQFactorization.factor(bigEndian: [UInt8](repeating: 1, count: 9)) }
        #expect(throws: PQFactorizationError.invalidEncoding(byteCount: 0)) { _ = try PQFactorization.factor(bigEndian: []) }
        #expect(PQFactorization.bigEndianBytes(0x494C553B) == hex("494C553B"))
        #expect(PQFactorization.bigEndianBytes(0) == [0])
    }

    @Test func generatedPQsFactorBack() throws {
        var entropy = SeededEntropy(seed: 11)
        for _ in 0..<50 {
            let (pq, p, q) = PQFactorization.generate(entropy: &entropy)
            #expect(p < q && pq == p * q && pq < 1 << 63)
            #expect(p >= 1 << 31)
            let factors = try PQFactorization.factor(pq)
            #expect(factors.p == p && factors.q == q)
        }
    }

    @Test func primesAreRecognised() {
        #expect(PQFactorization.isPrime(2) && PQFactorization.isPrime(3) && PQFactorization.isPrime(0x7FFFFFFF))
        #expect(PQFactorization.isPrime(18_446_744_073_709_551_557))  // largest 64-bit prime
        #expect(!PQFactorization.isPrime(0) && !PQFactorization.isPrime(1) && !PQFactorization.isPrime(561))
        #expect(!PQFactorization.isPrime(3_215_031_751))  // strong pseudoprime to bases 2, 3, 5, 7
        #expect(!PQFactorization.isPrime(SpecVectors.pq))
    }

    @Test("primes and tiny numbers are not semiprimes", arguments: [UInt64]([0, 1, 4, 5, 0x7FFFFFFF, 18_446_744_073_709_551_557]))
    func notSemiprime(value: UInt64) {
        #expect(throws: PQFactorizationError.notSemiprime(value)) { _ = try PQFactorization.factor(value) }
    }

    @Test("three primes or a square are rejected", arguments: [UInt64]([30, 3 * 5 * 7 * 11, 1_000_000_007 * 1_000_000_007, 8]))
    func notTwoDistinctPrimes(value: UInt64) {
        #expect(throws: PQFactorizationError.notProductOfTwoDistinctPrimes(value)) { _ = try PQFactorization.factor(value) }
    }

    @Test func aFactorAbove32BitsIsRejected() {
        let bigPrime: UInt64 = 4_294_967_311  // smallest prime above 2^32
        #expect(throws: PQFactorizationError.factorOutOfRange(3 * bigPrime)) { _ = try PQFactorization.factor(3 * bigPrime) }
    }

    @Test func errorsExplainThemselves() {
        let errors: [PQFactorizationError] = [.invalidEncoding(byteCount: 9), .notSemiprime(7), .notProductOfTwoDistinctPrimes(8), .factorOutOfRange(9)]
        for error in errors { #expect(error.description.contains("pq")) }
    }
}
