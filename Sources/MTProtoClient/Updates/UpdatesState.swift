import TLSchema

/// Where the account's update sequences stand (https://core.telegram.org/api/updates): the common
/// message box (pts), the secondary sequence (qts), the Updates sequence (seq, date), and each
/// channel's own box. Saved with the session, so a restart asks updates.getDifference from here and
/// neither loses nor repeats events.
public struct UpdatesState: Sendable, Equatable, Codable {
    public var pts: Int32
    public var qts: Int32
    public var seq: Int32
    public var date: Int32
    /// pts of each channel the client has seen an event or a pts of.
    public var channels: [Int64: Int32]
    /// access_hash of each channel, needed to call updates.getChannelDifference after a restart.
    public var channelAccessHashes: [Int64: Int64]

    public init(pts: Int32, qts: Int32, seq: Int32, date: Int32, channels: [Int64: Int32] = [:], channelAccessHashes: [Int64: Int64] = [:]) {
        self.pts = pts
        self.qts = qts
        self.seq = seq
        self.date = date
        self.channels = channels
        self.channelAccessHashes = channelAccessHashes
    }

    init(_ state: Api.updates.State, keepingChannelsOf previous: UpdatesState?) {
        guard case .state(let value) = state else {
            self.init(pts: 0, qts: 0, seq: 0, date: 0)
            return
        }
        self.init(
            pts: value.pts, qts: value.qts, seq: value.seq, date: value.date,
            channels: previous?.channels ?? [:], channelAccessHashes: previous?.channelAccessHashes ?? [:])
    }
}

/// One update as the client hands it out, with the users and chats that came with it (the same
/// arrays for every update of one container or difference).
public struct UpdateEvent: Sendable, Equatable {
    public enum Origin: Sendable, Equatable {
        /// Pushed by the server, or the answer to one of this client's own calls.
        case live
        /// Recovered with updates.getDifference / getChannelDifference after a gap or a restart.
        case difference
    }

    public var update: Api.Update
    public var users: [Api.User]
    public var chats: [Api.Chat]
    public var origin: Origin

    public init(update: Api.Update, users: [Api.User], chats: [Api.Chat], origin: Origin) {
        self.update = update
        self.users = users
        self.chats = chats
        self.origin = origin
    }
}
