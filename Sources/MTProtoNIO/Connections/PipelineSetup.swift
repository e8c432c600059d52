import MTProtoCrypto
import NIOCore

extension ChannelPipeline.SynchronousOperations {
    /// Adds a client's framing: frames of `TransportFrame` in and out, the tag sent before the first packet.
    public func addMTProtoClientHandlers(
        transport: TransportKind,
        configuration: MTProtoTransportConfiguration = MTProtoTransportConfiguration()
    ) throws {
        try addFramingHandlers(transport, configuration: configuration, sendsTag: true)
    }

    /// Adds everything a client's connection along `route` needs, socket side first: the proxy's
    /// handshake (SOCKS5 CONNECT to `targetHost`:`targetPort`, or a fake-TLS MTProxy's hello and
    /// records), the obfuscation layer, then the framing. Call it on a channel connected to the proxy
    /// when the route has one, else to the DC.
    ///
    /// - Returns: a future that succeeds once the proxy's handshake is done (nil without a handshake);
    ///   until then the framing's writes wait in the proxy's handler.
    @discardableResult
    public func addMTProtoClientHandlers(
        route: MTProtoClientRoute,
        targetHost: String,
        targetPort: Int,
        configuration: MTProtoTransportConfiguration = MTProtoTransportConfiguration()
    ) throws -> EventLoopFuture<Void>? {
        var ready: EventLoopFuture<Void>?
        switch route.proxy {
        case .socks5(let proxy):
            let promise = eventLoop.makePromise(of: Void.self)
            let handshake = SOCKS5ClientHandshake(targetHost: targetHost, targetPort: targetPort, credentials: proxy.credentials)
            try addHandler(ProxyHandshakeHandler(handshake: handshake, established: promise, now: configuration.unixTime))
            ready = promise.futureResult
        case .mtproxy(let proxy):
            if case .fakeTLS(let domain) = proxy.secret.mode {
                let promise = eventLoop.makePromise(of: Void.self)
                let handshake = FakeTLSClientHandshake(secret: proxy.secret.key, domain: domain, entropy: configuration.entropy)
                try addHandler(ProxyHandshakeHandler(handshake: handshake, established: promise, now: configuration.unixTime))
                ready = promise.futureResult
            }
        case nil:
            break
        }
        let transport = route.effectiveTransport
        if route.isObfuscated {
            var entropy = configuration.entropy
            let mtproxy = route.mtproxy
            let (header, ciphers) = try ObfuscationHeader.makeClientHeader(
                kind: transport,
                dcID: mtproxy == nil ? nil : route.dcID,
                secret: mtproxy?.secret.key,
                entropy: &entropy
            )
            try addHandler(ObfuscationHandler(ciphers: ciphers, header: header))
        }
        try addFramingHandlers(transport, configuration: configuration, sendsTag: !route.isObfuscated)
        return ready
    }

    private func addFramingHandlers(_ transport: TransportKind, configuration: MTProtoTransportConfiguration, sendsTag: Bool) throws {
        try addHandler(MTProtoFrameEncoder(framing: configuration.framing(transport, role: .client, sendsTag: sendsTag)))
        try addHandler(ByteToMessageHandler(MTProtoFrameDecoder(framing: configuration.framing(transport, role: .client))))
    }

    /// Adds a server's framing: an obfuscated client is recognized by its 64-byte header and its
    /// bytes decrypted from then on (`ServerObfuscationDetector`); the transport is detected from the
    /// client's first (decrypted) bytes, then the encoder for it is installed (see `MTProtoFrameDecoder`).
    public func addMTProtoServerHandlers(
        configuration: MTProtoTransportConfiguration = MTProtoTransportConfiguration()
    ) throws {
        try addHandler(ServerObfuscationDetector())
        try addHandler(ByteToMessageHandler(MTProtoFrameDecoder(detectingWith: configuration)))
    }
}
