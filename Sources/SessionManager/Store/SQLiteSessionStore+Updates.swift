import GRDB
import MTProto

extension SQLiteSessionStore {
    public func updateState(account: AccountID) async throws(SessionStoreError) -> UpdateState? {
        try await read("read the update state of \(account)") { db in
            guard let row = try Row.fetchOne(db, sql: "SELECT pts, qts, date, seq FROM update_state WHERE account = ?", arguments: [account.rawValue]),
                  let pts = row.int64("pts"), let qts = row.int64("qts"), let date = row.int64("date"), let seq = row.int64("seq")
            else { return nil }
            return UpdateState(pts: Int32(truncatingIfNeeded: pts), qts: Int32(truncatingIfNeeded: qts),
                               date: Int32(truncatingIfNeeded: date), seq: Int32(truncatingIfNeeded: seq))
        }
    }

    public func saveUpdateState(_ state: UpdateState, account: AccountID, fence: LeaseToken?) async throws(SessionStoreError) {
        let now = clock.now()
        try await write("save the update state of \(account)") { db in
            try Self.checkFence(db, account: account, fence: fence)
            try Self.ensureAccount(db, account, now: now)
            try db.execute(sql: "INSERT OR REPLACE INTO update_state(account, pts, qts, date, seq) VALUES (?, ?, ?, ?, ?)",
                           arguments: [account.rawValue, state.pts, state.qts, state.date, state.seq])
        }
    }

    public func channelPts(account: AccountID) async throws(SessionStoreError) -> [Int64: Int32] {
        try await read("read channel pts of \(account)") { db in
            var result: [Int64: Int32] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT channel_id, pts FROM channel_pts WHERE account = ?", arguments: [account.rawValue]) {
                if let channel = row.int64("channel_id"), let pts = row.int64("pts") { result[channel] = Int32(truncatingIfNeeded: pts) }
            }
            return result
        }
    }

    public func saveChannelPts(_ pts: Int32, channel: Int64, account: AccountID, fence: LeaseToken?) async throws(SessionStoreError) {
        let now = clock.now()
        try await write("save channel pts of \(account)") { db in
            try Self.checkFence(db, account: account, fence: fence)
            try Self.ensureAccount(db, account, now: now)
            try db.execute(sql: "INSERT OR REPLACE INTO channel_pts(account, channel_id, pts) VALUES (?, ?, ?)",
                           arguments: [account.rawValue, channel, pts])
        }
    }

    // MARK: Peers

    public func rememberPeers(_ peers: [PeerRecord], account: AccountID, fence: LeaseToken?) async throws(SessionStoreError) {
        guard !peers.isEmpty else { return }
        let now = clock.now()
        try await write("remember peers of \(account)") { db in
            try Self.checkFence(db, account: account, fence: fence)
            try Self.ensureAccount(db, account, now: now)
            // Cached: the peer cache writes here after nearly every answer.
            try Self.upsert(peers, account: account, statement: db.cachedStatement(sql: Self.peerUpsert(onlyNewer: false)))
        }
    }

    public func importPeers(_ peers: [PeerRecord], account: AccountID) async throws(SessionStoreError) {
        guard !peers.isEmpty else { return }
        let now = clock.now()
        try await write("import peers of \(account)") { db in
            try Self.ensureAccount(db, account, now: now)
            try Self.upsert(peers, account: account, statement: db.makeStatement(sql: Self.peerUpsert(onlyNewer: true)))
        }
    }

    /// A record without a hash is a `min` constructor (or a basic chat): it keeps the known hash, and
    /// the username too unless it brings one (a min constructor may leave it out). Such a record
    /// does not refresh `seen_at` of a peer with a username, since it does not show the peer still
    /// has it, and the workers trust a username for 8 hours after `seen_at`. `onlyNewer`: a record
    /// seen before the stored one changes nothing (another library's cache, imported).
    /// PostgreSQL's store runs the same statement.
    static func peerUpsert(onlyNewer: Bool) -> String {
        """
        INSERT INTO peer(account, kind, peer_id, access_hash, username, seen_at) VALUES (?, ?, ?, ?, ?, ?)
        ON CONFLICT(account, kind, peer_id) DO UPDATE SET
            access_hash = coalesce(excluded.access_hash, peer.access_hash),
            username = CASE WHEN excluded.access_hash IS NULL AND excluded.username IS NULL THEN peer.username ELSE excluded.username END,
            seen_at = CASE WHEN excluded.access_hash IS NULL AND excluded.username IS NULL AND peer.username IS NOT NULL
                THEN peer.seen_at ELSE excluded.seen_at END
        """ + (onlyNewer ? " WHERE excluded.seen_at > peer.seen_at" : "")
    }

    private static func upsert(_ peers: [PeerRecord], account: AccountID, statement: Statement) throws {
        for peer in peers {
            try statement.execute(arguments: [account.rawValue, peer.kind.rawValue, peer.id, peer.accessHash, peer.username, peer.seenAt.seconds])
        }
    }

    public func forgetPeers(account: AccountID) async throws(SessionStoreError) {
        try await write("forget the peers of \(account)") { db in
            try db.execute(sql: "DELETE FROM peer WHERE account = ?", arguments: [account.rawValue])
        }
    }

    public func peers(account: AccountID) async throws(SessionStoreError) -> [PeerRecord] {
        try await read("read the peers of \(account)") { db in
            try Row.fetchAll(db, sql: "SELECT kind, peer_id, access_hash, username, seen_at FROM peer WHERE account = ? ORDER BY seen_at DESC, kind, peer_id",
                             arguments: [account.rawValue]).compactMap(Self.peerRecord)
        }
    }

    public func peer(kind: PeerRecord.Kind, id: Int64, account: AccountID) async throws(SessionStoreError) -> PeerRecord? {
        try await read("read a peer of \(account)") { db in
            try Row.fetchOne(db, sql: "SELECT kind, peer_id, access_hash, username, seen_at FROM peer WHERE account = ? AND kind = ? AND peer_id = ?",
                             arguments: [account.rawValue, kind.rawValue, id]).flatMap(Self.peerRecord)
        }
    }

    public func peer(username: String, account: AccountID) async throws(SessionStoreError) -> PeerRecord? {
        let name = username.lowercased().trimmingPrefix("@")
        return try await read("read a peer of \(account)") { db in
            try Row.fetchOne(db, sql: "SELECT kind, peer_id, access_hash, username, seen_at FROM peer WHERE account = ? AND username = ? ORDER BY seen_at DESC",
                             arguments: [account.rawValue, String(name)]).flatMap(Self.peerRecord)
        }
    }

    private static func peerRecord(_ row: Row) -> PeerRecord? {
        guard let kind = row.string("kind").flatMap(PeerRecord.Kind.init(rawValue:)), let id = row.int64("peer_id"),
              let seen = row.double("seen_at")
        else { return nil }
        return PeerRecord(kind: kind, id: id, accessHash: row.int64("access_hash"), username: row.string("username"), seenAt: UnixTime(seconds: seen))
    }
}
