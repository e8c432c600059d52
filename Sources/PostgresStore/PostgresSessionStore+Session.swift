import Foundation
import Logging
import MTProto
import MTProtoClient
import MTProtoCrypto
import PostgresNIO
import SessionManager

// The client's session (DCs, keys, salts, offsets), its update state and the peer cache.
extension PostgresSessionStore {
    public func loadSession(account: AccountID) async throws(SessionStoreError) -> SessionState? {
        let logger = self.logger
        let (sealer, location, opened) = (self.sealer, database.location, encryptionHeader)
        return try await write("load the session of \(account)") { connection in
            // One transaction (REPEATABLE READ): the DC rows and the update state belong to one save.
            try await connection.query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY", logger: logger)
            guard let row = try await connection.rows("SELECT home_dc, user_id, is_bot FROM account WHERE id = \(account.rawValue)", logger: logger).first
            else { return nil }
            let (homeDC, userID, isBot) = try row.decode((Int64?, Int64?, Bool).self)
            guard let homeDC else { return nil }
            var state = SessionState(homeDC: Int(homeDC), userID: userID, isBot: isBot)
            for row in try await connection.rows("""
                SELECT dc_id, auth_key, auth_key_id, server_salt, time_offset, is_authorized FROM dc WHERE account = \(account.rawValue)
                """, logger: logger)
            {
                let (dc, stored, keyID, salt, offset, authorized) = try row.decode((Int64, Data?, Int64?, Int64, Double, Bool).self)
                var key: AuthKey?
                if let stored {
                    do {
                        key = try StoredSecret.authKey(stored, id: keyID, sealer: sealer, context: SecretContext.authKey(account.rawValue, Int(dc)),
                                                       location: location, account: account, what: "auth key of DC \(dc)")
                    } catch {
                        throw await Self.explainUnreadableSecret(error, connection, opened: opened, location: location, logger: logger)
                    }
                }
                state.dcs[Int(dc)] = DCSessionState(authKey: key, serverSalt: salt, timeOffset: offset, isAuthorized: authorized)
            }
            state.updates = try await Self.loadUpdatesState(connection, account: account, logger: logger)
            return state
        }
    }

    @discardableResult
    public func saveSession(_ state: SessionState, account: AccountID, fence: LeaseToken?) async throws(SessionStoreError) -> Bool {
        let logger = self.logger
        let now = clock.now()
        let (sealer, location, opened) = (self.sealer, database.location, encryptionHeader)
        return try await accountWrite("save the session of \(account)", account: account, fence: fence, now: now) { connection in
            if state.dcs.values.contains(where: { $0.authKey != nil }) {
                try await Self.refuseStaleKey(connection, opened: opened, location: location, logger: logger)
            }
            try await connection.query("""
                UPDATE account SET home_dc = \(Int64(state.homeDC)), user_id = \(state.userID), is_bot = \(state.isBot) WHERE id = \(account.rawValue)
                """, logger: logger)
            var previous: [Int: Int64?] = [:]
            for row in try await connection.rows("SELECT dc_id, auth_key_id FROM dc WHERE account = \(account.rawValue) FOR UPDATE", logger: logger) {
                let (dc, keyID) = try row.decode((Int64, Int64?).self)
                previous[Int(dc)] = keyID
            }
            var changed = false
            // Sorted: two writers of one account lock its DC rows in the same order (no deadlock).
            for (dc, dcState) in state.dcs.sorted(by: { $0.key < $1.key }) {
                let keyID = dcState.authKey?.id
                if keyID != nil, previous[dc] ?? nil != keyID { changed = true }
                let stored = try dcState.authKey.map { key in
                    try StoredSecret.stored(key.bytes, sealer: sealer, context: SecretContext.authKey(account.rawValue, dc))
                }
                try await connection.query("""
                    INSERT INTO dc(account, dc_id, auth_key, auth_key_id, server_salt, time_offset, is_authorized, updated_at)
                    VALUES (\(account.rawValue), \(Int64(dc)), \(stored), \(keyID), \(dcState.serverSalt), \(dcState.timeOffset),
                            \(dcState.isAuthorized), \(now.seconds))
                    ON CONFLICT (account, dc_id) DO UPDATE SET auth_key = excluded.auth_key, auth_key_id = excluded.auth_key_id,
                        server_salt = excluded.server_salt, time_offset = excluded.time_offset, is_authorized = excluded.is_authorized,
                        updated_at = excluded.updated_at
                    """, logger: logger)
            }
            for dc in previous.keys.sorted() where state.dcs[dc] == nil {
                try await connection.query("DELETE FROM dc WHERE account = \(account.rawValue) AND dc_id = \(Int64(dc))", logger: logger)
            }
            if let updates = state.updates { try await Self.saveUpdatesState(connection, updates, account: account, now: now, logger: logger) }
            return changed
        }
    }

