#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import MTProtoCrypto
import NIOCore

/// What a connection needs beyond the transport kind: limits, the padding source, and the receive
/// buffer sizes that decide how much memory an idle connection keeps.
public struct MTProtoTransportConfiguration: Sendable {
    public var limits: TransportLimits
    /// Padding lengths and bytes of padded intermediate.
    public var entropy: any EntropySource
    /// Most padding bytes of padded intermediate (0...15; default 15, see `PaddedIntermediateFraming`).
    public var maximumPadding: Int
    /// Bytes read per socket read: NIO sizes each read from this range and never shrinks a channel's
    /// buffer below what it once grew to, so the maximum bounds what every idle connection keeps
    /// (default maximum 64 KiB would keep ~64 KiB per connection after one large message; 8 KiB keeps
    /// ~12 KiB). Large frames still arrive whole, in more reads.
    public var receiveBufferSizes: (minimum: Int, initial: Int, maximum: Int)
    /// Seconds since 1970, for the timestamp a fake-TLS MTProxy checks in the client's hello.
    public var unixTime: @Sendable () -> Int

    public init(
        limits: TransportLimits = .default,
        entropy: any EntropySource = SystemEntropy(),
        maximumPadding: Int = PaddedIntermediateFraming.maximumPaddingLength,
        receiveBufferSizes: (minimum: Int, initial: Int, maximum: Int) = (minimum: 64, initial: 512, maximum: 8192),
        unixTime: @escaping @Sendable () -> Int = { Int(time(nil)) }
    ) {
        self.unixTime = unixTime
        self.limits = limits
        self.entropy = entropy
        self.maximumPadding = maximumPadding
        self.receiveBufferSizes = receiveBufferSizes
    }

    public var receiveAllocator: AdaptiveRecvByteBufferAllocator {
        AdaptiveRecvByteBufferAllocator(
            minimum: receiveBufferSizes.minimum,
            initial: receiveBufferSizes.initial,
            maximum: receiveBufferSizes.maximum
        )
    }

    public func framing(_ kind: TransportKind, role: TransportRole, sendsTag: Bool = true) -> TransportFraming {
        TransportFraming(kind: kind, role: role, limits: limits, entropy: entropy, maximumPadding: maximumPadding, sendsTag: sendsTag)
    }
}
