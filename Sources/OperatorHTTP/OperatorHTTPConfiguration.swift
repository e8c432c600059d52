import NIOCore
import NIOPosix
import SessionManager

/// Where the operator's HTTP server listens and who may read it.
public struct OperatorHTTPConfiguration: Sendable {
    /// The address to bind: loopback (127.0.0.1, ::1, localhost) by default. Anything else
    /// exposes account state to the network and needs `accessToken`.
    public var host: String
    /// 0 picks a free port (tests); `OperatorHTTPServer.listeningPort()` tells which.
    public var port: Int
    /// When set, every request must carry it: `Authorization: Bearer TOKEN`, or `?token=TOKEN`
    /// (for a browser; the token then shows in its history). Required off loopback.
    public var accessToken: String?
    /// The accounts this process runs, judged by `/health`; nil: every account in the store.
    public var accounts: [AccountID]?
    /// Seconds between the dashboard's reloads.
    public var refreshSeconds: Int
    /// How far back the dashboard's queue chart goes, seconds.
    public var historyWindow: Double
    /// Seconds a route waits for the store before answering that it could not be read: a probe (a
    /// load balancer's, Prometheus's) gets an answer within its own timeout even while the store
    /// does not answer.
    public var storeTimeout: Double

    public static let defaultPort = 9464
    public static let minimumTokenLength = 16

    public init(host: String = "127.0.0.1", port: Int = OperatorHTTPConfiguration.defaultPort, accessToken: String? = nil,
                accounts: [AccountID]? = nil, refreshSeconds: Int = 5, historyWindow: Double = 3600, storeTimeout: Double = 3) {
        self.host = host
        self.port = port
        self.accessToken = accessToken
        self.accounts = accounts
        self.refreshSeconds = refreshSeconds
        self.historyWindow = historyWindow
        self.storeTimeout = storeTimeout
    }

    /// Whether `host` names only this machine.
    public static func isLoopback(_ host: String) -> Bool {
        let name = host.lowercased()
        if name == "localhost" || name == "::1" || name == "[::1]" { return true }
        let parts = name.split(separator: ".", omittingEmptySubsequences: false)
        return parts.count == 4 && parts[0] == "127" && parts.allSatisfy { part in UInt8(part) != nil }
    }

    /// Binds the address once and lets it go, so a port another process holds is refused before a
    /// run connects its accounts and claims jobs, not once the server starts after them. Port 0
    /// (any free one) is not checked. A port taken between this check and the server's own bind
    /// still fails the server, later.
    public func checkAddressIsFree() async throws(OperatorHTTPError) {
        guard port != 0 else { return }
        do {
            let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .bind(host: host, port: port).get()
            try await channel.close()
        } catch {
            throw .bindFailed(host: host, port: port, reason: OperatorHTTPError.bindReason(error))
        }
    }

    /// Refuses a configuration that would expose the server without a token, or is unusable.
    public func validate() throws(OperatorHTTPError) {
        guard (0...65535).contains(port) else { throw .invalidPort(port) }
        guard !host.isEmpty else { throw .invalidHost(host) }
        if let accessToken {
            guard accessToken.count >= Self.minimumTokenLength, accessToken.allSatisfy({ $0.isASCII && !$0.isWhitespace && $0 != "&" && $0 != "#" })
            else { throw .weakToken(minimumLength: Self.minimumTokenLength) }
        } else if !Self.isLoopback(host) {
            throw .tokenRequired(host: host)
        }
        guard refreshSeconds >= 1 else { throw .invalidRefresh(refreshSeconds) }
    }
}

/// Why the operator's server did not start. Each says what, why and what to do.
public enum OperatorHTTPError: Error, Sendable, Hashable, CustomStringConvertible {
    case tokenRequired(host: String)
    case weakToken(minimumLength: Int)
    case invalidPort(Int)
    case invalidHost(String)
    case invalidRefresh(Int)
    case bindFailed(host: String, port: Int, reason: String)

    /// The system's words for a failed bind ("Address already in use (errno 98)"): NIO's own
    /// description names its internal call and stray parentheses.
    static func bindReason(_ error: any Error) -> String {
        guard let io = error as? IOError else { return "\(error)" }
        return "\(String(cString: strerror(io.errnoCode))) (errno \(io.errnoCode))"
    }

    public var description: String {
        switch self {
        case .tokenRequired(let host):
            "refusing to serve HTTP on \(host) without an access token: off loopback, anyone who reaches the port would see the "
                + "accounts' state and metrics. Set an access token (at least \(OperatorHTTPConfiguration.minimumTokenLength) characters, "
                + "`tgsm run --http-token` or TGSM_HTTP_TOKEN; clients send `Authorization: Bearer TOKEN` or `?token=TOKEN`), or bind to 127.0.0.1"
        case .weakToken(let minimum):
            "the HTTP access token is too weak: use at least \(minimum) characters without spaces, '&' or '#' "
                + "(e.g. `openssl rand -hex 24`)"
        case .invalidPort(let port):
            "the HTTP port \(port) is not between 0 and 65535"
        case .invalidHost(let host):
            "the HTTP host '\(host)' is not an address to bind; use 127.0.0.1 (default), ::1, or an address of this machine with a token"
        case .invalidRefresh(let seconds):
            "the dashboard refresh interval \(seconds) s must be at least 1 s"
        case .bindFailed(let host, let port, let reason):
            "cannot listen on \(host):\(port): \(reason); another process may use the port: choose another one, or stop it"
        }
    }
}
