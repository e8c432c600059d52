import COpenSSL

/// An owned OpenSSL BIGNUM, cleared on release because most of ours are secrets or derived from them.
/// Internal: the public API speaks big-endian byte arrays, as MTProto does on the wire.
final class BigNumber {
    let pointer: OpaquePointer

    init() {
        guard let pointer = BN_secure_new() ?? BN_new() else {
            preconditionFailure("OpenSSL could not allocate a BIGNUM (out of memory)")
        }
        self.pointer = pointer
    }

    convenience init(bytes: [UInt8]) {
        self.init()
        bytes.withUnsafeBufferPointer { buffer in
            _ = BN_bin2bn(buffer.baseAddress, Int32(buffer.count), pointer)
        }
    }

    convenience init(_ word: UInt64) {
        self.init()
        BN_set_word(pointer, UInt(word))
    }

    deinit { BN_clear_free(pointer) }

    var bitCount: Int { Int(BN_num_bits(pointer)) }
    var isZero: Bool { BN_is_zero(pointer) == 1 }

    /// Minimal big-endian bytes (empty for zero).
    var bytes: [UInt8] {
        let count = (bitCount + 7) / 8
        var result = [UInt8](repeating: 0, count: count)
        if count > 0 { result.withUnsafeMutableBufferPointer { _ = BN_bn2bin(pointer, $0.baseAddress) } }
        return result
    }

    /// Big-endian bytes left-padded to `length`; precondition: the value fits.
    func bytes(paddedTo length: Int) -> [UInt8] {
        var result = [UInt8](repeating: 0, count: length)
        let written = result.withUnsafeMutableBufferPointer { BN_bn2binpad(pointer, $0.baseAddress, Int32(length)) }
        precondition(written == Int32(length), "number does not fit in \(length) bytes")
        return result
    }

    func compare(_ other: BigNumber) -> Int { Int(BN_cmp(pointer, other.pointer)) }

    func modulo(_ word: UInt64) -> UInt64 { UInt64(BN_mod_word(pointer, UInt(word))) }

    func copy() -> BigNumber {
        let result = BigNumber()
        BN_copy(result.pointer, pointer)
        return result
    }

    /// Marks an exponent secret so OpenSSL's modexp takes its constant-time path.
    func markSecret() { BN_set_flags(pointer, BN_FLG_CONSTTIME) }

    static func withContext<T>(_ body: (OpaquePointer) -> T) -> T {
        guard let context = BN_CTX_secure_new() ?? BN_CTX_new() else {
            preconditionFailure("OpenSSL could not allocate a BN_CTX (out of memory)")
        }
        defer { BN_CTX_free(context) }
        return body(context)
    }

    /// base^exponent mod modulus.
    static func modExp(_ base: BigNumber, _ exponent: BigNumber, _ modulus: BigNumber) -> BigNumber {
        let result = BigNumber()
        let ok = withContext { BN_mod_exp(result.pointer, base.pointer, exponent.pointer, modulus.pointer, $0) }
        precondition(ok == 1, "BN_mod_exp failed (zero modulus or out of memory)")
        return result
    }

    static func modMul(_ lhs: BigNumber, _ rhs: BigNumber, _ modulus: BigNumber) -> BigNumber {
        let result = BigNumber()
        let ok = withContext { BN_mod_mul(result.pointer, lhs.pointer, rhs.pointer, modulus.pointer, $0) }
        precondition(ok == 1, "BN_mod_mul failed")
        return result
    }

    static func modAdd(_ lhs: BigNumber, _ rhs: BigNumber, _ modulus: BigNumber) -> BigNumber {
        let result = BigNumber()
        let ok = withContext { BN_mod_add(result.pointer, lhs.pointer, rhs.pointer, modulus.pointer, $0) }
        precondition(ok == 1, "BN_mod_add failed")
        return result
    }

    /// (lhs - rhs) mod modulus, always non-negative.
    static func modSub(_ lhs: BigNumber, _ rhs: BigNumber, _ modulus: BigNumber) -> BigNumber {
        let result = BigNumber()
        let ok = withContext { BN_mod_sub(result.pointer, lhs.pointer, rhs.pointer, modulus.pointer, $0) }
        precondition(ok == 1, "BN_mod_sub failed")
        return result
    }

    static func add(_ lhs: BigNumber, _ rhs: BigNumber) -> BigNumber {
        let result = BigNumber()
        precondition(BN_add(result.pointer, lhs.pointer, rhs.pointer) == 1, "BN_add failed")
        return result
    }

    static func mul(_ lhs: BigNumber, _ rhs: BigNumber) -> BigNumber {
        let result = BigNumber()
        let ok = withContext { BN_mul(result.pointer, lhs.pointer, rhs.pointer, $0) }
        precondition(ok == 1, "BN_mul failed")
        return result
    }

    static func sub(_ lhs: BigNumber, _ rhs: BigNumber) -> BigNumber {
        let result = BigNumber()
        precondition(BN_sub(result.pointer, lhs.pointer, rhs.pointer) == 1, "BN_sub failed")
        return result
    }

    /// 2^exponent.
    static func powerOfTwo(_ exponent: Int) -> BigNumber {
        let result = BigNumber()
        precondition(BN_set_bit(result.pointer, Int32(exponent)) == 1, "BN_set_bit failed")
        return result
    }

    func shiftedRight(by bits: Int) -> BigNumber {
        let result = BigNumber()
        precondition(BN_rshift(result.pointer, pointer, Int32(bits)) == 1, "BN_rshift failed")
        return result
    }

    /// Probabilistic primality with OpenSSL's default rounds (error below 2^-128).
    var isProbablePrime: Bool {
        BigNumber.withContext { BN_check_prime(pointer, $0, nil) == 1 }
    }
}
