import MTProtoCrypto
/// A proxy one connection goes through.
public enum MTProtoProxy: Sendable, Hashable, CustomStringConvertible {
    /// A SOCKS5 server (RFC 1928), without authentication or with a username and password (RFC 1929).
    case socks5(SOCKS5Proxy)
    /// An MTProxy: the connection is obfuscated with the proxy's secret and carries the DC id.
    case mtproxy(MTProxy)

    public var description: String {
        switch self {
        case .socks5(let proxy): "\(proxy)"
        case .mtproxy(let proxy): "\(proxy)"
        }
    }
}

public struct SOCKS5Proxy: Sendable, Hashable, CustomStringConvertible {
    public struct Credentials: Sendable, Hashable {
        public var username: String
        public var password: String

        /// - Precondition: each is 1 to 255 bytes of UTF-8 (RFC 1929).
        public init(username: String, password: String) {
            precondition((1...255).contains(username.utf8.count), "a SOCKS5 username is 1 to 255 bytes")
            precondition((1...255).contains(password.utf8.count), "a SOCKS5 password is 1 to 255 bytes")
            self.username = username
            self.password = password
        }
    }

    public var host: String
    public var port: Int
    /// nil offers only "no authentication".
    public var credentials: Credentials?

    public init(host: String, port: Int, credentials: Credentials? = nil) {
        self.host = host
        self.port = port
        self.credentials = credentials
    }

    /// Shows neither password nor user name: it reaches logs, alerts and /health.
    public var description: String {
        "SOCKS5 proxy \(ProxyAddress.text(host, port))" + (credentials == nil ? "" : " (with a user name and password)")
    }
}

public struct MTProxy: Sendable, Hashable, CustomStringConvertible {
    public var host: String
    public var port: Int
    public var secret: MTProxySecret

    public init(host: String, port: Int, secret: MTProxySecret) {
        self.host = host
        self.port = port
        self.secret = secret
    }

    /// Never shows the secret.
    public var description: String {
        switch secret.mode {
        case .plain: "MTProxy \(ProxyAddress.text(host, port))"
        case .paddedIntermediate: "MTProxy \(ProxyAddress.text(host, port)) (dd: padded intermediate)"
        case .fakeTLS(let domain): "MTProxy \(ProxyAddress.text(host, port)) (ee: fake TLS as \(domain))"
        }
    }
}

/// An MTProxy secret as proxy links carry it: 16 bytes in hex (or base64), optionally prefixed by a
/// byte that picks the mode: `dd` = padded intermediate, `ee` = fake TLS, the domain following the
/// 16 bytes.
public struct MTProxySecret: Sendable, Hashable {
    public enum Mode: Sendable, Hashable {
        /// Obfuscation over the transport the client chose.
        case plain
        /// `dd`: obfuscation over padded intermediate only.
        case paddedIntermediate
        /// `ee`: obfuscated padded intermediate inside TLS records after a TLS-looking handshake
        /// naming `domain`.
        case fakeTLS(domain: String)
    }

    /// The 16 bytes that key the obfuscation (and sign the fake-TLS handshake).
    public let key: [UInt8]
    public let mode: Mode

    public init(key: [UInt8], mode: Mode) throws(MTProxySecretError) {
        guard key.count == 16 else { throw .keyLength(key.count) }
        if case .fakeTLS(let domain) = mode, domain.isEmpty || domain.utf8.count > 253 {
            throw .invalidDomain
        }
        self.key = key
        self.mode = mode
    }

    /// Parses a secret as proxy links carry it: hex (`0123…`, `dd0123…`, `ee0123…` + the domain's
    /// bytes in hex) or the same bytes in base64 / base64url.
    public init(parsing text: String) throws(MTProxySecretError) {
        let trimmed = String(text.filter { !$0.isWhitespace })
        guard let bytes = (trimmed.isEmpty ? nil : Hex.decode(trimmed)) ?? Self.base64(trimmed) else { throw .notHexOrBase64 }
        switch bytes.first {
        case 0xdd where bytes.count == 17:
            try self.init(key: Array(bytes[1..<17]), mode: .paddedIntermediate)
        case 0xee where bytes.count > 17:
            guard let domain = String(validating: bytes[17...], as: UTF8.self) else { throw .invalidDomain }
            try self.init(key: Array(bytes[1..<17]), mode: .fakeTLS(domain: domain))
        case _ where bytes.count == 16:
            try self.init(key: bytes, mode: .plain)
        default:
            throw .keyLength(bytes.count)
        }
    }

    /// The transport this secret requires; nil lets the client choose (a plain secret).
    public var requiredTransport: TransportKind? {
        switch mode {
        case .plain: nil
        case .paddedIntermediate, .fakeTLS: .paddedIntermediate
        }
    }

    private static func base64(_ text: String) -> [UInt8]? {
        var value: UInt32 = 0
        var bits = 0
        var bytes: [UInt8] = []
        for character in text.utf8 {
            let digit: UInt8
            switch character {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"): digit = character - UInt8(ascii: "A")
            case UInt8(ascii: "a")...UInt8(ascii: "z"): digit = character - UInt8(ascii: "a") + 26
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = character - UInt8(ascii: "0") + 52
            case UInt8(ascii: "+"), UInt8(ascii: "-"): digit = 62
            case UInt8(ascii: "/"), UInt8(ascii: "_"): digit = 63
            case UInt8(ascii: "="): continue
            default: return nil
            }
            value = value << 6 | UInt32(digit)
            bits += 6
            if bits >= 8 {
                bits -= 8
                bytes.append(UInt8(truncatingIfNeeded: value >> UInt32(bits)))
            }
        }
        return bytes.isEmpty ? nil : bytes
    }
}

/// Why a proxy secret was refused.
public enum MTProxySecretError: Error, Sendable, Hashable, CustomStringConvertible {
    case notHexOrBase64
    case keyLength(Int)
    case invalidDomain

    public var description: String {
        switch self {
        case .notHexOrBase64:
            "the MTProxy secret is neither hex nor base64: copy it whole from the proxy link (the secret= parameter)."
        case .keyLength(let count):
            "the MTProxy secret holds \(count) bytes where 16 are needed (17 with a dd prefix, more with an ee prefix and "
                + "a domain): it was cut or mistyped; copy it whole from the proxy link."
        case .invalidDomain:
            "the fake-TLS (ee) MTProxy secret names no valid domain after its 16 key bytes: copy the whole secret from the proxy link."
        }
    }
}

/// HOST:PORT as people write it: an IPv6 host in brackets ([::1]:1080).
enum ProxyAddress {
    static func text(_ host: String, _ port: Int) -> String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}