    public func updateServerSalt(_ salt: Int64, dc: Int, account: AccountID, fence: LeaseToken?) async throws(SessionStoreError) {
        let logger = self.logger
        let now = clock.now()
        try await accountWrite("update the server salt of \(account) DC \(dc)", account: account, fence: fence, now: now) { connection in
            try await connection.query("""
                INSERT INTO dc(account, dc_id, server_salt, updated_at) VALUES (\(account.rawValue), \(Int64(dc)), \(salt), \(now.seconds))
                ON CONFLICT (account, dc_id) DO UPDATE SET server_salt = excluded.server_salt, updated_at = excluded.updated_at
                """, logger: logger)
        }
    }

    public func updateTimeOffset(_ offset: Double, dc: Int, account: AccountID, fence: LeaseToken?) async throws(SessionStoreError) {
        let logger = self.logger
        let now = clock.now()
        try await accountWrite("update the time offset of \(account) DC \(dc)", account: account, fence: fence, now: now) { connection in
            try await connection.query("""
                INSERT INTO dc(account, dc_id, time_offset, updated_at) VALUES (\(account.rawValue), \(Int64(dc)), \(offset), \(now.seconds))
                ON CONFLICT (account, dc_id) DO UPDATE SET time_offset = excluded.time_offset, updated_at = excluded.updated_at
                """, logger: logger)
        }
    }

    public func saveFutureSalts(_ salts: [SessionManager.FutureSalt], dc: Int, account: AccountID, fence: LeaseToken?) async throws(SessionStoreError) {
        let logger = self.logger
        let now = clock.now()
        try await accountWrite("save future salts of \(account) DC \(dc)", account: account, fence: fence, now: now) { connection in
            try await connection.query("DELETE FROM future_salt WHERE account = \(account.rawValue) AND dc_id = \(Int64(dc))", logger: logger)
            for salt in salts {
                try await connection.query("""
                    INSERT INTO future_salt(account, dc_id, valid_since, valid_until, salt)
                    VALUES (\(account.rawValue), \(Int64(dc)), \(salt.validSince.seconds), \(salt.validUntil.seconds), \(salt.salt))
                    ON CONFLICT (account, dc_id, valid_since) DO UPDATE SET valid_until = excluded.valid_until, salt = excluded.salt
                    """, logger: logger)
            }
        }
    }

    public func futureSalts(dc: Int, account: AccountID) async throws(SessionStoreError) -> [SessionManager.FutureSalt] {
        let logger = self.logger
        return try await read("read future salts of \(account) DC \(dc)") { connection in
            try await connection.rows("""
                SELECT valid_since, valid_until, salt FROM future_salt WHERE account = \(account.rawValue) AND dc_id = \(Int64(dc)) ORDER BY valid_since
                """, logger: logger).map { row in
                let (since, until, salt) = try row.decode((Double, Double, Int64).self)
                return SessionManager.FutureSalt(validSince: UnixTime(seconds: since), validUntil: UnixTime(seconds: until), salt: salt)
            }
        }
    }

