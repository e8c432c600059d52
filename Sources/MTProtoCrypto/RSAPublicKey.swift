/// An RSA public key as MTProto uses it: a server key the client encrypts p_q_inner_data for.
public struct RSAPublicKey: Sendable, Equatable, CustomStringConvertible {
    /// n, big-endian, no leading zeros.
    public let modulus: [UInt8]
    /// e, big-endian, no leading zeros.
    public let exponent: [UInt8]

    public init(modulus: [UInt8], exponent: [UInt8]) throws(RSAError) {
        let n = Bytes.minimal(modulus)
        let e = Bytes.minimal(exponent)
        guard n != [0], n.count > 1 || n[0] > 2 else { throw .malformedKey("the modulus is not a usable number") }
        guard e != [0] else { throw .malformedKey("the exponent is zero") }
        self.modulus = n
        self.exponent = e
    }

    /// Reads a PKCS#1 `-----BEGIN RSA PUBLIC KEY-----` or X.509 `-----BEGIN PUBLIC KEY-----` PEM.
    public init(pem: String) throws(RSAError) {
        let block: PEM.Block
        do { block = try PEM.decode(pem) } catch {
            switch error {
            case .noBlock: throw .noPEMBlock
            case .badBase64: throw .malformedKey("the PEM body is not valid base64")
            case .badDER: throw .malformedKey("bad DER")
            }
        }
        switch block.label {
        case "RSA PUBLIC KEY":
            try self.init(pkcs1DER: block.der)
        case "PUBLIC KEY":
            try self.init(subjectPublicKeyInfoDER: block.der)
        default:
            throw .unsupportedPEMLabel(block.label)
        }
    }

    /// RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER }
    public init(pkcs1DER der: [UInt8]) throws(RSAError) {
        do {
            var outer = DER.Reader(der)
            var fields = DER.Reader(try outer.read(tag: DER.sequence))
            guard outer.isAtEnd else { throw PEM.Failure.badDER }
            let n = try fields.readUnsignedInteger()
            let e = try fields.readUnsignedInteger()
            guard fields.isAtEnd else { throw PEM.Failure.badDER }
            try self.init(modulus: n, exponent: e)
        } catch let error as RSAError {
            throw error
        } catch {
            throw .malformedKey("the DER is not a PKCS#1 RSAPublicKey")
        }
    }

    /// SubjectPublicKeyInfo ::= SEQUENCE { SEQUENCE { OID rsaEncryption, NULL }, BIT STRING (PKCS#1) }
    public init(subjectPublicKeyInfoDER der: [UInt8]) throws(RSAError) {
        let inner: [UInt8]
        do {
            var outer = DER.Reader(der)
            var info = DER.Reader(try outer.read(tag: DER.sequence))
            guard outer.isAtEnd else { throw PEM.Failure.badDER }
            var algorithm = DER.Reader(try info.read(tag: DER.sequence))
            guard try algorithm.read(tag: DER.objectIdentifier) == DER.rsaEncryptionOID else {
                throw RSAError.malformedKey("the key is not an RSA key")
            }
            let bitString = try info.read(tag: DER.bitString)
            guard info.isAtEnd, bitString.first == 0 else { throw PEM.Failure.badDER }
            inner = Array(bitString.dropFirst())
        } catch let error as RSAError {
            throw error
        } catch {
            throw .malformedKey("the DER is not an X.509 SubjectPublicKeyInfo")
        }
        try self.init(pkcs1DER: inner)
    }

    /// The key as PKCS#1 DER.
    public var pkcs1DER: [UInt8] {
        DER.element(tag: DER.sequence, DER.unsignedInteger(modulus) + DER.unsignedInteger(exponent))
    }

    /// The key as a PKCS#1 `-----BEGIN RSA PUBLIC KEY-----` PEM (what Telethon's `add_key` reads).
    public var pkcs1PEM: String { PEM.encode(label: "RSA PUBLIC KEY", der: pkcs1DER) }

