import Foundation
import Logging
import PostgresNIO
import SessionManager

/// Encryption at rest on PostgreSQL: the SQLite store's scheme (`StoreEncryption`, AES-256-GCM,
/// each secret bound to its place), with its header in `store_meta` for every process of the
/// cluster to check its key against before it touches a secret.
///
/// Processes come and go while others run: one started without a key may still be writing when
/// another turns encryption on. Turning it on takes the store's encryption lock exclusively; a
/// store without a key takes it shared in every transaction that writes a secret and then looks for
/// the header, so it either finishes before the sealing (whose pass then seals its row too) or
/// sees the header and is refused (`encryptionKeyRequired`): never a secret in clear among sealed
/// ones that no keyed process could read.
extension PostgresSessionStore {
    /// True when the secrets are sealed.
    public var isEncrypted: Bool { sealer != nil }

    static let encryptionLock = "hashtextextended('tgsm.store-encryption', 0)"

    /// Reads the header and checks `encryption` against it, or writes one and seals every secret
    /// already stored, in one transaction, when `encryption` is given to a store without it.
    static func prepareEncryption(_ database: PostgresDatabase, encryption: StoreEncryption, logger: Logger)
        async throws(SessionStoreError) -> SecretSealer?
    {
        let location = database.location
        if let stored = try await readHeader(database) {
            return try EncryptionHeader.decode(stored).sealer(for: encryption, path: location)
        }
        // Made outside the transaction: a passphrase's scrypt takes a tenth of a second.
        guard let (header, sealer) = try EncryptionHeader.make(for: encryption, path: location) else { return nil }
        let json = try header.encoded()
        let sealed: (winner: String?, secrets: Int, snapshots: Int)
        do {
            sealed = try await database.transaction { connection in
                try await connection.query("SELECT pg_advisory_xact_lock(\(unescaped: encryptionLock))", logger: logger)
                // Another process may have turned encryption on first, perhaps with another key.
                if let winner = try await storedHeader(connection, logger: logger) { return (winner, 0, 0) }
                try await connection.query(
                    "INSERT INTO store_meta(key, value) VALUES ('encryption', \(Data(json.utf8)))", logger: logger)
                let secrets = try await sealExistingSecrets(connection, with: sealer, logger: logger)
                let snapshots = try await connection.rows("SELECT file FROM backups", logger: logger).count
                return (nil, secrets, snapshots)
            }
        } catch let error as SessionStoreError {
            throw error
        } catch {
            throw .database(operation: "turn encryption on in \(location)", reason: PostgresDatabase.describe(error))
        }
        if let winner = sealed.winner {
            return try EncryptionHeader.decode(winner).sealer(for: encryption, path: location)
        }
        // The rows now hold sealed secrets, but the row versions they replaced stay in the table
        // files until VACUUM reclaims them, and in WAL archives and dumps taken before.
        logger.warning("the store's secrets are sealed from now on; copies in clear remain in what was written before", metadata: [
            "store": "\(location)", "secrets_sealed": "\(sealed.secrets)", "snapshots_in_clear": "\(sealed.snapshots)",
            "fix": .string("at a quiet time run VACUUM FULL dc, pending_login_code, future_auth_token; take a sealed snapshot "
                + "(tgsm session backup) and delete the older ones, and replace dumps and WAL archives taken before"),
        ])
        return sealer
    }

    private static func readHeader(_ database: PostgresDatabase) async throws(SessionStoreError) -> String? {
        do {
            return try await database.read { connection in try await storedHeader(connection, logger: database.logger) }
        } catch let error as SessionStoreError {
            throw error
        } catch {
            throw .database(operation: "read the store's encryption header", reason: PostgresDatabase.describe(error))
        }
    }

    private static func storedHeader(_ connection: PostgresConnection, logger: Logger) async throws -> String? {
        guard let row = try await connection.rows("SELECT value FROM store_meta WHERE key = 'encryption'", logger: logger).first else {
            return nil
        }
        return String(decoding: try row.decode(Data.self), as: UTF8.self)
    }

    /// Seals every auth key, temporary key, login code hash and future auth token; returns how many.
    private static func sealExistingSecrets(_ connection: PostgresConnection, with sealer: SecretSealer, logger: Logger) async throws -> Int {
        var count = 0
        for row in try await connection.rows("SELECT account, dc_id, auth_key, temp_key FROM dc", logger: logger) {
            let (account, dc, key, temporary) = try row.decode((String, Int64, Data?, Data?).self)
            guard key != nil || temporary != nil else { continue }
            let sealedKey = try key.map { try StoredSecret.stored(Array($0), sealer: sealer, context: SecretContext.authKey(account, Int(dc))) }
            let sealedTemporary = try temporary.map {
                try StoredSecret.stored(Array($0), sealer: sealer, context: SecretContext.tempKey(account, Int(dc)))
            }
            try await connection.query("""
                UPDATE dc SET auth_key = \(sealedKey), temp_key = \(sealedTemporary) WHERE account = \(account) AND dc_id = \(dc)
                """, logger: logger)
            count += (key == nil ? 0 : 1) + (temporary == nil ? 0 : 1)
        }
        for row in try await connection.rows("SELECT account, phone_key, phone_code_hash FROM pending_login_code", logger: logger) {
            let (account, phoneKey, hash) = try row.decode((String, String, Data).self)
            let sealed = try StoredSecret.stored(Array(hash), sealer: sealer, context: SecretContext.phoneCodeHash(account, phoneKey))
            try await connection.query("""
                UPDATE pending_login_code SET phone_code_hash = \(sealed) WHERE account = \(account) AND phone_key = \(phoneKey)
                """, logger: logger)
            count += 1
        }
        for row in try await connection.rows("SELECT phone_key, token_digest, token FROM future_auth_token", logger: logger) {
            let (phoneKey, digest, token) = try row.decode((String, String, Data).self)
            let sealed = try StoredSecret.stored(Array(token), sealer: sealer, context: SecretContext.futureAuthToken(phoneKey, digest))
            try await connection.query("""
                UPDATE future_auth_token SET token = \(sealed) WHERE phone_key = \(phoneKey) AND token_digest = \(digest)
                """, logger: logger)
            count += 1
        }
        return count
    }

    /// In a transaction that writes a secret: a store without a key is refused once the store is
    /// encrypted (see the type's comment for why the lock comes first).
    static func refuseSecretsInClear(_ connection: PostgresConnection, sealer: SecretSealer?, location: String, logger: Logger) async throws {
        guard sealer == nil else { return }
        try await connection.query("SELECT pg_advisory_xact_lock_shared(\(unescaped: encryptionLock))", logger: logger)
        // A statement of its own: under READ COMMITTED it sees a header committed while it waited.
        if try await !connection.rows("SELECT 1 FROM store_meta WHERE key = 'encryption'", logger: logger).isEmpty {
            throw SessionStoreError.encryptionKeyRequired(path: location)
        }
    }
}
