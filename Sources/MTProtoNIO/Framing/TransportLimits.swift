/// How large a frame a connection accepts. The check runs on the length header, before any of the
/// payload is buffered, so a peer cannot make a connection hold more than this (plus one header).
public struct TransportLimits: Sendable, Hashable {
    /// No framing accepts more than this: 16 MiB is well above Telegram's largest messages
    /// (a 512 KiB file part inside an encrypted envelope) and bounds what one peer can make us hold.
    public static let hardMaximumFrameLength = 16 * 1024 * 1024

    /// The largest payload (for padded intermediate: payload plus padding) a frame may announce.
    public let maximumFrameLength: Int

    /// - Precondition: `0 < maximumFrameLength <= hardMaximumFrameLength`.
    public init(maximumFrameLength: Int = TransportLimits.hardMaximumFrameLength) {
        precondition(
            maximumFrameLength > 0 && maximumFrameLength <= Self.hardMaximumFrameLength,
            "maximumFrameLength must be in 1...\(Self.hardMaximumFrameLength), got \(maximumFrameLength)"
        )
        self.maximumFrameLength = maximumFrameLength
    }

    public static let `default` = TransportLimits()
}
