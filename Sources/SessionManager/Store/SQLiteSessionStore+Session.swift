import Foundation
import GRDB
import MTProto
import MTProtoClient
import MTProtoCrypto

extension SQLiteSessionStore {
    public func loadSession(account: AccountID) async throws(SessionStoreError) -> SessionState? {
        let sealer = self.sealer
        let path = self.path
        let header = self.encryptionHeader
        return try await read("load the session of \(account)") { db in
            guard let row = try Row.fetchOne(db, sql: "SELECT home_dc, user_id, is_bot, row_check FROM account WHERE id = ?", arguments: [account.rawValue]),
                  let homeDC = row.int64("home_dc")
            else { return nil }
            let userID = row.int64("user_id")
            let isBot = row.int64("is_bot") == 1
            guard row.int64("row_check") == RowCheck.account(id: account.rawValue, homeDC: Int(homeDC), userID: userID, isBot: isBot) else {
                throw SessionStoreError.corruptRecord(account: account, what: "account row")
            }
            var state = SessionState(homeDC: Int(homeDC), userID: userID, isBot: isBot)
            let sql = "SELECT dc_id, auth_key, auth_key_id, server_salt, time_offset, is_authorized, row_check FROM dc WHERE account = ?"
            for row in try Row.fetchAll(db, sql: sql, arguments: [account.rawValue]) {
                guard let dc = row.int64("dc_id").map(Int.init), let salt = row.int64("server_salt"), let offset = row.double("time_offset") else {
                    throw SessionStoreError.corruptRecord(account: account, what: "DC row")
                }
                let stored = row.blob("auth_key")
                let keyID = row.int64("auth_key_id")
                let authorized = row.int64("is_authorized") == 1
                guard row.int64("row_check") == RowCheck.dc(account: account.rawValue, dc: dc, key: stored, keyID: keyID, salt: salt, offset: offset, authorized: authorized) else {
                    throw SessionStoreError.corruptRecord(account: account, what: "DC \(dc) row")
                }
                let key = try stored.map { blob throws(SessionStoreError) in
                    try Self.openKey(blob, id: keyID, sealer: sealer, context: SecretContext.authKey(account.rawValue, dc), path: path, account: account,
                                     what: "auth key of DC \(dc)", db: db, opened: header)
                }
                state.dcs[dc] = DCSessionState(authKey: key, serverSalt: salt, timeOffset: offset, isAuthorized: authorized)
            }
            state.updates = try Self.loadUpdatesState(db, account: account)
            return state
        }
    }

