import MTProtoCrypto
import NIOCore

/// The client side of an `ee` (fake-TLS) MTProxy: the connection opens with a TLS 1.3 ClientHello
/// naming the secret's domain, whose 32-byte "random" is HMAC-SHA-256(secret, hello with a zero
/// random) with the Unix time XORed into its last 4 bytes; the proxy answers with a ServerHello,
/// ChangeCipherSpec and one application-data record, its own "random" being HMAC-SHA-256(secret,
/// client random | answer with a zero random). After that, every byte both ways travels in TLS
/// application-data records (`17 03 03`, 2-byte length), and inside them runs the obfuscated
/// padded-intermediate stream.
///
/// The hello imitates a browser's shape (cipher suites, SNI, ALPN, key share, padding to 517 bytes)
/// without being one: the key share is random bytes, not a real X25519 public key.
struct FakeTLSClientHandshake: ProxyHandshake {
    static let helloLength = 517
    static let randomOffset = 11
    static let maximumRecordPayload = 16_384

    private let secret: [UInt8]
    private let domain: String
    private var entropy: any EntropySource
    private var clientRandom: [UInt8] = []
    private var sentChangeCipherSpec = false

    init(secret: [UInt8], domain: String, entropy: any EntropySource) {
        self.secret = secret
        self.domain = domain
        self.entropy = entropy
    }

    var staysAfterHandshake: Bool { true }
    var proxyName: String { "fake-TLS MTProxy" }

    mutating func start(now: Int) -> [UInt8] {
        var hello = Self.clientHello(domain: domain, entropy: &entropy)
        var digest = Hashing.hmacSHA256(key: secret, data: hello)
        let time = UInt32(truncatingIfNeeded: now)
        for index in 0..<4 { digest[28 + index] ^= UInt8(truncatingIfNeeded: time >> (8 * UInt32(index))) }
        hello.replaceSubrange(Self.randomOffset..<(Self.randomOffset + 32), with: digest)
        clientRandom = digest
        return hello
    }

    /// The answer is three records (handshake, change cipher spec, application data) checked as one.
    mutating func read(_ buffer: inout ByteBuffer) throws(ProxyError) -> ProxyHandshakeStep? {
        let start = buffer.readerIndex
        var offset = start
        for expectedType: UInt8 in [0x16, 0x14, 0x17] {
            guard let header = buffer.getBytes(at: offset, length: 5) else { return nil }
            guard header[0] == expectedType, header[1] == 0x03, header[2] == 0x03 else {
                throw .fakeTLSProtocolViolation("record header \(header.map { String($0, radix: 16) }.joined(separator: " ")) where type \(expectedType) was expected")
            }
            offset += 5 + (Int(header[3]) << 8 | Int(header[4]))
            guard buffer.writerIndex >= offset else { return nil }
        }
        guard var answer = buffer.getBytes(at: start, length: offset - start), answer.count >= Self.randomOffset + 32 else { return nil }
        let received = Array(answer[Self.randomOffset..<(Self.randomOffset + 32)])
        answer.replaceSubrange(Self.randomOffset..<(Self.randomOffset + 32), with: repeatElement(0, count: 32))
        let expected = Hashing.hmacSHA256(key: secret, data: clientRandom + answer)
        guard ConstantTime.equals(expected, received) else { throw .fakeTLSBadSignature }
        buffer.moveReaderIndex(to: offset)
        return .established
    }

    mutating func unwrapInbound(_ buffer: inout ByteBuffer) throws(ProxyError) -> ByteBuffer? {
        guard let header = buffer.getBytes(at: buffer.readerIndex, length: 5) else { return nil }
        guard header[1] == 0x03, header[2] == 0x03 else {
            throw .fakeTLSProtocolViolation("record version \(header[1]).\(header[2])")
        }
        let length = Int(header[3]) << 8 | Int(header[4])
        guard buffer.readableBytes >= 5 + length else { return nil }
        switch header[0] {
        case 0x17:
            buffer.moveReaderIndex(forwardBy: 5)
            return buffer.readSlice(length: length)
        case 0x14:
            buffer.moveReaderIndex(forwardBy: 5 + length)
            return ByteBuffer()
        default:
            throw .fakeTLSProtocolViolation("record type \(header[0]) after the handshake")
        }
    }

