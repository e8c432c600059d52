import Foundation

/// The proxy an account connects through, kept as the link the operator gave: a SOCKS5 URL
/// (`socks5://user:pass@host:port`) or an MTProxy link (`tg://proxy?server=…&port=…&secret=…`,
/// `https://t.me/proxy?…`). The store only validates and keeps it; the client's proxy support
/// interprets it. Its credentials are secrets: `description` redacts them.
public struct ProxySetting: Sendable, Hashable, CustomStringConvertible {
    public enum Kind: String, Sendable, Hashable {
        case socks5
        case mtproxy
    }

    public let url: String
    public let kind: Kind
    public let host: String
    public let port: Int

    /// Parses and validates a proxy link; throws `SessionStoreError.invalidProxy` saying what is wrong.
    public init(_ url: String) throws(SessionStoreError) {
        guard let components = URLComponents(string: url), let scheme = components.scheme?.lowercased() else {
            throw .invalidProxy(reason: "it is not a URL; write socks5://user:pass@host:port or tg://proxy?server=HOST&port=PORT&secret=HEX "
                + "(in a user name or password, write @ as %40, : as %3A, / as %2F and % as %25)")
        }
        switch scheme {
        case "socks5", "socks5h":
            // An IPv6 literal comes in brackets ([::1]); the resolver takes it without them.
            guard let host = components.host.map(Self.unbracketed), !host.isEmpty else {
                throw .invalidProxy(reason: "the SOCKS5 URL names no host; write socks5://host:port")
            }
            guard let port = components.port, (1...65535).contains(port) else {
                throw .invalidProxy(reason: "the SOCKS5 URL names no valid port; write socks5://\(host):1080")
            }
            // A password without its user would be dropped without a word (SOCKS5 sends both or neither).
            guard !(components.user ?? "").isEmpty || (components.password ?? "").isEmpty else {
                throw .invalidProxy(reason: "the SOCKS5 URL has a password but no user name; write socks5://USER:PASSWORD@\(host):\(port)")
            }
            guard components.path.isEmpty || components.path == "/", components.query == nil, components.fragment == nil else {
                throw .invalidProxy(reason: "a SOCKS5 URL is socks5://[USER:PASSWORD@]HOST:PORT, with no path, query or fragment")
            }
            self.kind = .socks5
            self.host = host
            self.port = port
        case "tg", "https", "http":
            let isLink = scheme == "tg" ? components.host == "proxy" : (components.host == "t.me" && components.path == "/proxy")
            guard isLink else {
                throw .invalidProxy(reason: "only socks5:// URLs and MTProxy links (tg://proxy?… or https://t.me/proxy?…) are proxies")
            }
            let items = components.queryItems ?? []
            func value(_ name: String) -> String? { items.first { $0.name == name }?.value }
            guard let server = value("server").map(Self.unbracketed), !server.isEmpty else {
                throw .invalidProxy(reason: "the MTProxy link has no server=")
            }
            guard let portText = value("port"), let port = Int(portText), (1...65535).contains(port) else {
                throw .invalidProxy(reason: "the MTProxy link has no valid port=")
            }
            guard let secret = value("secret"), !secret.isEmpty else {
                throw .invalidProxy(reason: "the MTProxy link has no secret=")
            }
            self.kind = .mtproxy
            self.host = server
            self.port = port
        default:
            throw .invalidProxy(reason: "unsupported scheme \(scheme); use socks5:// or an MTProxy link")
        }
        self.url = url
    }

    public var description: String { "\(kind.rawValue) proxy \(address)" }

    /// HOST:PORT, an IPv6 host in brackets ([::1]:1080), as people write it.
    public var address: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }

    static func unbracketed(_ host: String) -> String {
        host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
    }
}
