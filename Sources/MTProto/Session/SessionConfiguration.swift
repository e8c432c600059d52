/// Limits and timings shared by both ends of an encrypted session. The defaults are the spec's.
public struct SessionConfiguration: Sendable, Hashable {
    /// A msg_id more than this many seconds in the past is refused (mtproto/description: 300).
    public var maxMessageAge: Double = 300
    /// A msg_id more than this many seconds in the future is refused (mtproto/description: 30).
    public var maxMessageLead: Double = 30
    /// How many received msg_ids are kept for replay detection (security_guidelines' "last N").
    public var receivedWindowCapacity = 1024
    /// Flush acknowledgements on their own once this many are waiting (service_messages_about_messages: "say, over 16").
    public var ackFlushCount = 16
    /// ...or once the oldest has waited this long with nothing else to send.
    public var ackFlushDelay: Double = 30
    /// Outgoing RPC bodies at least this large are gzip_packed when that makes them smaller.
    public var gzipThreshold = 512
    /// The most a gzip_packed body may inflate to; more is treated as a zip bomb.
    public var maxInflatedBytes = 16 << 20
    /// msg_container limits for packing outgoing messages.
    public var maxContainerMessages = MessageContainer.maxMessages
    public var maxContainerBytes = MessageContainer.maxBytes
    /// Random extra 16-byte padding blocks (0...this) added to every packet to blur lengths.
    public var maxExtraPaddingBlocks = 3
    /// Sent messages that expect no answer are forgotten after this long (they can no longer be
    /// named by bad_msg_notification: the server refuses ids that old anyway).
    public var sentMessageRetention: Double = 600

    public init() {}
}
