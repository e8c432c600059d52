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
            throw .invalidProxy(reason: "it is not a URL; write socks5://user:pass@host:port or tg://proxy?server=HOST&port=PORT&secret=HEX")
        }
        switch scheme {
        case "socks5", "socks5h":
            guard let host = components.host, !host.isEmpty else {
                throw .invalidProxy(reason: "the SOCKS5 URL names no host; write socks5://host:port")
            }
            guard let port = components.port, (1...65535).contains(port) else {
                throw .invalidProxy(reason: "the SOCKS5 URL names no valid port; write socks5://\(host):1080")
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
            guard let server = value("server"), !server.isEmpty else {
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

    public var description: String { "\(kind.rawValue) proxy \(host):\(port)" }
}
