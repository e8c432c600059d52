import Foundation
import Logging
import PostgresNIO
import SessionManager

/// Encryption at rest on PostgreSQL: the SQLite store's scheme (`StoreEncryption`, AES-256-GCM,
/// each secret bound to its place), with its header in `store_meta` for every process of the
/// cluster to check its key against before it touches a secret.
///
/// Processes come and go while others run: one started without a key (or with the key the store
/// was since re-keyed from) may still be writing when another turns encryption on (or re-keys).
/// Those take the store's encryption lock exclusively; every transaction that writes a secret takes
/// it shared and then compares the header with the one its store opened with, so it either
/// finishes before the sealing (whose pass then seals its row too) or sees the new header and is
/// refused (`encryptionKeyRequired`, `encryptionKeyChanged`): never a secret that no process with
/// the store's key could read.
extension PostgresSessionStore {
    /// True when the secrets are sealed.
    public var isEncrypted: Bool { sealer != nil }

    static let encryptionLock = "hashtextextended('tgsm.store-encryption', 0)"

    /// Reads the header and checks `encryption` against it, or writes one and seals every secret
    /// already stored, in one transaction, when `encryption` is given to a store without it.
    /// Returns the sealer and the header as this store opened with it.
    static func prepareEncryption(_ database: PostgresDatabase, encryption: StoreEncryption, logger: Logger)
        async throws(SessionStoreError) -> (SecretSealer?, String?)
    {
        let location = database.location
        if let stored = try await readHeader(database) {
            return (try EncryptionHeader.decode(stored).sealer(for: encryption, path: location), stored)
        }
        // Made outside the transaction: a passphrase's scrypt takes a tenth of a second.
        guard let (header, sealer) = try EncryptionHeader.make(for: encryption, path: location) else { return (nil, nil) }
        let json = try header.encoded()
        let sealed: (winner: String?, secrets: Int, snapshots: Int)
        do {
            sealed = try await database.transaction { connection in
                try await connection.query("SELECT pg_advisory_xact_lock(\(unescaped: encryptionLock))", logger: logger)
                // Another process may have turned encryption on first, perhaps with another key.
                if let winner = try await storedHeader(connection, logger: logger) { return (winner, 0, 0) }
                try await connection.query(
                    "INSERT INTO store_meta(key, value) VALUES ('encryption', \(Data(json.utf8)))", logger: logger)
                let secrets = try await resealSecrets(connection, from: nil, to: sealer, logger: logger)
                let snapshots = try await connection.rows("SELECT file FROM backups", logger: logger).count
                return (nil, secrets, snapshots)
            }
        } catch let error as SessionStoreError {
            throw error
        } catch {
            throw .database(operation: "turn encryption on in \(location)", reason: PostgresDatabase.describe(error), failure: .postgres)
        }
        if let winner = sealed.winner {
            return (try EncryptionHeader.decode(winner).sealer(for: encryption, path: location), winner)
        }
        // The rows now hold sealed secrets, but the row versions they replaced stay in the table
        // files until VACUUM reclaims them, and in WAL archives and dumps taken before.
        logger.warning("the store's secrets are sealed from now on; copies in clear remain in what was written before", metadata: [
            "store": "\(location)", "secrets_sealed": "\(sealed.secrets)", "snapshots_in_clear": "\(sealed.snapshots)",
            "fix": .string("at a quiet time run VACUUM FULL dc, pending_login_code, future_auth_token; take a sealed snapshot "
                + "(tgsm session backup) and delete the older ones, and replace dumps and WAL archives taken before"),
        ])
        return (sealer, json)
    }

    static func readHeader(_ database: PostgresDatabase) async throws(SessionStoreError) -> String? {
        do {
            return try await database.read { connection in try await storedHeader(connection, logger: database.logger) }
        } catch let error as SessionStoreError {
            throw error
        } catch {
            throw .database(operation: "read the store's encryption header", reason: PostgresDatabase.describe(error), failure: .postgres)
        }
    }

    static func storedHeader(_ connection: PostgresConnection, logger: Logger) async throws -> String? {
        guard let row = try await connection.rows("SELECT value FROM store_meta WHERE key = 'encryption'", logger: logger).first else {
            return nil
        }
        return String(decoding: try row.decode(Data.self), as: UTF8.self)
    }

