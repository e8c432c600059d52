import Foundation
import GRDB
import MTProto

/// The flood ledger's persistence (`FloodLedgerStore`) on SQLite. Records are not fenced: the
/// ledger is shared by every process on the store, and a wait learnt by an old owner is still true.
extension SQLiteSessionStore {
    public func recordFloodWait(_ wait: FloodWait) async throws(SessionStoreError) {
        try await write("record a flood wait for \(wait.account) \(wait.method)") { db in
            // The later `until` wins, and with it the rest of the record; an earlier one changes nothing.
            try db.execute(sql: """
                INSERT INTO flood_wait(account, method, peer, kind, recorded_at, until, dc) VALUES (?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT(account, method, peer) DO UPDATE SET kind = excluded.kind, recorded_at = excluded.recorded_at,
                    until = excluded.until, dc = excluded.dc
                WHERE excluded.until > flood_wait.until
                """, arguments: [wait.account.rawValue, wait.method, wait.peer ?? "", wait.kind.rawValue,
                                 wait.recordedAt.seconds, wait.until.seconds, wait.dc])
        }
    }

    public func activeFloodWaits(account: AccountID?, at now: UnixTime) async throws(SessionStoreError) -> [FloodWait] {
        try await read("read flood waits") { db in
            let rows: [Row]
            let columns = "account, method, peer, kind, recorded_at, until, dc"
            if let account {
                rows = try Row.fetchAll(db, sql: "SELECT \(columns) FROM flood_wait WHERE account = ? AND until > ? ORDER BY until",
                                        arguments: [account.rawValue, now.seconds])
            } else {
                rows = try Row.fetchAll(db, sql: "SELECT \(columns) FROM flood_wait WHERE until > ? ORDER BY until", arguments: [now.seconds])
            }
            return rows.compactMap { row in
                guard let account = row.string("account"), let method = row.string("method"), let peer = row.string("peer"),
                      let kind = row.string("kind").flatMap(FloodWait.Kind.init(rawValue:)),
                      let recordedAt = row.double("recorded_at"), let until = row.double("until")
                else { return nil }
                return FloodWait(account: AccountID(account), method: method, peer: peer.isEmpty ? nil : peer, kind: kind,
                                 recordedAt: UnixTime(seconds: recordedAt), until: UnixTime(seconds: until), dc: row.int64("dc").map(Int.init))
            }
        }
    }

    @discardableResult
    public func purgeFloodWaits(endedBefore now: UnixTime) async throws(SessionStoreError) -> Int {
        try await write("purge ended flood waits") { db in
            try db.execute(sql: "DELETE FROM flood_wait WHERE until <= ?", arguments: [now.seconds])
            return db.changesCount
        }
    }

    public func sendCodeDeadline(account: AccountID, phoneKey: String) async throws(SessionStoreError) -> UnixTime? {
        try await read("read the send-code deadline") { db in
            try Double.fetchOne(db, sql: "SELECT deadline FROM send_code_deadline WHERE account = ? AND phone_key = ?",
                                arguments: [account.rawValue, phoneKey]).map(UnixTime.init(seconds:))
        }
    }

    public func latestSendCodeDeadline(phoneKey: String) async throws(SessionStoreError) -> SendCodeDeadline? {
        try await read("read the send-code deadlines") { db in
            try Row.fetchOne(db, sql: "SELECT account, deadline FROM send_code_deadline WHERE phone_key = ? ORDER BY deadline DESC LIMIT 1",
                             arguments: [phoneKey])
                .map { SendCodeDeadline(account: AccountID($0["account"] as String), deadline: UnixTime(seconds: $0["deadline"])) }
        }
    }

    public func setSendCodeDeadline(_ deadline: UnixTime?, account: AccountID, phoneKey: String) async throws(SessionStoreError) {
        try await write("set the send-code deadline") { db in
            if let deadline {
                try db.execute(sql: """
                    INSERT INTO send_code_deadline(account, phone_key, deadline) VALUES (?, ?, ?)
                    ON CONFLICT(account, phone_key) DO UPDATE SET deadline = excluded.deadline
                    """, arguments: [account.rawValue, phoneKey, deadline.seconds])
            } else {
                try db.execute(sql: "DELETE FROM send_code_deadline WHERE account = ? AND phone_key = ?", arguments: [account.rawValue, phoneKey])
            }
        }
    }

    public func pendingLoginCode(account: AccountID, phoneKey: String) async throws(SessionStoreError) -> PendingLoginCode? {
        let sealer = self.sealer
        let found = try await read("read the pending login code") { db -> (stored: Data?, codeType: Data?, sentAt: Double?, offeredUntil: Double?)? in
            guard let row = try Row.fetchOne(db, sql: """
                SELECT phone_code_hash, code_type, sent_at, offered_until FROM pending_login_code WHERE account = ? AND phone_key = ?
                """, arguments: [account.rawValue, phoneKey])
            else { return nil }
            return (row.blob("phone_code_hash"), row.blob("code_type"), row.double("sent_at"), row.double("offered_until"))
        }
        guard let found else { return nil }
        guard let stored = found.stored, let codeType = found.codeType, let sentAt = found.sentAt, let offeredUntil = found.offeredUntil
        else { throw .corruptRecord(account: account, what: "pending login code (a column is missing or of the wrong type)") }
        let hashBytes: [UInt8]
        if let sealer {
            guard let opened = sealer.open(stored, context: SecretContext.phoneCodeHash(account.rawValue, phoneKey)) else {
                throw .corruptRecord(account: account, what: "pending login code (it does not decrypt)")
            }
            hashBytes = opened
        } else {
            hashBytes = Array(stored)
        }
        guard let hash = String(validating: hashBytes, as: UTF8.self) else {
            throw .corruptRecord(account: account, what: "pending login code (its hash is not text)")
        }
        return PendingLoginCode(phoneCodeHash: hash, codeType: Array(codeType), sentAt: UnixTime(seconds: sentAt),
                                offeredUntil: UnixTime(seconds: offeredUntil))
    }