    public func saveTemporaryKey(_ key: TemporaryAuthKey?, dc: Int, account: AccountID, fence: LeaseToken?) async throws(SessionStoreError) {
        let logger = self.logger
        let now = clock.now()
        let (sealer, location, opened) = (self.sealer, database.location, encryptionHeader)
        try await accountWrite("save the temporary key of \(account) DC \(dc)", account: account, fence: fence, now: now) { connection in
            if key != nil { try await Self.refuseStaleKey(connection, opened: opened, location: location, logger: logger) }
            let stored = try key.map { try StoredSecret.stored($0.key.bytes, sealer: sealer, context: SecretContext.tempKey(account.rawValue, dc)) }
            try await connection.query("""
                INSERT INTO dc(account, dc_id, temp_key, temp_key_id, temp_key_expires_at, updated_at)
                VALUES (\(account.rawValue), \(Int64(dc)), \(stored), \(key?.key.id), \(key?.expiresAt.seconds), \(now.seconds))
                ON CONFLICT (account, dc_id) DO UPDATE SET temp_key = excluded.temp_key, temp_key_id = excluded.temp_key_id,
                    temp_key_expires_at = excluded.temp_key_expires_at, updated_at = excluded.updated_at
                """, logger: logger)
        }
    }

    public func temporaryKey(dc: Int, account: AccountID) async throws(SessionStoreError) -> TemporaryAuthKey? {
        let logger = self.logger
        let (sealer, location, opened) = (self.sealer, database.location, encryptionHeader)
        return try await read("read the temporary key of \(account) DC \(dc)") { connection in
            guard let row = try await connection.rows("""
                SELECT temp_key, temp_key_id, temp_key_expires_at FROM dc WHERE account = \(account.rawValue) AND dc_id = \(Int64(dc))
                """, logger: logger).first
            else { return nil }
            let (blob, keyID, expires) = try row.decode((Data?, Int64?, Double?).self)
            guard let blob else { return nil }
            guard let expires else { throw SessionStoreError.corruptRecord(account: account, what: "temporary key of DC \(dc)") }
            let key: AuthKey
            do {
                key = try StoredSecret.authKey(blob, id: keyID, sealer: sealer, context: SecretContext.tempKey(account.rawValue, dc),
                                               location: location, account: account, what: "temporary key of DC \(dc)")
            } catch {
                throw await Self.explainUnreadableSecret(error, connection, opened: opened, location: location, logger: logger)
            }
            return TemporaryAuthKey(key: key, expiresAt: UnixTime(seconds: expires))
        }
    }

    // MARK: Update state

    static func loadUpdatesState(_ connection: PostgresConnection, account: AccountID, logger: Logger) async throws -> UpdatesState? {
        guard let row = try await connection.rows("SELECT pts, qts, date, seq FROM update_state WHERE account = \(account.rawValue)", logger: logger).first
        else { return nil }
        let (pts, qts, date, seq) = try row.decode((Int64, Int64, Int64, Int64).self)
        var state = UpdatesState(pts: Int32(truncatingIfNeeded: pts), qts: Int32(truncatingIfNeeded: qts),
                                 seq: Int32(truncatingIfNeeded: seq), date: Int32(truncatingIfNeeded: date))
        for row in try await connection.rows("""
            SELECT c.channel_id, c.pts, p.access_hash FROM channel_pts c
            LEFT JOIN peer p ON p.account = c.account AND p.kind = 'channel' AND p.peer_id = c.channel_id
            WHERE c.account = \(account.rawValue)
            """, logger: logger)
        {
            let (channel, channelPts, hash) = try row.decode((Int64, Int64, Int64?).self)
            state.channels[channel] = Int32(truncatingIfNeeded: channelPts)
            if let hash { state.channelAccessHashes[channel] = hash }
        }
        return state
    }

    static func saveUpdatesState(_ connection: PostgresConnection, _ state: UpdatesState, account: AccountID, now: UnixTime, logger: Logger) async throws {
        try await upsertUpdateState(connection, pts: state.pts, qts: state.qts, date: state.date, seq: state.seq, account: account, logger: logger)
        try await connection.query("DELETE FROM channel_pts WHERE account = \(account.rawValue)", logger: logger)
        for (channel, pts) in state.channels.sorted(by: { $0.key < $1.key }) {
            try await connection.query(
                "INSERT INTO channel_pts(account, channel_id, pts) VALUES (\(account.rawValue), \(channel), \(Int64(pts)))", logger: logger)
        }
        for (channel, hash) in state.channelAccessHashes.sorted(by: { $0.key < $1.key }) {
            try await connection.query("""
                INSERT INTO peer(account, kind, peer_id, access_hash, username, seen_at) VALUES (\(account.rawValue), 'channel', \(channel), \(hash), NULL, \(now.seconds))
                ON CONFLICT (account, kind, peer_id) DO UPDATE SET access_hash = excluded.access_hash
                """, logger: logger)
        }
    }