    /// Seals every auth key, temporary key, login code hash and future auth token under `new`:
    /// from clear when `old` is nil, else from `old` (a re-key). A secret that does not open under
    /// `old` stops it all (the transaction rolls back), but a future auth token that does not is
    /// dropped (usable under neither key). Returns how many were sealed.
    static func resealSecrets(_ connection: PostgresConnection, from old: SecretSealer?, to new: SecretSealer, logger: Logger) async throws -> Int {
        var count = 0
        func reseal(_ stored: Data, _ context: String, account: String, what: String) throws -> Data {
            count += 1
            return try StoredSecret.resealedOrRefused(stored, from: old, to: new, context: context, account: account, what: what)
        }
        for row in try await connection.rows("SELECT account, dc_id, auth_key, temp_key FROM dc", logger: logger) {
            let (account, dc, key, temporary) = try row.decode((String, Int64, Data?, Data?).self)
            guard key != nil || temporary != nil else { continue }
            let sealedKey = try key.map { try reseal($0, SecretContext.authKey(account, Int(dc)), account: account, what: "auth key of DC \(dc)") }
            let sealedTemporary = try temporary.map {
                try reseal($0, SecretContext.tempKey(account, Int(dc)), account: account, what: "temporary key of DC \(dc)")
            }
            try await connection.query("""
                UPDATE dc SET auth_key = \(sealedKey), temp_key = \(sealedTemporary) WHERE account = \(account) AND dc_id = \(dc)
                """, logger: logger)
        }
        for row in try await connection.rows("SELECT account, phone_key, phone_code_hash FROM pending_login_code", logger: logger) {
            let (account, phoneKey, hash) = try row.decode((String, String, Data).self)
            let sealed = try reseal(hash, SecretContext.phoneCodeHash(account, phoneKey), account: account, what: "pending login code")
            try await connection.query("""
                UPDATE pending_login_code SET phone_code_hash = \(sealed) WHERE account = \(account) AND phone_key = \(phoneKey)
                """, logger: logger)
        }
        for row in try await connection.rows("SELECT phone_key, token_digest, token FROM future_auth_token", logger: logger) {
            let (phoneKey, digest, token) = try row.decode((String, String, Data).self)
            guard let sealed = try StoredSecret.resealed(token, from: old, to: new, context: SecretContext.futureAuthToken(phoneKey, digest)) else {
                try await connection.query("DELETE FROM future_auth_token WHERE phone_key = \(phoneKey) AND token_digest = \(digest)", logger: logger)
                continue
            }
            count += 1
            try await connection.query("""
                UPDATE future_auth_token SET token = \(sealed) WHERE phone_key = \(phoneKey) AND token_digest = \(digest)
                """, logger: logger)
        }
        for row in try await connection.rows("SELECT id, proxy FROM account WHERE proxy IS NOT NULL", logger: logger) {
            let (account, link) = try row.decode((String, String).self)
            count += 1
            let sealed = try StoredProxyLink.resealed(link, account: AccountID(account), from: old, to: new)
            try await connection.query("UPDATE account SET proxy = \(sealed) WHERE id = \(account)", logger: logger)
        }
        return count
    }

    /// In a transaction that writes a secret: refused once the store's header is not the one this
    /// store opened with (encryption turned on, or a re-key, by another process): see the type's
    /// comment for why the lock comes first.
    static func refuseStaleKey(_ connection: PostgresConnection, opened: String?, location: String, logger: Logger) async throws {
        try await connection.query("SELECT pg_advisory_xact_lock_shared(\(unescaped: encryptionLock))", logger: logger)
        // A statement of its own: under READ COMMITTED it sees a header committed while it waited.
        let current = try await storedHeader(connection, logger: logger)
        guard current != opened else { return }
        throw opened == nil ? SessionStoreError.encryptionKeyRequired(path: location) : SessionStoreError.encryptionKeyChanged(path: location)
    }

    /// A secret that did not open: the store was re-keyed since (say so), or the record is damaged.
    static func explainUnreadableSecret(_ error: any Error, _ connection: PostgresConnection, opened: String?, location: String,
                                        logger: Logger) async -> any Error {
        guard let stored = error as? SessionStoreError, case .corruptRecord = stored, opened != nil,
              let current = try? await storedHeader(connection, logger: logger), current != opened
        else { return error }
        return SessionStoreError.encryptionKeyChanged(path: location)
    }

    /// Seals every secret of the store at `url` under `newEncryption`, in one transaction that
    /// holds the store's encryption lock: opened with `encryption` (the current key, checked first).
    /// Processes of the cluster still on the old key cannot write a secret from then on
    /// (`encryptionKeyChanged`): restart each with the new key. Snapshots taken before restore only
    /// with the old key.
    public static func rekey(url: String, from encryption: StoreEncryption, to newEncryption: StoreEncryption,
                             logger: Logger = Logger(label: "tgsm.store")) async throws(SessionStoreError) -> RekeyReport {
        // Refused before connecting: connecting migrates the schema, and "nothing was changed" must hold.
        if case .none = newEncryption { throw .newKeyRequired(path: (try? PostgresURL(url))?.redacted ?? "the PostgreSQL store") }
        let store = try await connect(url: url, encryption: encryption, logger: logger)
        let location = store.database.location
        let opened = store.encryptionHeader
        let old = store.sealer
        do {
            guard let (header, sealer) = try EncryptionHeader.make(for: newEncryption, path: location) else {
                throw SessionStoreError.newKeyRequired(path: location)
            }
            let json = try header.encoded()
            let count = try await store.write("re-key \(location)") { connection in
                try await connection.query("SELECT pg_advisory_xact_lock(\(unescaped: encryptionLock))", logger: logger)
                guard try await storedHeader(connection, logger: logger) == opened else {
                    throw SessionStoreError.encryptionKeyChanged(path: location)
                }
                let count = try await resealSecrets(connection, from: old, to: sealer, logger: logger)
                try await connection.query("""
                    INSERT INTO store_meta(key, value) VALUES ('encryption', \(Data(json.utf8)))
                    ON CONFLICT (key) DO UPDATE SET value = excluded.value
                    """, logger: logger)
                return count
            }
            let snapshots = try await store.recordedBackups().map(\.file)
            await store.close()
            logger.warning("the store's secrets are sealed under a new key; what was written before still holds the old ciphertexts", metadata: [
                "store": "\(location)", "secrets": "\(count)", "snapshots_under_the_old_key": "\(snapshots.count)",
                "fix": .string("restart every process with the new key; at a quiet time run VACUUM FULL dc, pending_login_code, future_auth_token; "
                    + "take a new snapshot (tgsm session backup) and delete the older ones"),
            ])
            return RekeyReport(secrets: count, backup: nil, olderBackups: snapshots)
        } catch {
            await store.close()
            if let error = error as? SessionStoreError { throw error }
            throw .database(operation: "re-key \(location)", reason: PostgresDatabase.describe(error), failure: .postgres)
        }
    }
}