    @discardableResult
    public func saveSession(_ state: SessionState, account: AccountID, fence: LeaseToken?) async throws(SessionStoreError) -> Bool {
        let sealer = self.sealer
        let path = self.path
        let header = self.encryptionHeader
        let now = clock.now()
        let (keyChanged, loggedIn) = try await write("save the session of \(account)") { db -> (Bool, Bool) in
            try Self.checkFence(db, account: account, fence: fence)
            if state.dcs.values.contains(where: { $0.authKey != nil }) { try Self.refuseStaleKey(db, opened: header, path: path) }
            try Self.ensureAccount(db, account, now: now)
            let userBefore = try Int64.fetchOne(db, sql: "SELECT user_id FROM account WHERE id = ?", arguments: [account.rawValue])
            let check = RowCheck.account(id: account.rawValue, homeDC: state.homeDC, userID: state.userID, isBot: state.isBot)
            try db.execute(sql: "UPDATE account SET home_dc = ?, user_id = ?, is_bot = ?, row_check = ? WHERE id = ?",
                           arguments: [state.homeDC, state.userID, state.isBot ? 1 : 0, check, account.rawValue])
            var previous: [Int: Int64?] = [:]
            var authorizedBefore: Set<Int> = []
            for row in try Row.fetchAll(db, sql: "SELECT dc_id, auth_key_id, is_authorized FROM dc WHERE account = ?", arguments: [account.rawValue]) {
                guard let dc = row.int64("dc_id") else { continue }
                previous[Int(dc)] = row.int64("auth_key_id")
                if row.int64("is_authorized") == 1 { authorizedBefore.insert(Int(dc)) }
            }
            var changed = false
            var loggedIn = userBefore == nil && state.userID != nil
            // Only the home DC's key logging in is a login a mark waited for: a non-home DC's
            // authorization is copied from the home one, and may land after the home key was revoked.
            var homeLoggedIn = false
            for (dc, dcState) in state.dcs {
                let keyID = dcState.authKey?.id
                if keyID != nil, previous[dc] ?? nil != keyID { changed = true }
                if dcState.isAuthorized, dcState.authKey != nil, !authorizedBefore.contains(dc) {
                    loggedIn = true
                    if dc == state.homeDC { homeLoggedIn = true }
                }
                let stored = try dcState.authKey.map { key in
                    try Self.storedForm(key, sealer: sealer, context: SecretContext.authKey(account.rawValue, dc))
                }
                let check = RowCheck.dc(account: account.rawValue, dc: dc, key: stored, keyID: keyID, salt: dcState.serverSalt,
                                        offset: dcState.timeOffset, authorized: dcState.isAuthorized)
                try db.execute(sql: """
                    INSERT INTO dc(account, dc_id, auth_key, auth_key_id, server_salt, time_offset, is_authorized, row_check, updated_at)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                    ON CONFLICT(account, dc_id) DO UPDATE SET auth_key = excluded.auth_key, auth_key_id = excluded.auth_key_id,
                        server_salt = excluded.server_salt, time_offset = excluded.time_offset, is_authorized = excluded.is_authorized,
                        row_check = excluded.row_check, updated_at = excluded.updated_at
                    """, arguments: [account.rawValue, dc, stored, keyID, dcState.serverSalt, dcState.timeOffset,
                                     dcState.isAuthorized ? 1 : 0, check, now.seconds])
            }
            for dc in previous.keys where state.dcs[dc] == nil {
                try db.execute(sql: "DELETE FROM dc WHERE account = ? AND dc_id = ?", arguments: [account.rawValue, dc])
            }
            if let updates = state.updates { try Self.saveUpdatesState(db, updates, account: account, now: now) }
            if homeLoggedIn { try Self.clearMarkALoginEnds(db, account: account, now: now) }
            return (changed, loggedIn)
        }
        // A login: the backup taken when its key was created holds it logged out, and a restore
        // (by hand or by recovery) from it would need a person with a login code.
        if (keyChanged || loggedIn) && options.backsUpOnAuthKeyChange {
            do {
                try backup(reason: loggedIn ? .loggedIn : .authKeyChanged)
            } catch {
                // The save is committed; a failed backup must not undo it, but a person must hear of it.
                logger.error("backup after an auth key change or a login failed", metadata: ["account": "\(account)", "error": "\(error)"])
            }
        }
        return keyChanged
    }

    /// A login ends a mark that waited for one (unauthorized, revoked, duplicated; not deactivated),
    /// in the save's own transaction: the backup taken for the login right after must not hold the
    /// new login beside the old mark. The terminal guard clears it too once the login's answer
    /// reaches it, but later than this save; before, restoring that backup brought the mark back,
    /// and the advice it gave (`tgsm auth`) dropped the working key.
    private static func clearMarkALoginEnds(_ db: Database, account: AccountID, now: UnixTime) throws {
        let active = AccountStatus.active(since: now)
        let waiting = AccountStatus.State.allCases.filter { state in
            let mark = AccountStatus(state: state, since: now, cause: "", code: "")
            return mark.isTerminal && mark.allowsLogin
        }
        try db.execute(sql: """
            UPDATE account_status SET state = ?, since = ?, cause = ?, code = ?
            WHERE account = ? AND state IN (\(waiting.map { _ in "?" }.joined(separator: ", ")))
            """, arguments: StatementArguments([active.state.rawValue, active.since.seconds, active.cause, active.code, account.rawValue] as [any DatabaseValueConvertible]
                                                  + waiting.map(\.rawValue)))
    }

    public func updateServerSalt(_ salt: Int64, dc: Int, account: AccountID, fence: LeaseToken?) async throws(SessionStoreError) {
        try await updateDC("update the server salt of \(account) DC \(dc)", dc: dc, account: account, fence: fence) { $0.salt = salt }
    }

    public func updateTimeOffset(_ offset: Double, dc: Int, account: AccountID, fence: LeaseToken?) async throws(SessionStoreError) {
        try await updateDC("update the time offset of \(account) DC \(dc)", dc: dc, account: account, fence: fence) { $0.offset = offset }
    }

    private struct DCFields: Sendable {
        var key: Data?
        var keyID: Int64?
        var salt: Int64
        var offset: Double
        var authorized: Bool
    }

