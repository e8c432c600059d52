/// A proxy refused or broke the connection before the MTProto transport could start.
public enum ProxyError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The SOCKS5 server accepts none of the authentication methods offered.
    case socksNoAcceptableMethod(offeredPassword: Bool)
    /// The SOCKS5 server rejected the username and password.
    case socksAuthenticationFailed(status: UInt8)
    /// The SOCKS5 server could not connect to the target (RFC 1928 reply code).
    case socksConnectFailed(reply: UInt8)
    /// The SOCKS5 server answered something that is not SOCKS5.
    case socksProtocolViolation(String)
    /// The fake-TLS MTProxy answered with bytes that are not its TLS-looking hello.
    case fakeTLSProtocolViolation(String)
    /// The fake-TLS MTProxy's hello is not signed with the secret.
    case fakeTLSBadSignature
    /// The proxy closed the connection during its handshake.
    case closedDuringHandshake(proxy: String)

    /// The proxy refused this client for what the link configures (credentials, method, secret):
    /// trying again through it cannot help until a person changes the link. A close during the
    /// handshake is not counted: an MTProxy also closes for rate limits and overload.
    public var isRefusal: Bool {
        switch self {
        case .socksNoAcceptableMethod, .socksAuthenticationFailed, .fakeTLSBadSignature: true
        case .socksConnectFailed, .socksProtocolViolation, .fakeTLSProtocolViolation, .closedDuringHandshake: false
        }
    }

    public var description: String {
        switch self {
        case .socksNoAcceptableMethod(let offeredPassword):
            "the SOCKS5 proxy accepts none of the offered authentication methods (no authentication"
                + (offeredPassword ? ", username/password" : "") + "): "
                + (offeredPassword ? "it wants a method this client lacks (GSSAPI?); use another proxy."
                    : "it requires credentials; configure a username and password for it.")
        case .socksAuthenticationFailed(let status):
            "the SOCKS5 proxy rejected the username and password (status \(status)): check the credentials configured for it."
        case .socksConnectFailed(let reply):
            "the SOCKS5 proxy could not open the connection to the DC (reply \(reply): \(Self.socksReply(reply))); "
                + "check that the proxy can reach the DC's address and port, and that its rules allow it."
        case .socksProtocolViolation(let detail):
            "the proxy does not speak SOCKS5 (\(detail)): check the proxy's address, port and type."
        case .fakeTLSProtocolViolation(let detail):
            "the fake-TLS MTProxy answered with unexpected bytes (\(detail)): check the proxy's address and that its secret is an ee secret."
        case .fakeTLSBadSignature:
            "the fake-TLS MTProxy's answer is not signed with the configured secret: the secret is wrong, or something "
                + "other than the MTProxy answered (a real TLS server of the masked domain); check the secret."
        case .closedDuringHandshake(let proxy) where proxy.hasPrefix("SOCKS5"):
            "the \(proxy) closed the connection during its handshake: what answers at that address is not a SOCKS5 proxy "
                + "(an MTProxy?), or it refused this client; check the proxy's address, port and type."
        case .closedDuringHandshake(let proxy):
            "the \(proxy) closed the connection during its handshake: it refused this client (wrong secret, wrong "
                + "transport for its secret, rate limits); check the proxy settings."
        }
    }

    static func socksReply(_ code: UInt8) -> String {
        switch code {
        case 1: "general failure"
        case 2: "connection not allowed by ruleset"
        case 3: "network unreachable"
        case 4: "host unreachable"
        case 5: "connection refused"
        case 6: "TTL expired"
        case 7: "command not supported"
        case 8: "address type not supported"
        default: "unassigned code"
        }
    }
}
