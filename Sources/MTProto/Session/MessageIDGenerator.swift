/// What a msg_id's two low bits say about its sender (mtproto/description, "Message Identifier").
public enum MessageIDKind: Sendable, Hashable {
    /// Client messages: divisible by 4.
    case client
    /// Server messages answering a client message: ≡ 1 (mod 4).
    case serverResponse
    /// Server messages nobody asked for (updates, new_session_created): ≡ 3 (mod 4).
    case serverInitiated

    var lowBits: Int64 {
        switch self {
        case .client: 0
        case .serverResponse: 1
        case .serverInitiated: 3
        }
    }
}

/// Issues msg_ids: about unixtime × 2^32 of the (corrected) clock, strictly increasing, with the
/// role's low bits. Two ids asked for within one clock tick still differ, because the next id is
/// never below the last one + 4.
public struct MessageIDGenerator: Sendable, Hashable {
    /// Seconds added to the local clock to get the server's clock (server − local).
    public private(set) var timeOffset: Double
    public private(set) var lastIssued: Int64 = 0

    public init(timeOffset: Double = 0) {
        self.timeOffset = timeOffset.isFinite ? timeOffset : 0
    }

    public mutating func next(now: UnixTime, kind: MessageIDKind) -> Int64 {
        // Clamped so that a nonsense clock can never trap the conversion below.
        let raw = now.seconds + timeOffset
        let corrected = raw.isFinite ? min(max(raw, 0), Double(UInt32.max) - 1) : 0
        let whole = corrected.rounded(.down)
        let fraction = UInt64(((corrected - whole) * 4_294_967_296).rounded(.down)) & 0xffff_ffff
        var candidate = (Int64(whole) << 32) | Int64(fraction)
        candidate = (candidate & ~3) | kind.lowBits
        // The spec wants the low 32 bits of a client id to carry the fraction, never be empty.
        if candidate & 0xffff_ffff == 0 { candidate += 4 }
        if candidate <= lastIssued { candidate = ((lastIssued & ~3) + 4) | kind.lowBits }
        lastIssued = candidate
        return candidate
    }

    /// Sets the offset so that `now` maps to the time inside `serverMessageID`. The floor stays:
    /// a session must never issue a msg_id twice (the server answers a repeated one with the
    /// answer it already gave, to whatever request now carries it). Returns how many seconds the
    /// ids already issued are ahead of the corrected clock (negative when none is): ids stay on
    /// that floor until the clock catches up, so a lead near the server's limit (30 s) would be
    /// "too high" (error 17) for as long as the skew, and the caller starts a new session and
    /// `restartFloor()`s.
    @discardableResult
    public mutating func synchronize(serverMessageID: Int64, now: UnixTime) -> Double {
        let serverTime = Self.seconds(of: serverMessageID)
        guard now.seconds.isFinite else { return -.infinity }
        timeOffset = serverTime - now.seconds
        guard lastIssued > 0 else { return -.infinity }
        return Self.seconds(of: lastIssued) - (now.seconds + timeOffset)
    }

    /// Lets ids follow the clock again, below ones already issued: only for a new session.
    public mutating func restartFloor() { lastIssued = 0 }

    /// Sets the offset; the floor stays (see `synchronize`).
    public mutating func setTimeOffset(_ offset: Double) {
        guard offset.isFinite else { return }
        timeOffset = offset
    }

    /// The unix time a msg_id encodes.
    public static func seconds(of messageID: Int64) -> Double {
        Double(messageID >> 32) + Double(UInt32(truncatingIfNeeded: messageID)) / 4_294_967_296
    }

    public static func kind(of messageID: Int64) -> MessageIDKind? {
        switch messageID & 3 {
        case 0: .client
        case 1: .serverResponse
        case 3: .serverInitiated
        default: nil
        }
    }
}

/// msg_seqno: twice the number of content-related messages sent before, plus one for a
/// content-related message (mtproto/description, "Message Sequence Number").
public struct SequenceNumberCounter: Sendable, Hashable {
    public private(set) var contentRelatedSent: Int32 = 0

    public init() {}

    public mutating func next(contentRelated: Bool) -> Int32 {
        if contentRelated {
            let seqNo = contentRelatedSent &* 2 &+ 1
            contentRelatedSent &+= 1
            return seqNo
        }
        return contentRelatedSent &* 2
    }
}