    private func updateDC(_ operation: String, dc: Int, account: AccountID, fence: LeaseToken?,
                          _ change: @escaping @Sendable (inout DCFields) -> Void) async throws(SessionStoreError) {
        let now = clock.now()
        try await write(operation) { db in
            try Self.checkFence(db, account: account, fence: fence)
            try Self.ensureAccount(db, account, now: now)
            let row = try Row.fetchOne(db, sql: "SELECT auth_key, auth_key_id, server_salt, time_offset, is_authorized FROM dc WHERE account = ? AND dc_id = ?",
                                       arguments: [account.rawValue, dc])
            var fields = DCFields(key: row?.blob("auth_key"), keyID: row?.int64("auth_key_id"), salt: row?.int64("server_salt") ?? 0,
                                  offset: row?.double("time_offset") ?? 0, authorized: row?.int64("is_authorized") == 1)
            change(&fields)
            let check = RowCheck.dc(account: account.rawValue, dc: dc, key: fields.key, keyID: fields.keyID, salt: fields.salt,
                                    offset: fields.offset, authorized: fields.authorized)
            try db.execute(sql: """
                INSERT INTO dc(account, dc_id, server_salt, time_offset, row_check, updated_at) VALUES (?, ?, ?, ?, ?, ?)
                ON CONFLICT(account, dc_id) DO UPDATE SET server_salt = excluded.server_salt, time_offset = excluded.time_offset,
                    row_check = excluded.row_check, updated_at = excluded.updated_at
                """, arguments: [account.rawValue, dc, fields.salt, fields.offset, check, now.seconds])
        }
    }

    public func saveFutureSalts(_ salts: [FutureSalt], dc: Int, account: AccountID, fence: LeaseToken?) async throws(SessionStoreError) {
        let now = clock.now()
        try await write("save future salts of \(account) DC \(dc)") { db in
            try Self.checkFence(db, account: account, fence: fence)
            try Self.ensureAccount(db, account, now: now)
            try db.execute(sql: "DELETE FROM future_salt WHERE account = ? AND dc_id = ?", arguments: [account.rawValue, dc])
            for salt in salts {
                try db.execute(sql: "INSERT OR REPLACE INTO future_salt(account, dc_id, valid_since, valid_until, salt) VALUES (?, ?, ?, ?, ?)",
                               arguments: [account.rawValue, dc, salt.validSince.seconds, salt.validUntil.seconds, salt.salt])
            }
        }
    }

    public func futureSalts(dc: Int, account: AccountID) async throws(SessionStoreError) -> [FutureSalt] {
        try await read("read future salts of \(account) DC \(dc)") { db in
            try Row.fetchAll(db, sql: "SELECT valid_since, valid_until, salt FROM future_salt WHERE account = ? AND dc_id = ? ORDER BY valid_since",
                             arguments: [account.rawValue, dc]).compactMap { row in
                guard let since = row.double("valid_since"), let until = row.double("valid_until"), let salt = row.int64("salt") else { return nil }
                return FutureSalt(validSince: UnixTime(seconds: since), validUntil: UnixTime(seconds: until), salt: salt)
            }
        }
    }

    public func saveTemporaryKey(_ key: TemporaryAuthKey?, dc: Int, account: AccountID, fence: LeaseToken?) async throws(SessionStoreError) {
        let sealer = self.sealer
        let path = self.path
        let header = self.encryptionHeader
        let now = clock.now()
        try await write("save the temporary key of \(account) DC \(dc)") { db in
            try Self.checkFence(db, account: account, fence: fence)
            if key != nil { try Self.refuseStaleKey(db, opened: header, path: path) }
            try Self.ensureAccount(db, account, now: now)
            let stored = try key.map { try Self.storedForm($0.key, sealer: sealer, context: SecretContext.tempKey(account.rawValue, dc)) }
            let emptyCheck = RowCheck.dc(account: account.rawValue, dc: dc, key: nil, keyID: nil, salt: 0, offset: 0, authorized: false)
            try db.execute(sql: """
                INSERT INTO dc(account, dc_id, row_check, temp_key, temp_key_id, temp_key_expires_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT(account, dc_id) DO UPDATE SET temp_key = excluded.temp_key, temp_key_id = excluded.temp_key_id,
                    temp_key_expires_at = excluded.temp_key_expires_at, updated_at = excluded.updated_at
                """, arguments: [account.rawValue, dc, emptyCheck, stored, key?.key.id, key?.expiresAt.seconds, now.seconds])
        }
    }

