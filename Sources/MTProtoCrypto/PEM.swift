/// Just enough PEM, base64 and DER to read and write RSA keys in the two public-key forms servers
/// publish: PKCS#1 `RSAPublicKey` and X.509 `SubjectPublicKeyInfo`.
enum PEM {
    struct Block {
        let label: String
        let der: [UInt8]
    }

    enum Failure: Error { case noBlock, badBase64, badDER }

    /// The first `-----BEGIN label-----` ... `-----END label-----` block of `text`.
    static func decode(_ text: String) throws(Failure) -> Block {
        let lines = text.split(whereSeparator: \.isNewline).map { $0.trimmingWhitespace() }
        guard let beginIndex = lines.firstIndex(where: { $0.hasPrefix("-----BEGIN ") && $0.hasSuffix("-----") }) else {
            throw .noBlock
        }
        let label = String(lines[beginIndex].dropFirst("-----BEGIN ".count).dropLast(5))
        guard let endIndex = lines[(beginIndex + 1)...].firstIndex(of: "-----END \(label)-----") else { throw .noBlock }
        let body = lines[(beginIndex + 1)..<endIndex].filter { !$0.contains(":") }.joined()
        guard let der = Base64.decode(body) else { throw .badBase64 }
        return Block(label: label, der: der)
    }

    static func encode(label: String, der: [UInt8]) -> String {
        let text = Base64.encode(der)
        var lines = ["-----BEGIN \(label)-----"]
        var index = text.startIndex
        while index < text.endIndex {
            let end = text.index(index, offsetBy: 64, limitedBy: text.endIndex) ?? text.endIndex
            lines.append(String(text[index..<end]))
            index = end
        }
        lines.append("-----END \(label)-----")
        return lines.joined(separator: "\n") + "\n"
    }
}

extension Substring {
    fileprivate func trimmingWhitespace() -> String {
        String(drop(while: \.isWhitespace).reversed().drop(while: \.isWhitespace).reversed())
    }
}

enum Base64 {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

    static func encode(_ bytes: [UInt8]) -> String {
        var output = [UInt8]()
        output.reserveCapacity((bytes.count + 2) / 3 * 4)
        var index = 0
        while index < bytes.count {
            let remaining = bytes.count - index
            let b0 = UInt32(bytes[index])
            let b1 = remaining > 1 ? UInt32(bytes[index + 1]) : 0
            let b2 = remaining > 2 ? UInt32(bytes[index + 2]) : 0
            let triple = b0 << 16 | b1 << 8 | b2
            output.append(alphabet[Int(triple >> 18 & 63)])
            output.append(alphabet[Int(triple >> 12 & 63)])
            output.append(remaining > 1 ? alphabet[Int(triple >> 6 & 63)] : UInt8(ascii: "="))
            output.append(remaining > 2 ? alphabet[Int(triple & 63)] : UInt8(ascii: "="))
            index += 3
        }
        return String(decoding: output, as: UTF8.self)
    }

    static func decode(_ text: String) -> [UInt8]? {
        var values = [UInt8]()
        var padding = 0
        for character in text.utf8 {
            switch character {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"): values.append(character - UInt8(ascii: "A"))
            case UInt8(ascii: "a")...UInt8(ascii: "z"): values.append(character - UInt8(ascii: "a") + 26)
            case UInt8(ascii: "0")...UInt8(ascii: "9"): values.append(character - UInt8(ascii: "0") + 52)
            case UInt8(ascii: "+"): values.append(62)
            case UInt8(ascii: "/"): values.append(63)
            case UInt8(ascii: "="): padding += 1; continue
            case UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\r"), UInt8(ascii: "\n"): continue
            default: return nil
            }
            if padding > 0 { return nil }
        }
        guard padding <= 2, (values.count + padding) % 4 == 0, values.count % 4 != 1 else { return nil }
        var output = [UInt8]()
        output.reserveCapacity(values.count * 3 / 4)
        var index = 0
        while index < values.count {
            let chunk = values[index..<min(index + 4, values.count)]
            var accumulator: UInt32 = 0
            for value in chunk { accumulator = accumulator << 6 | UInt32(value) }
            accumulator <<= UInt32(6 * (4 - chunk.count))
            let produced = chunk.count - 1
            for byteIndex in 0..<produced { output.append(UInt8(truncatingIfNeeded: accumulator >> UInt32(16 - 8 * byteIndex))) }
            index += 4
        }
        return output
    }
}

/// A minimal DER reader/writer: SEQUENCE, INTEGER, BIT STRING, OBJECT IDENTIFIER, NULL.
enum DER {
    static let sequence: UInt8 = 0x30
    static let integer: UInt8 = 0x02
    static let bitString: UInt8 = 0x03
    static let null: UInt8 = 0x05
    static let objectIdentifier: UInt8 = 0x06
    /// 1.2.840.113549.1.1.1
    static let rsaEncryptionOID: [UInt8] = [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01]

    struct Reader {
        private let bytes: [UInt8]
        private(set) var offset: Int

        init(_ bytes: [UInt8]) {
            self.bytes = bytes
            self.offset = 0
        }

        var isAtEnd: Bool { offset == bytes.count }

        /// Reads one element with the given tag and returns its contents.
        mutating func read(tag: UInt8) throws(PEM.Failure) -> [UInt8] {
            guard offset + 2 <= bytes.count, bytes[offset] == tag else { throw .badDER }
            var length = Int(bytes[offset + 1])
            var cursor = offset + 2
            if length & 0x80 != 0 {
                let lengthBytes = length & 0x7f
                guard lengthBytes >= 1, lengthBytes <= 4, cursor + lengthBytes <= bytes.count else { throw .badDER }
                length = 0
                for index in 0..<lengthBytes { length = length << 8 | Int(bytes[cursor + index]) }
                cursor += lengthBytes
            }
            guard length <= bytes.count - cursor else { throw .badDER }
            offset = cursor + length
            return Array(bytes[cursor..<(cursor + length)])
        }

        /// A non-negative INTEGER as minimal big-endian bytes.
        mutating func readUnsignedInteger() throws(PEM.Failure) -> [UInt8] {
            let contents = try read(tag: DER.integer)
            guard let first = contents.first, first & 0x80 == 0 else { throw .badDER }
            return Bytes.minimal(contents)
        }
    }

    static func element(tag: UInt8, _ contents: [UInt8]) -> [UInt8] {
        var header = [tag]
        let length = contents.count
        if length < 0x80 {
            header.append(UInt8(length))
        } else {
            var lengthBytes = [UInt8]()
            var remaining = length
            while remaining > 0 {
                lengthBytes.insert(UInt8(truncatingIfNeeded: remaining), at: 0)
                remaining >>= 8
            }
            header.append(0x80 | UInt8(lengthBytes.count))
            header += lengthBytes
        }
        return header + contents
    }

    static func unsignedInteger(_ bigEndian: [UInt8]) -> [UInt8] {
        var contents = Bytes.minimal(bigEndian)
        if let first = contents.first, first & 0x80 != 0 { contents.insert(0, at: 0) }
        return element(tag: integer, contents)
    }
}
