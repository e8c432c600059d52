import MTProtoCrypto

/// The two AES-256-CTR streams of an obfuscated connection, one per direction.
public struct ObfuscationCiphers {
    /// Applied to every byte this end sends (the header's last 8 bytes included).
    public let encryptor: AESCTR
    /// Applied to every byte this end receives.
    public let decryptor: AESCTR
}

@available(*, unavailable)
extension ObfuscationCiphers: Sendable {}

/// Transport obfuscation ("obfuscated2", spec `mtproto/mtproto-transports#transport-obfuscation`):
/// a client opens with 64 random bytes from which both ends derive an AES-256-CTR key and IV per
/// direction; the transport's tag (and, towards an MTProxy, the DC id) travel encrypted inside those
/// bytes, and everything after them is encrypted. Without the header's random bytes nothing on the
/// wire is constant, so a filter cannot tell MTProto by its first bytes.
///
/// Header layout: bytes 8..<40 the client's encryption key, 40..<56 its IV; the same 48 bytes reversed
/// give the decryption key and IV. Bytes 56..<60 hold the tag (`efefefef`, `eeeeeeee`, `dddddddd`),
/// 60..<62 the DC id (int16 LE), and bytes 56..<64 are sent encrypted. With an MTProxy secret each key
/// becomes SHA-256(key | secret).
public enum ObfuscationHeader {
    public static let length = 64
    static let keyRange = 8..<40
    static let ivRange = 40..<56
    static let tagRange = 56..<60
    static let dcRange = 60..<62
    static let encryptedRange = 56..<64

    /// The tag a framing announces inside the header; nil for the full transport, which has no tag
    /// and cannot be obfuscated.
    public static func tag(for kind: TransportKind) -> [UInt8]? {
        switch kind {
        case .abridged: [0xef, 0xef, 0xef, 0xef]
        case .intermediate: kind.tag
        case .paddedIntermediate: kind.tag
        case .full: nil
        }
    }

    /// The DC id as the header encodes it: +10000 for Telegram's test servers, negative for a media DC.
    public static func encodedDCID(_ dc: Int, testServers: Bool = false, media: Bool = false) -> Int16 {
        let id = Int16(clamping: dc + (testServers ? 10_000 : 0))
        return media ? -id : id
    }

    /// Whether 64 random bytes may open a connection: they must not read as the start of any other
    /// protocol the server recognizes (abridged's `ef`, a 4-byte tag, an HTTP method, a TLS record, or
    /// a full-transport packet whose seq_no 0 makes the second word zero).
    public static func isAcceptable(_ random: [UInt8]) -> Bool {
        guard random.count >= 8, random[0] != 0xef else { return false }
        let first = Array(random[0..<4])
        if forbiddenFirstWords.contains(first) { return false }
        return random[4..<8].contains { $0 != 0 }
    }

    static let forbiddenFirstWords: Set<[UInt8]> = [
        Array("HEAD".utf8), Array("POST".utf8), Array("GET ".utf8), Array("OPTI".utf8), Array("PVrG".utf8),
        [0x16, 0x03, 0x01, 0x02], [0xdd, 0xdd, 0xdd, 0xdd], [0xee, 0xee, 0xee, 0xee],
    ]

    /// A client's header for `kind` and the ciphers for the rest of the connection.
    ///
    /// - Parameters:
    ///   - dcID: written at bytes 60..<62 (see `encodedDCID`); the spec asks for it only towards an
    ///     MTProxy, which picks the DC from it. nil leaves those bytes random.
    ///   - secret: an MTProxy's 16-byte secret, or nil to talk to a DC directly.
    ///   - entropy: where the 64 random bytes come from (draws again until they are acceptable).
    /// - Throws: `ObfuscationError.unsupportedTransport` for the full transport.
    public static func makeClientHeader(
        kind: TransportKind,
        dcID: Int16?,
        secret: [UInt8]?,
        entropy: inout some EntropySource
    ) throws(ObfuscationError) -> (header: [UInt8], ciphers: ObfuscationCiphers) {
        guard let tag = tag(for: kind) else { throw .unsupportedTransport(kind) }
        var header = entropy.bytes(length)
        while !isAcceptable(header) { header = entropy.bytes(length) }
        header.replaceSubrange(tagRange, with: tag)
        if let dcID {
            let raw = UInt16(bitPattern: dcID)
            header.replaceSubrange(dcRange, with: [UInt8(truncatingIfNeeded: raw), UInt8(truncatingIfNeeded: raw >> 8)])
        }
        let ciphers = try deriveCiphers(from: header, secret: secret, role: .client)
        let encrypted = ciphers.encryptor.applied(to: header)
        header.replaceSubrange(encryptedRange, with: encrypted[encryptedRange])
        return (header, ciphers)
    }