    public func setPendingLoginCode(_ code: PendingLoginCode?, account: AccountID, phoneKey: String) async throws(SessionStoreError) {
        let sealer = self.sealer
        let path = self.path
        let header = self.encryptionHeader
        try await write("record the pending login code") { db in
            guard let code else {
                try db.execute(sql: "DELETE FROM pending_login_code WHERE account = ? AND phone_key = ?", arguments: [account.rawValue, phoneKey])
                return
            }
            try Self.refuseStaleKey(db, opened: header, path: path)
            let hash = Array(code.phoneCodeHash.utf8)
            let stored = try sealer.map { try $0.seal(hash, context: SecretContext.phoneCodeHash(account.rawValue, phoneKey)) } ?? Data(hash)
            try db.execute(sql: """
                INSERT INTO pending_login_code(account, phone_key, phone_code_hash, code_type, sent_at, offered_until) VALUES (?, ?, ?, ?, ?, ?)
                ON CONFLICT(account, phone_key) DO UPDATE SET phone_code_hash = excluded.phone_code_hash, code_type = excluded.code_type,
                    sent_at = excluded.sent_at, offered_until = excluded.offered_until
                """, arguments: [account.rawValue, phoneKey, stored, Data(code.codeType), code.sentAt.seconds, code.offeredUntil.seconds])
        }
    }

    /// A row that does not read back (damaged, or sealed under another key) is left out and logged:
    /// it costs that token, not the others.
    public func futureAuthTokens(phoneKey: String) async throws(SessionStoreError) -> [FutureAuthToken] {
        let sealer = self.sealer
        let rows = try await read("read the future auth tokens") { db in
            try Row.fetchAll(db, sql: """
                SELECT token_digest, account, token, received_at FROM future_auth_token WHERE phone_key = ?
                ORDER BY received_at DESC, token_digest LIMIT ?
                """, arguments: [phoneKey, FutureAuthToken.limit])
                .map { (digest: $0.string("token_digest"), account: $0.string("account"), stored: $0.blob("token"), receivedAt: $0.double("received_at")) }
        }
        return rows.compactMap { row in
            var bytes: [UInt8]?
            if let digest = row.digest, let stored = row.stored {
                bytes = if let sealer { sealer.open(stored, context: SecretContext.futureAuthToken(phoneKey, digest)) } else { Array(stored) }
            }
            guard let bytes, let receivedAt = row.receivedAt else {
                options.logger.warning("a future auth token does not read back; it is left out", metadata: ["account": "\(row.account ?? "?")"])
                return nil
            }
            return FutureAuthToken(bytes: bytes, receivedAt: UnixTime(seconds: receivedAt))
        }
    }

    public func addFutureAuthToken(_ token: FutureAuthToken, account: AccountID, phoneKey: String) async throws(SessionStoreError) {
        let sealer = self.sealer
        let path = self.path
        let header = self.encryptionHeader
        let digest = token.digest
        try await write("keep a future auth token") { db in
            try Self.refuseStaleKey(db, opened: header, path: path)
            let stored = try sealer.map { try $0.seal(token.bytes, context: SecretContext.futureAuthToken(phoneKey, digest)) } ?? Data(token.bytes)
            try db.execute(sql: """
                INSERT INTO future_auth_token(phone_key, token_digest, account, token, received_at) VALUES (?, ?, ?, ?, ?)
                ON CONFLICT(phone_key, token_digest) DO NOTHING
                """, arguments: [phoneKey, digest, account.rawValue, stored, token.receivedAt.seconds])
            try db.execute(sql: """
                DELETE FROM future_auth_token WHERE phone_key = ? AND token_digest NOT IN (
                    SELECT token_digest FROM future_auth_token WHERE phone_key = ? ORDER BY received_at DESC, token_digest LIMIT ?)
                """, arguments: [phoneKey, phoneKey, FutureAuthToken.limit])
        }
    }

    @discardableResult
    public func removeFutureAuthTokens(phoneKey: String) async throws(SessionStoreError) -> Int {
        try await write("drop the future auth tokens of a phone") { db in
            try db.execute(sql: "DELETE FROM future_auth_token WHERE phone_key = ?", arguments: [phoneKey])
            return db.changesCount
        }
    }

    public func futureAuthTokenPhoneKey(account: AccountID) async throws(SessionStoreError) -> String? {
        try await read("read the phone key of the account's future auth tokens") { db in
            try String.fetchOne(db, sql: "SELECT phone_key FROM future_auth_token WHERE account = ? ORDER BY received_at DESC LIMIT 1",
                                arguments: [account.rawValue])
        }
    }
}
