import Foundation
import MTProtoClient
import MTProtoNIO

extension ProxySetting {
    /// The client's proxy for this stored link: SOCKS5 with its credentials, or an MTProxy with its
    /// secret. Throws `invalidProxy` when the link's credentials or secret cannot be used.
    public func clientProxy() throws(SessionStoreError) -> MTProtoProxy {
        guard let components = URLComponents(string: url) else { throw .invalidProxy(reason: "the stored proxy link is not a URL") }
        switch kind {
        case .socks5:
            var credentials: SOCKS5Proxy.Credentials?
            if let user = components.user, !user.isEmpty {
                let password = components.password ?? ""
                guard (1...255).contains(user.utf8.count), (1...255).contains(password.utf8.count) else {
                    throw .invalidProxy(reason: "a SOCKS5 user name and password are each 1 to 255 bytes")
                }
                credentials = SOCKS5Proxy.Credentials(username: user, password: password)
            }
            return .socks5(SOCKS5Proxy(host: host, port: port, credentials: credentials))
        case .mtproxy:
            let secretText = components.queryItems?.first { $0.name == "secret" }?.value ?? ""
            do {
                return .mtproxy(MTProxy(host: host, port: port, secret: try MTProxySecret(parsing: secretText)))
            } catch {
                throw .invalidProxy(reason: "\(error)")
            }
        }
    }
}