    /// The server key fingerprint: the 64 lower-order bits of SHA1 of the TL-serialized
    /// `rsa_public_key n:string e:string` (last 8 digest bytes, read as a little-endian TL long).
    public var fingerprint: Int64 {
        let digest = Hashing.sha1(TLBytes.serialize(modulus) + TLBytes.serialize(exponent))
        return Bytes.int64LittleEndian(digest[12..<20])
    }

    public var bitCount: Int { BigNumber(bytes: modulus).bitCount }

    /// Modulus size in bytes: the length of every ciphertext.
    public var byteCount: Int { modulus.count }

    public var description: String {
        "RSAPublicKey(\(bitCount) bits, fingerprint: \(String(UInt64(bitPattern: fingerprint), radix: 16)))"
    }

    /// Raw (textbook) RSA: value^e mod n, as a big-endian number of exactly `byteCount` bytes.
    public func rawEncrypt(_ value: [UInt8]) throws(RSAError) -> [UInt8] {
        let n = BigNumber(bytes: modulus)
        let x = BigNumber(bytes: value)
        guard x.compare(n) < 0 else { throw .valueNotBelowModulus }
        return BigNumber.modExp(x, BigNumber(bytes: exponent), n).bytes(paddedTo: byteCount)
    }

    /// RSA_PAD(data, key) of spec step 4.1: the OAEP+-like scheme MTProto clients use for
    /// p_q_inner_data. `data` is at most 144 bytes; randomness (padding, temp_key) comes from `entropy`.
    public func encryptWithRSAPad(_ data: [UInt8], entropy: inout some EntropySource) throws(RSAError) -> [UInt8] {
        guard byteCount == 256 else { throw .unsupportedModulusSize(bits: bitCount) }
        guard data.count <= RSAPad.maximumDataLength else {
            throw .dataTooLong(length: data.count, maximum: RSAPad.maximumDataLength)
        }
        let dataWithPadding = data + entropy.bytes(RSAPad.paddedLength - data.count)
        let n = BigNumber(bytes: modulus)
        while true {
            let tempKey = entropy.bytes(32)
            let keyAESEncrypted = RSAPad.keyAESEncrypted(dataWithPadding: dataWithPadding, tempKey: tempKey)
            // A value at or above the modulus cannot be encrypted: the spec says draw a new temp_key.
            if BigNumber(bytes: keyAESEncrypted).compare(n) < 0 {
                return try rawEncrypt(keyAESEncrypted)
            }
        }
    }

    /// The scheme Telethon 1.45 still uses (no RSA_PAD): SHA1(data) + data + random padding to 255
    /// bytes, under raw RSA. `data` is at most 235 bytes.
    public func encryptWithOldScheme(_ data: [UInt8], entropy: inout some EntropySource) throws(RSAError) -> [UInt8] {
        guard byteCount == 256 else { throw .unsupportedModulusSize(bits: bitCount) }
        guard data.count <= 235 else { throw .dataTooLong(length: data.count, maximum: 235) }
        let block = Hashing.sha1(data) + data + entropy.bytes(235 - data.count)
        return try rawEncrypt(block)
    }
}

/// The constants and the deterministic core of RSA_PAD, shared by both directions.
enum RSAPad {
    static let maximumDataLength = 144
    static let paddedLength = 192

    /// temp_key_xor + AES256_IGE(reverse(data_with_padding) + SHA256(temp_key + data_with_padding), temp_key, 0).
    static func keyAESEncrypted(dataWithPadding: [UInt8], tempKey: [UInt8]) -> [UInt8] {
        let dataWithHash = Array(dataWithPadding.reversed()) + Hashing.sha256(parts: [tempKey, dataWithPadding])
        let aesEncrypted: [UInt8]
        do {
            aesEncrypted = try AESIGE.encrypt(dataWithHash, key: tempKey, iv: [UInt8](repeating: 0, count: 32))
        } catch {
            preconditionFailure("224 bytes and a 32-byte key are valid IGE input: \(error)")
        }
        let tempKeyXor = Bytes.xor(tempKey, Hashing.sha256(aesEncrypted))
        return tempKeyXor + aesEncrypted
    }
}