    mutating func wrapOutbound(_ buffer: ByteBuffer, allocator: ByteBufferAllocator) -> ByteBuffer {
        var payload = buffer
        let records = max(1, (payload.readableBytes + Self.maximumRecordPayload - 1) / Self.maximumRecordPayload)
        var out = allocator.buffer(capacity: payload.readableBytes + 5 * records + 6)
        if !sentChangeCipherSpec {
            // A TLS 1.3 client sends this once before its first application data, as browsers do.
            out.writeBytes([0x14, 0x03, 0x03, 0x00, 0x01, 0x01])
            sentChangeCipherSpec = true
        }
        while payload.readableBytes > 0 {
            let length = min(payload.readableBytes, Self.maximumRecordPayload)
            out.writeBytes([0x17, 0x03, 0x03, UInt8(length >> 8), UInt8(length & 0xff)])
            if var chunk = payload.readSlice(length: length) { out.writeBuffer(&chunk) }
        }
        return out
    }

    /// A ClientHello record of exactly 517 bytes, its random zeroed for the signature.
    static func clientHello(domain: String, entropy: inout any EntropySource) -> [UInt8] {
        func u16(_ value: Int) -> [UInt8] { [UInt8(truncatingIfNeeded: value >> 8), UInt8(truncatingIfNeeded: value)] }
        func extensionBlock(_ type: Int, _ body: [UInt8]) -> [UInt8] { u16(type) + u16(body.count) + body }

        let name = Array(domain.utf8)
        var extensions: [UInt8] = []
        extensions += extensionBlock(0x0000, u16(name.count + 3) + [0x00] + u16(name.count) + name)  // server_name
        extensions += extensionBlock(0x0017, [])  // extended_master_secret
        extensions += extensionBlock(0xff01, [0x00])  // renegotiation_info
        extensions += extensionBlock(0x000a, u16(6) + u16(0x001d) + u16(0x0017) + u16(0x0018))  // supported_groups
        extensions += extensionBlock(0x000b, [0x01, 0x00])  // ec_point_formats
        extensions += extensionBlock(0x0023, [])  // session_ticket
        let alpn: [UInt8] = [0x02] + Array("h2".utf8) + [0x08] + Array("http/1.1".utf8)
        extensions += extensionBlock(0x0010, u16(alpn.count) + alpn)
        extensions += extensionBlock(0x0005, [0x01, 0x00, 0x00, 0x00, 0x00])  // status_request
        let signatures = [0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601].flatMap { u16($0) }
        extensions += extensionBlock(0x000d, u16(signatures.count) + signatures)
        extensions += extensionBlock(0x0012, [])  // signed_certificate_timestamp
        extensions += extensionBlock(0x0033, u16(36) + u16(0x001d) + u16(32) + entropy.bytes(32))  // key_share (x25519)
        extensions += extensionBlock(0x002d, [0x01, 0x01])  // psk_key_exchange_modes
        extensions += extensionBlock(0x002b, [0x04, 0x03, 0x04, 0x03, 0x03])  // supported_versions

        let suites = [0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9, 0xcca8, 0xc013, 0xc014, 0x009c, 0x009d, 0x002f, 0x0035]
            .flatMap { u16($0) }
        var body: [UInt8] = [0x03, 0x03] + [UInt8](repeating: 0, count: 32) + [0x20] + entropy.bytes(32)
        body += u16(suites.count) + suites + [0x01, 0x00]

        // Padding (extension 0x0015) brings the record to 517 bytes: 5 record + 4 handshake header.
        let fixed = 5 + 4 + body.count + 2 + extensions.count + 4
        let paddingLength = max(0, helloLength - fixed)
        extensions += extensionBlock(0x0015, [UInt8](repeating: 0, count: paddingLength))
        body += u16(extensions.count) + extensions

        let handshake: [UInt8] = [0x01, 0x00] + u16(body.count) + body
        return [0x16, 0x03, 0x01] + u16(handshake.count) + handshake
    }
}
