/// The one-number peer ids Telethon and Pyrogram key their peer caches by (the Bot API's): a user
/// is its id, a basic chat its id negated, a channel -(10^12 + its id) ("-100" followed by the id).
enum MarkedPeerID {
    /// The first marked id of a channel: every channel id is above 0.
    static let channelOffset: Int64 = 1_000_000_000_000

    /// The kind and id a marked id stands for; nil for 0 and for values no peer can have (a channel
    /// id so large that its marked form would overflow).
    static func peer(_ marked: Int64) -> (kind: PeerRecord.Kind, id: Int64)? {
        if marked > 0 { return (.user, marked) }
        if marked == 0 || marked == .min { return nil }
        if marked > -channelOffset { return (.chat, -marked) }
        let id = -marked - channelOffset
        return id > 0 ? (.channel, id) : nil
    }

    /// The marked id of a peer; nil when `id` is not positive or too large to be marked.
    static func marked(kind: PeerRecord.Kind, id: Int64) -> Int64? {
        guard id > 0 else { return nil }
        switch kind {
        case .user: return id
        case .chat: return id < channelOffset ? -id : nil
        case .channel: return id <= Int64.max - channelOffset ? -(channelOffset + id) : nil
        }
    }
}
