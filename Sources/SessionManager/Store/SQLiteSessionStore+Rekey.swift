import Foundation
import GRDB

/// What a re-key did.
public struct RekeyReport: Sendable, Equatable {
    /// Secrets sealed under the new key.
    public var secrets: Int
    /// A verified backup taken under the new key right after (SQLite); nil on PostgreSQL.
    public var backup: String?
    /// Backups taken before, still sealed under the old key (or holding secrets in clear): they
    /// restore only with that key. Replace or delete them once the new key is in place.
    public var olderBackups: [String]

    public init(secrets: Int, backup: String?, olderBackups: [String]) {
        self.secrets = secrets
        self.backup = backup
        self.olderBackups = olderBackups
    }
}

extension SQLiteSessionStore {
    /// Seals every secret of the store in `directory` under `newEncryption`: opened with
    /// `options.encryption` (the current key, checked first), re-sealed in one transaction (a secret
    /// that does not open stops it, with nothing changed), the file rebuilt so no ciphertext under
    /// the old key stays in its free pages, then a verified backup under the new key, so the
    /// store's own recovery never falls back to one it cannot open.
    ///
    /// A process that has the store open with the old key cannot write a secret from then on
    /// (`encryptionKeyChanged`): restart it with the new key. A store without encryption gets it.
    public static func rekey(directory: String, options: SQLiteStoreOptions, to newEncryption: StoreEncryption)
        throws(SessionStoreError) -> RekeyReport
    {
        // Refused before the store is opened: opening may restore a backup, which a mistaken call
        // should not set off.
        if case .none = newEncryption { throw .newKeyRequired(path: directory) }
        let store = try open(directory: directory, options: options)
        let secrets: Int
        do throws(SessionStoreError) {
            guard let (header, sealer) = try EncryptionHeader.make(for: newEncryption, path: store.path) else {
                throw SessionStoreError.newKeyRequired(path: directory)
            }
            secrets = try store.reseal(under: header, sealer: sealer)
            try store.close()
        } catch {
            try? store.close()
            throw error
        }
        var sealed = options
        sealed.encryption = newEncryption
        let reopened = try open(directory: directory, options: sealed)
        do throws(SessionStoreError) {
            let record = try reopened.backup(reason: .manual)
            let older = BackupCatalog(directory: reopened.backupDirectory).entries().map(\.file).filter { $0 != record.file }
            try reopened.close()
            return RekeyReport(secrets: secrets, backup: record.file, olderBackups: older)
        } catch {
            try? reopened.close()
            throw error
        }
    }

    private func reseal(under header: EncryptionHeader, sealer new: SecretSealer) throws(SessionStoreError) -> Int {
        let json = try header.encoded()
        let (opened, old, storePath) = (encryptionHeader, sealer, self.path)
        let count: Int
        do {
            count = try pool.writeWithoutTransaction { db in
                var count = 0
                try db.inTransaction(.immediate) {
                    // Another process may have re-keyed it since this one opened it.
                    try Self.refuseStaleKey(db, opened: opened, path: storePath)
                    count = try Self.resealSecrets(db, from: old, to: new)
                    try db.execute(sql: "INSERT INTO store_meta(key, value) VALUES ('encryption', ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                                   arguments: [json])
                    try Self.bumpCommitSequence(db)
                    return .commit
                }
                return count
            }
        } catch let error as SessionStoreError {
            throw error
        } catch {
            throw .databaseFailed(operation: "re-key \(path)", error: error)
        }
        // The old ciphertexts are in the pages the rows were rewritten from: rebuild the file.
        do {
            try pool.writeWithoutTransaction { db in
                try db.execute(sql: "VACUUM")
                try db.checkpoint(.truncate)
            }
        } catch {
            logger.warning("the secrets are sealed under the new key, but the old ciphertexts may remain in the file's free space",
                           metadata: ["path": "\(path)", "error": "\(error)", "fix": "with no process using the store, run: sqlite3 \(path) VACUUM"])
        }
        logger.notice("the store's secrets are sealed under a new key", metadata: ["path": "\(path)", "secrets": "\(count)"])
        return count
    }
}