    /// What a server reads from a client's header.
    public struct Accepted {
        public let kind: TransportKind
        /// Bytes 60..<62 as int16 LE: the DC id when the client put one there, else random.
        public let dcID: Int16
        public let ciphers: ObfuscationCiphers
    }

    /// Reads a client's 64-byte header (a DC when `secret` is nil, an MTProxy otherwise).
    /// - Throws: `ObfuscationError.unknownTag` when the decrypted tag names no transport: the bytes
    ///   are not an obfuscation header, or were made with another secret.
    public static func acceptClientHeader(_ header: [UInt8], secret: [UInt8]?) throws(ObfuscationError) -> Accepted {
        guard header.count == length else { throw .headerLength(header.count) }
        let ciphers = try deriveCiphers(from: header, secret: secret, role: .server)
        let decrypted = ciphers.decryptor.applied(to: header)
        let tag = Array(decrypted[tagRange])
        guard let kind = [TransportKind.abridged, .intermediate, .paddedIntermediate].first(where: { Self.tag(for: $0) == tag }) else {
            throw .unknownTag
        }
        let dcID = Int16(bitPattern: UInt16(decrypted[60]) | UInt16(decrypted[61]) << 8)
        return Accepted(kind: kind, dcID: dcID, ciphers: ciphers)
    }

    private static func deriveCiphers(from header: [UInt8], secret: [UInt8]?, role: TransportRole) throws(ObfuscationError) -> ObfuscationCiphers {
        let forward = Array(header[keyRange.lowerBound..<ivRange.upperBound])
        let backward = Array(forward.reversed())
        func cipher(_ material: [UInt8]) throws(ObfuscationError) -> AESCTR {
            var key = Array(material[0..<32])
            if let secret { key = Hashing.sha256(parts: [key, secret]) }
            do {
                return try AESCTR(key: key, iv: Array(material[32..<48]))
            } catch {
                throw .cipher(error)
            }
        }
        // The client encrypts with the forward material; the server decrypts with it.
        let clientToServer = try cipher(forward)
        let serverToClient = try cipher(backward)
        switch role {
        case .client: return ObfuscationCiphers(encryptor: clientToServer, decryptor: serverToClient)
        case .server: return ObfuscationCiphers(encryptor: serverToClient, decryptor: clientToServer)
        }
    }
}

/// Why an obfuscated connection could not be set up.
public enum ObfuscationError: Error, Sendable, Hashable, CustomStringConvertible {
    case unsupportedTransport(TransportKind)
    case headerLength(Int)
    case unknownTag
    case cipher(AESCTRError)

    public var description: String {
        switch self {
        case .unsupportedTransport(let kind):
            "the \(kind) transport cannot be obfuscated: its header has no tag to carry; "
                + "use abridged, intermediate or padded intermediate with obfuscation."
        case .headerLength(let count):
            "an obfuscation header is 64 bytes, got \(count): the connection ended early or the caller cut the header wrong."
        case .unknownTag:
            "the client's 64-byte header decrypts to no known transport tag: it is not an obfuscated MTProto "
                + "client, or it used another proxy secret; the connection is closed."
        case .cipher(let error):
            "could not set up the obfuscation cipher: \(error)"
        }
    }
}