    static func upsertUpdateState(_ connection: PostgresConnection, pts: Int32, qts: Int32, date: Int32, seq: Int32, account: AccountID,
                                  logger: Logger) async throws {
        try await connection.query("""
            INSERT INTO update_state(account, pts, qts, date, seq) VALUES (\(account.rawValue), \(Int64(pts)), \(Int64(qts)), \(Int64(date)), \(Int64(seq)))
            ON CONFLICT (account) DO UPDATE SET pts = excluded.pts, qts = excluded.qts, date = excluded.date, seq = excluded.seq
            """, logger: logger)
    }

    public func updateState(account: AccountID) async throws(SessionStoreError) -> UpdateState? {
        let logger = self.logger
        return try await read("read the update state of \(account)") { connection in
            guard let row = try await connection.rows("SELECT pts, qts, date, seq FROM update_state WHERE account = \(account.rawValue)", logger: logger).first
            else { return nil }
            let (pts, qts, date, seq) = try row.decode((Int64, Int64, Int64, Int64).self)
            return UpdateState(pts: Int32(truncatingIfNeeded: pts), qts: Int32(truncatingIfNeeded: qts),
                               date: Int32(truncatingIfNeeded: date), seq: Int32(truncatingIfNeeded: seq))
        }
    }

    public func saveUpdateState(_ state: UpdateState, account: AccountID, fence: LeaseToken?) async throws(SessionStoreError) {
        let logger = self.logger
        let now = clock.now()
        try await accountWrite("save the update state of \(account)", account: account, fence: fence, now: now) { connection in
            try await Self.upsertUpdateState(connection, pts: state.pts, qts: state.qts, date: state.date, seq: state.seq, account: account, logger: logger)
        }
    }

    public func channelPts(account: AccountID) async throws(SessionStoreError) -> [Int64: Int32] {
        let logger = self.logger
        return try await read("read channel pts of \(account)") { connection in
            var result: [Int64: Int32] = [:]
            for row in try await connection.rows("SELECT channel_id, pts FROM channel_pts WHERE account = \(account.rawValue)", logger: logger) {
                let (channel, pts) = try row.decode((Int64, Int64).self)
                result[channel] = Int32(truncatingIfNeeded: pts)
            }
            return result
        }
    }

    public func saveChannelPts(_ pts: Int32, channel: Int64, account: AccountID, fence: LeaseToken?) async throws(SessionStoreError) {
        let logger = self.logger
        let now = clock.now()
        try await accountWrite("save channel pts of \(account)", account: account, fence: fence, now: now) { connection in
            try await connection.query("""
                INSERT INTO channel_pts(account, channel_id, pts) VALUES (\(account.rawValue), \(channel), \(Int64(pts)))
                ON CONFLICT (account, channel_id) DO UPDATE SET pts = excluded.pts
                """, logger: logger)
        }
    }

    // MARK: Peers

    public func rememberPeers(_ peers: [PeerRecord], account: AccountID, fence: LeaseToken?) async throws(SessionStoreError) {
        guard !peers.isEmpty else { return }
        let logger = self.logger
        let now = clock.now()
        try await accountWrite("remember peers of \(account)", account: account, fence: fence, now: now) { connection in
            try await Self.upsert(peers, account: account, onlyNewer: false, connection, logger: logger)
        }
    }

    public func importPeers(_ peers: [PeerRecord], account: AccountID) async throws(SessionStoreError) {
        guard !peers.isEmpty else { return }
        let logger = self.logger
        let now = clock.now()
        try await accountWrite("import peers of \(account)", account: account, fence: nil, now: now) { connection in
            try await Self.upsert(peers, account: account, onlyNewer: true, connection, logger: logger)
        }
    }

    /// Peers sent per statement: an import brings up to 250,000, and a round trip per row took
    /// past the 30 s a transaction may last (100,000 rows: 31 s on loopback, then refused).
    static let peersPerStatement = 5_000

