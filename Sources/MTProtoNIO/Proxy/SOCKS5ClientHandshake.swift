import NIOCore

/// The client side of a SOCKS5 CONNECT (RFC 1928) with optional username/password authentication
/// (RFC 1929), sans-IO: `start()` gives the greeting, each `read` consumes what the server sent and
/// says what to send next. swift-nio-extras' `NIOSOCKS` client offers only "no authentication",
/// which is why this exists.
struct SOCKS5ClientHandshake {
    enum Step: Equatable {
        case send([UInt8])
        /// The tunnel is open; bytes after the server's reply belong to the tunnelled protocol.
        case established
    }

    private enum State {
        case idle, awaitingMethod, awaitingAuthentication, awaitingReply, established
    }

    private var state: State = .idle
    private let targetHost: String
    private let targetPort: Int
    private let credentials: SOCKS5Proxy.Credentials?

    init(targetHost: String, targetPort: Int, credentials: SOCKS5Proxy.Credentials?) {
        self.targetHost = targetHost
        self.targetPort = targetPort
        self.credentials = credentials
    }

    var isEstablished: Bool { state == .established }

    mutating func start() -> [UInt8] {
        state = .awaitingMethod
        return credentials == nil ? [0x05, 0x01, 0x00] : [0x05, 0x02, 0x00, 0x02]
    }

    /// Consumes one server message from `buffer`; nil (nothing consumed) while it is incomplete.
    mutating func readStep(_ buffer: inout ByteBuffer) throws(ProxyError) -> Step? {
        switch state {
        case .idle, .established:
            return nil
        case .awaitingMethod:
            guard let reply = buffer.readBytes(length: 2) else { return nil }
            guard reply[0] == 0x05 else { throw .socksProtocolViolation("method selection version \(reply[0])") }
            switch reply[1] {
            case 0x00:
                state = .awaitingReply
                return .send(connectRequest())
            case 0x02 where credentials != nil:
                state = .awaitingAuthentication
                return .send(authenticationRequest())
            case 0xff:
                throw .socksNoAcceptableMethod(offeredPassword: credentials != nil)
            default:
                throw .socksProtocolViolation("selected method \(reply[1]), which was not offered")
            }
        case .awaitingAuthentication:
            guard let reply = buffer.readBytes(length: 2) else { return nil }
            guard reply[0] == 0x01 else { throw .socksProtocolViolation("authentication version \(reply[0])") }
            guard reply[1] == 0x00 else { throw .socksAuthenticationFailed(status: reply[1]) }
            state = .awaitingReply
            return .send(connectRequest())
        case .awaitingReply:
            let start = buffer.readerIndex
            guard let head = buffer.getBytes(at: start, length: 5) else { return nil }
            guard head[0] == 0x05 else { throw .socksProtocolViolation("reply version \(head[0])") }
            guard head[1] == 0x00 else { throw .socksConnectFailed(reply: head[1]) }
            let addressLength: Int
            switch head[3] {
            case 0x01: addressLength = 4
            case 0x04: addressLength = 16
            case 0x03: addressLength = 1 + Int(head[4])
            default: throw .socksProtocolViolation("bound address type \(head[3])")
            }
            let total = 4 + addressLength + 2
            guard buffer.readableBytes >= total else { return nil }
            buffer.moveReaderIndex(forwardBy: total)
            state = .established
            return .established
        }
    }

    private func authenticationRequest() -> [UInt8] {
        guard let credentials else { return [] }
        let user = Array(credentials.username.utf8)
        let password = Array(credentials.password.utf8)
        return [0x01, UInt8(user.count)] + user + [UInt8(password.count)] + password
    }

    private func connectRequest() -> [UInt8] {
        var request: [UInt8] = [0x05, 0x01, 0x00]
        if let ipv4 = Self.ipv4(targetHost) {
            request += [0x01] + ipv4
        } else if let ipv6 = try? SocketAddress(ipAddress: targetHost, port: 0), case .v6(let address) = ipv6 {
            request.append(0x04)
            withUnsafeBytes(of: address.address.sin6_addr) { request += $0 }
        } else {
            let name = Array(targetHost.utf8.prefix(255))
            request += [0x03, UInt8(name.count)] + name
        }
        request += [UInt8(truncatingIfNeeded: targetPort >> 8), UInt8(truncatingIfNeeded: targetPort)]
        return request
    }

    private static func ipv4(_ host: String) -> [UInt8]? {
        let parts = host.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var bytes: [UInt8] = []
        for part in parts {
            guard let value = UInt8(part) else { return nil }
            bytes.append(value)
        }
        return bytes
    }
}
