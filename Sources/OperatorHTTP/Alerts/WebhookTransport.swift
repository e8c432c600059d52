import Foundation
import MTProtoNIO
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// Where alerts go: an http or https URL. Its path often holds the webhook's secret (Slack's
/// does), so only `redacted` (scheme, host and port) is ever logged or shown.
public struct WebhookURL: Sendable, Hashable, CustomStringConvertible {
    public var isTLS: Bool
    public var host: String
    public var port: Int
    /// Path and query, as sent in the request line.
    public var target: String

    public enum ParseError: Error, CustomStringConvertible, Equatable {
        case invalid(reason: String)

        public var description: String {
            switch self {
            case .invalid(let reason): "the alert webhook URL cannot be used: \(reason). Give an http:// or https:// URL, e.g. https://hooks.example.com/tgsm"
            }
        }
    }

    public init(_ text: String) throws(ParseError) {
        guard let components = URLComponents(string: text.trimmingCharacters(in: .whitespaces)), let scheme = components.scheme?.lowercased() else {
            throw .invalid(reason: "it is not a URL")
        }
        guard scheme == "http" || scheme == "https" else { throw .invalid(reason: "the scheme is \(scheme), not http or https") }
        guard let host = components.host, !host.isEmpty else { throw .invalid(reason: "it names no host") }
        guard components.user == nil, components.password == nil else {
            throw .invalid(reason: "it carries a user name or password; put a token in the path, or sign the alerts with a shared secret "
                + "(TGSM_ALERT_SECRET, or \"alerts\": {\"secret\": …} in the config file)")
        }
        let port = components.port ?? (scheme == "https" ? 443 : 80)
        guard (1...65_535).contains(port) else { throw .invalid(reason: "port \(port) is out of range") }
        isTLS = scheme == "https"
        self.host = host
        self.port = port
        let path = components.percentEncodedPath.isEmpty ? "/" : components.percentEncodedPath
        target = path + (components.percentEncodedQuery.map { "?" + $0 } ?? "")
    }

    /// Scheme, host and port: what logs and errors say instead of the URL.
    public var redacted: String { "\(isTLS ? "https" : "http")://\(host.contains(":") ? "[\(host)]" : host):\(port)/…" }
    public var description: String { redacted }

    var hostHeader: String {
        let name = host.contains(":") ? "[\(host)]" : host
        return port == (isTLS ? 443 : 80) ? name : "\(name):\(port)"
    }
}

/// Sends one request body to the webhook and returns the HTTP status.
public protocol WebhookTransport: Sendable {
    func post(_ body: [UInt8], headers: [(String, String)], to url: WebhookURL, timeout: Double) async throws -> Int
}

/// Why a POST did not get an answer.
public struct WebhookTransportError: Error, CustomStringConvertible {
    public var description: String
}

/// One POST per connection over SwiftNIO's HTTP/1.1 codec, TLS by swift-nio-ssl with the system's
/// trust roots for https. Alerts are rare: a connection each keeps no state to go stale.
public struct NIOWebhookTransport: WebhookTransport {
    let group: any EventLoopGroup
    let extraTrustRoots: [String]

    /// - Parameter extraTrustRoots: PEM files of certificate authorities trusted besides the
    ///   system's, for a receiver behind a private CA.
    public init(group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton, extraTrustRoots: [String] = []) {
        self.group = group
        self.extraTrustRoots = extraTrustRoots
    }

    public func post(_ body: [UInt8], headers: [(String, String)], to url: WebhookURL, timeout: Double) async throws -> Int {
        let eventLoop = group.next()
        let answer = eventLoop.makePromise(of: Int.self)
        let tls: NIOSSLContext?
        do {
            var configuration = TLSConfiguration.makeClientConfiguration()
            configuration.additionalTrustRoots = extraTrustRoots.map { .file($0) }
            tls = url.isTLS ? try NIOSSLContext(configuration: configuration) : nil
        } catch {
            throw WebhookTransportError(description: "TLS could not be set up: \(error)")
        }
        // SNI takes names only; an address literal is sent without it.
        let serverName = url.isTLS && (try? SocketAddress(ipAddress: url.host, port: 0)) == nil ? url.host : nil
        let bootstrap = ClientBootstrap(group: eventLoop)
            .connectTimeout(.milliseconds(Int64(max(0.1, timeout) * 1000)))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls { try channel.pipeline.syncOperations.addHandler(try NIOSSLClientHandler(context: tls, serverHostname: serverName)) }
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(ResponseStatusHandler(answer: answer))
                }
            }
        let channel: any Channel
        do { channel = try await bootstrap.connect(host: url.host, port: url.port).get() } catch {
            answer.fail(error)
            throw WebhookTransportError(description: "cannot connect to \(url.redacted): \(ConnectFailure.describe(error))")
        }
        let deadline = eventLoop.scheduleTask(in: .milliseconds(Int64(max(0.1, timeout) * 1000))) {
            answer.fail(WebhookTransportError(description: "\(url.redacted) did not answer within \(timeout) s"))
        }
        var head = HTTPRequestHead(version: .http1_1, method: .POST, uri: url.target)
        head.headers.add(name: "Host", value: url.hostHeader)
        head.headers.add(name: "Content-Type", value: "application/json")
        head.headers.add(name: "Content-Length", value: "\(body.count)")
        head.headers.add(name: "Connection", value: "close")
        head.headers.add(name: "User-Agent", value: "tgsm")
        for (name, value) in headers { head.headers.add(name: name, value: value) }
        channel.write(HTTPClientRequestPart.head(head), promise: nil)
        channel.write(HTTPClientRequestPart.body(.byteBuffer(ByteBuffer(bytes: body))), promise: nil)
        channel.writeAndFlush(HTTPClientRequestPart.end(nil), promise: nil)
        defer {
            deadline.cancel()
            channel.close(promise: nil)
        }
        do { return try await answer.futureResult.get() } catch let error as WebhookTransportError {
            throw error
        } catch {
            throw WebhookTransportError(description: "\(url.redacted) failed: \(error)")
        }
    }
}

/// Completes with the response's status once the response has ended (or fails when the
/// connection ends first).
private final class ResponseStatusHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart
    let answer: EventLoopPromise<Int>
    /// Touched on the channel's event loop only.
    private var status: Int?

    init(answer: EventLoopPromise<Int>) {
        self.answer = answer
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            status = Int(head.status.code)
        case .body:
            break
        case .end:
            if let status { answer.succeed(status) }
            context.close(promise: nil)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        answer.fail(error)
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        answer.fail(WebhookTransportError(description: "the connection closed before a whole answer"))
        context.fireChannelInactive()
    }
}