    /// The SQLite store's rule (`SQLiteSessionStore.peerUpsert`): a record without a hash (a `min`
    /// constructor, a basic chat) keeps the known hash, and the username unless it brings one;
    /// `onlyNewer`, a record seen before the stored one changes nothing. The rows go as arrays
    /// (`unnest`), `peersPerStatement` at a time; postgres-nio binds no array of optionals, so a
    /// missing hash travels as a flag and a missing username as "" (no username is empty).
    private static func upsert(_ peers: [PeerRecord], account: AccountID, onlyNewer: Bool, _ connection: PostgresConnection, logger: Logger) async throws {
        let condition = onlyNewer ? " WHERE excluded.seen_at > peer.seen_at" : ""
        // One row per peer in a statement (ON CONFLICT may not touch a row twice): the latest sighting.
        var latest: [String: PeerRecord] = [:]
        for peer in peers {
            let key = "\(peer.kind.rawValue):\(peer.id)"
            if let kept = latest[key], kept.seenAt > peer.seenAt { continue }
            latest[key] = peer
        }
        let rows = Array(latest.values)
        for start in stride(from: 0, to: rows.count, by: peersPerStatement) {
            let chunk = rows[start..<min(start + peersPerStatement, rows.count)]
            let kinds = chunk.map(\.kind.rawValue), ids = chunk.map(\.id)
            let hashes = chunk.map { $0.accessHash ?? 0 }, hasHash = chunk.map { $0.accessHash != nil }
            let usernames = chunk.map { $0.username ?? "" }, seen = chunk.map(\.seenAt.seconds)
            try await connection.query("""
                INSERT INTO peer(account, kind, peer_id, access_hash, username, seen_at)
                SELECT \(account.rawValue), r.kind, r.peer_id, CASE WHEN r.has_hash THEN r.hash END, NULLIF(r.username, ''), r.seen_at
                FROM unnest(\(kinds)::text[], \(ids)::int8[], \(hashes)::int8[], \(hasHash)::bool[], \(usernames)::text[], \(seen)::float8[])
                    AS r(kind, peer_id, hash, has_hash, username, seen_at)
                ON CONFLICT (account, kind, peer_id) DO UPDATE SET
                    access_hash = coalesce(excluded.access_hash, peer.access_hash),
                    username = CASE WHEN excluded.access_hash IS NULL AND excluded.username IS NULL THEN peer.username ELSE excluded.username END,
                    seen_at = CASE WHEN excluded.access_hash IS NULL AND excluded.username IS NULL AND peer.username IS NOT NULL
                        THEN peer.seen_at ELSE excluded.seen_at END\(unescaped: condition)
                """, logger: logger)
        }
    }

    public func forgetPeers(account: AccountID) async throws(SessionStoreError) {
        let logger = self.logger
        try await write("forget the peers of \(account)") { connection in
            try await connection.query("DELETE FROM peer WHERE account = \(account.rawValue)", logger: logger)
        }
    }

    public func peers(account: AccountID) async throws(SessionStoreError) -> [PeerRecord] {
        let logger = self.logger
        return try await read("read the peers of \(account)") { connection in
            try await connection.rows("""
                SELECT kind, peer_id, access_hash, username, seen_at FROM peer
                WHERE account = \(account.rawValue) ORDER BY seen_at DESC, kind, peer_id
                """, logger: logger).compactMap(Self.peerRecord)
        }
    }

    public func peer(kind: PeerRecord.Kind, id: Int64, account: AccountID) async throws(SessionStoreError) -> PeerRecord? {
        let logger = self.logger
        return try await read("read a peer of \(account)") { connection in
            try await connection.rows("""
                SELECT kind, peer_id, access_hash, username, seen_at FROM peer
                WHERE account = \(account.rawValue) AND kind = \(kind.rawValue) AND peer_id = \(id)
                """, logger: logger).first.flatMap(Self.peerRecord)
        }
    }

