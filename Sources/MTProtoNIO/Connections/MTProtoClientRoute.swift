/// How a client's connection reaches a DC: the framing, whether it is obfuscated, and the proxy it
/// goes through.
public struct MTProtoClientRoute: Sendable, Hashable, CustomStringConvertible {
    /// The framing asked for. An MTProxy secret may override it (see `effectiveTransport`).
    public var transport: TransportKind
    /// Transport obfuscation (a 64-byte random header, AES-256-CTR both ways). Always on through an MTProxy.
    public var obfuscated: Bool
    public var proxy: MTProtoProxy?
    /// The DC id as an MTProxy reads it from the header (`ObfuscationHeader.encodedDCID`).
    public var dcID: Int16

    public init(transport: TransportKind, obfuscated: Bool = false, proxy: MTProtoProxy? = nil, dcID: Int16 = 0) {
        self.transport = transport
        self.obfuscated = obfuscated
        self.proxy = proxy
        self.dcID = dcID
    }

    var mtproxy: MTProxy? {
        if case .mtproxy(let proxy) = proxy { proxy } else { nil }
    }

    /// Whether the bytes are obfuscated: asked for, or required by an MTProxy.
    public var isObfuscated: Bool { obfuscated || mtproxy != nil }

    /// The framing that goes on the wire: a `dd`/`ee` secret requires padded intermediate; the full
    /// transport has no obfuscated form, so an obfuscated route asking for it uses intermediate.
    public var effectiveTransport: TransportKind {
        if let required = mtproxy?.secret.requiredTransport { return required }
        if isObfuscated && transport == .full { return .intermediate }
        return transport
    }

    public var description: String {
        var text = (isObfuscated ? "obfuscated " : "") + "\(effectiveTransport)"
        if let proxy { text += " via \(proxy)" }
        return text
    }
}