    public func temporaryKey(dc: Int, account: AccountID) async throws(SessionStoreError) -> TemporaryAuthKey? {
        let sealer = self.sealer
        let path = self.path
        let header = self.encryptionHeader
        return try await read("read the temporary key of \(account) DC \(dc)") { db in
            guard let row = try Row.fetchOne(db, sql: "SELECT temp_key, temp_key_id, temp_key_expires_at FROM dc WHERE account = ? AND dc_id = ?",
                                             arguments: [account.rawValue, dc]),
                  let blob = row.blob("temp_key")
            else { return nil }
            guard let expires = row.double("temp_key_expires_at") else {
                throw SessionStoreError.corruptRecord(account: account, what: "temporary key of DC \(dc)")
            }
            let key = try Self.openKey(blob, id: row.int64("temp_key_id"), sealer: sealer, context: SecretContext.tempKey(account.rawValue, dc), path: path,
                                       account: account, what: "temporary key of DC \(dc)", db: db, opened: header)
            return TemporaryAuthKey(key: key, expiresAt: UnixTime(seconds: expires))
        }
    }

    // MARK: Secrets

    static func storedForm(_ key: AuthKey, sealer: SecretSealer?, context: String) throws(SessionStoreError) -> Data {
        try StoredSecret.stored(key.bytes, sealer: sealer, context: context)
    }

    static func openKey(_ blob: Data, id: Int64?, sealer: SecretSealer?, context: String, path: String, account: AccountID,
                        what: String, db: Database, opened: String?) throws(SessionStoreError) -> AuthKey {
        do {
            return try StoredSecret.authKey(blob, id: id, sealer: sealer, context: context, location: path, account: account, what: what)
        } catch {
            throw explainUnreadableSecret(error, db, opened: opened, path: path)
        }
    }
}

// The client's update state (UpdatesState) rides in the session save, in the same transaction, so
// a restart resumes from exactly the pts the client last handed out: the common box in
// update_state, each channel's pts in channel_pts, and channel access hashes in the peer cache
// (getChannelDifference needs them after a restart, and the peer cache is where they belong).
extension SQLiteSessionStore {
    static func loadUpdatesState(_ db: Database, account: AccountID) throws -> UpdatesState? {
        guard let row = try Row.fetchOne(db, sql: "SELECT pts, qts, date, seq FROM update_state WHERE account = ?", arguments: [account.rawValue])
        else { return nil }
        guard let pts = row.int64("pts"), let qts = row.int64("qts"), let date = row.int64("date"), let seq = row.int64("seq") else {
            throw SessionStoreError.corruptRecord(account: account, what: "update state row")
        }
        var state = UpdatesState(pts: Int32(truncatingIfNeeded: pts), qts: Int32(truncatingIfNeeded: qts),
                                 seq: Int32(truncatingIfNeeded: seq), date: Int32(truncatingIfNeeded: date))
        let sql = """
            SELECT c.channel_id, c.pts, p.access_hash FROM channel_pts c
            LEFT JOIN peer p ON p.account = c.account AND p.kind = 'channel' AND p.peer_id = c.channel_id
            WHERE c.account = ?
            """
        for row in try Row.fetchAll(db, sql: sql, arguments: [account.rawValue]) {
            guard let channel = row.int64("channel_id"), let channelPts = row.int64("pts") else { continue }
            state.channels[channel] = Int32(truncatingIfNeeded: channelPts)
            if let hash = row.int64("access_hash") { state.channelAccessHashes[channel] = hash }
        }
        return state
    }

    static func saveUpdatesState(_ db: Database, _ state: UpdatesState, account: AccountID, now: UnixTime) throws {
        try db.execute(sql: "INSERT OR REPLACE INTO update_state(account, pts, qts, date, seq) VALUES (?, ?, ?, ?, ?)",
                       arguments: [account.rawValue, state.pts, state.qts, state.date, state.seq])
        try db.execute(sql: "DELETE FROM channel_pts WHERE account = ?", arguments: [account.rawValue])
        for (channel, pts) in state.channels {
            try db.execute(sql: "INSERT INTO channel_pts(account, channel_id, pts) VALUES (?, ?, ?)", arguments: [account.rawValue, channel, pts])
        }
        for (channel, hash) in state.channelAccessHashes {
            try db.execute(sql: """
                INSERT INTO peer(account, kind, peer_id, access_hash, username, seen_at) VALUES (?, 'channel', ?, ?, NULL, ?)
                ON CONFLICT(account, kind, peer_id) DO UPDATE SET access_hash = excluded.access_hash
                """, arguments: [account.rawValue, channel, hash, now.seconds])
        }
    }
}