    public func peer(username: String, account: AccountID) async throws(SessionStoreError) -> PeerRecord? {
        let logger = self.logger
        let name = String(username.lowercased().trimmingPrefix("@"))
        return try await read("read a peer of \(account)") { connection in
            try await connection.rows("""
                SELECT kind, peer_id, access_hash, username, seen_at FROM peer
                WHERE account = \(account.rawValue) AND username = \(name) ORDER BY seen_at DESC LIMIT 1
                """, logger: logger).first.flatMap(Self.peerRecord)
        }
    }

    private static func peerRecord(_ row: PostgresRow) throws -> PeerRecord? {
        let (kindName, id, hash, username, seen) = try row.decode((String, Int64, Int64?, String?, Double).self)
        guard let kind = PeerRecord.Kind(rawValue: kindName) else { return nil }
        return PeerRecord(kind: kind, id: id, accessHash: hash, username: username, seenAt: UnixTime(seconds: seen))
    }

    // MARK: Identity and proxy

    public func identity(account: AccountID) async throws(SessionStoreError) -> DeviceIdentity? {
        let logger = self.logger
        return try await read("read the identity of \(account)") { connection in
            try await Self.identity(connection, account: account, lock: false, logger: logger)
        }
    }

    public func chooseIdentity(_ proposed: DeviceIdentity, account: AccountID) async throws(SessionStoreError) -> DeviceIdentity {
        let logger = self.logger
        let now = clock.now()
        return try await write("choose the identity of \(account)") { connection in
            try await Self.ensureAccount(connection, account, now: now, logger: logger)
            if let existing = try await Self.identity(connection, account: account, lock: true, logger: logger) { return existing }
            try await connection.query("""
                UPDATE account SET device_model = \(proposed.deviceModel), system_version = \(proposed.systemVersion),
                    app_version = \(proposed.appVersion), system_lang_code = \(proposed.systemLangCode), lang_pack = \(proposed.langPack),
                    lang_code = \(proposed.langCode), identity_chosen_at = \(proposed.chosenAt.seconds)
                WHERE id = \(account.rawValue)
                """, logger: logger)
            return proposed
        }
    }

    public func proxy(account: AccountID) async throws(SessionStoreError) -> ProxySetting? {
        let logger = self.logger
        let stored = try await read("read the proxy of \(account)") { connection -> String? in
            guard let row = try await connection.rows("SELECT proxy FROM account WHERE id = \(account.rawValue)", logger: logger).first else { return nil }
            return try row.decode(String?.self)
        }
        return try StoredProxyLink.opened(stored, account: account, sealer: sealer, location: database.location)
    }

    public func setProxy(_ proxy: ProxySetting?, account: AccountID) async throws(SessionStoreError) {
        let logger = self.logger
        let now = clock.now()
        let (location, opened) = (database.location, encryptionHeader)
        let stored = try StoredProxyLink.stored(proxy, account: account, sealer: sealer)
        try await write("set the proxy of \(account)") { connection in
            if proxy != nil { try await Self.refuseStaleKey(connection, opened: opened, location: location, logger: logger) }
            try await Self.ensureAccount(connection, account, now: now, logger: logger)
            try await connection.query("UPDATE account SET proxy = \(stored) WHERE id = \(account.rawValue)", logger: logger)
        }
    }

    private static func identity(_ connection: PostgresConnection, account: AccountID, lock: Bool, logger: Logger) async throws -> DeviceIdentity? {
        let query: PostgresQuery = lock
            ? """
              SELECT device_model, system_version, app_version, system_lang_code, lang_pack, lang_code, identity_chosen_at
              FROM account WHERE id = \(account.rawValue) FOR UPDATE
              """
            : """
              SELECT device_model, system_version, app_version, system_lang_code, lang_pack, lang_code, identity_chosen_at
              FROM account WHERE id = \(account.rawValue)
              """
        guard let row = try await connection.rows(query, logger: logger).first else { return nil }
        let (model, system, app, systemLang, pack, lang, chosen) = try row.decode((String?, String?, String?, String?, String?, String?, Double?).self)
        guard let model, let system, let app, let systemLang, let pack, let lang, let chosen else { return nil }
        return DeviceIdentity(deviceModel: model, systemVersion: system, appVersion: app, systemLangCode: systemLang,
                              langPack: pack, langCode: lang, chosenAt: UnixTime(seconds: chosen))
    }
}
