import Crypto
import Foundation
import GRDB
import Logging
import MTProto
import MTProtoClient
import Synchronization

/// The embedded session store: one SQLite file (WAL) in a 0700 directory, shared by every process
/// of one host that runs accounts from it. See docs/SESSIONS.md for the schema and the rules.
public final class SQLiteSessionStore: SessionStore, Sendable {
    /// What opening the store found and did.
    public enum OpenOutcome: Sendable, Equatable {
        /// The file was there and good.
        case opened
        /// There was no store: a new one was made.
        case created
        /// The file was damaged, missing or older than a backup: the newest good backup replaced it.
        case restored(backup: String, reason: String, damagedFileMovedTo: String?)
    }

    public let directory: String
    public let path: String
    public let backupDirectory: String
    public let outcome: OpenOutcome
    let pool: DatabasePool
    let sealer: SecretSealer?
    /// The encryption header as this store found (or wrote) it at open: a secret is written only
    /// while it is still the store's (see `refuseStaleKey`).
    let encryptionHeader: String?
    let options: SQLiteStoreOptions
    let phoneSecret: SymmetricKey
    var logger: Logger { options.logger }
    var clock: any TelegramClock { options.clock }
    /// Serializes this process's backups (other processes name theirs apart).
    let backupLock = Mutex<Void>(())
    /// The file this store opened: `wasReplaced` compares the path's file with it.
    private let openedFile: FileIdentity?

    /// Opens (creating, checking, and when needed restoring) the store in `directory`.
    public static func open(directory: String, options: SQLiteStoreOptions = SQLiteStoreOptions()) throws(SessionStoreError) -> SQLiteSessionStore {
        let path = directory + "/" + options.fileName
        let backupDirectory = directory + "/backups"
        try FileSystem.ensureDirectory(directory)
        try FileSystem.ensureDirectory(backupDirectory)
        let recovery = StoreRecovery(path: path, backupDirectory: backupDirectory, options: options)
        var outcome = try recovery.prepare()
        try FileSystem.createPrivateFile(path)
        let pool: DatabasePool
        do {
            pool = try openPool(path: path, options: options)
        } catch let error as DatabaseError where damageCodes.contains(error.resultCode) {
            // The file passed inspection but SQLite cannot run it (a damage the checks missed).
            outcome = try recovery.recover(reason: "SQLite cannot open it for writing: \(error)")
            do { pool = try openPool(path: path, options: options) } catch {
                throw .databaseFailed(operation: "open \(path) restored from its backup", error: error)
            }
        } catch {
            throw .databaseFailed(operation: "open \(path)", error: error)
        }
        // Keep the schema in the main file, not only in the WAL, so a lost WAL loses less.
        _ = try? pool.writeWithoutTransaction { db in try db.checkpoint(.truncate) }
        let (sealer, phoneSecret, header) = try prepareSecrets(pool: pool, path: path, encryption: options.encryption, logger: options.logger)
        let store = SQLiteSessionStore(directory: directory, path: path, backupDirectory: backupDirectory, outcome: outcome,
                                       pool: pool, sealer: sealer, encryptionHeader: header, options: options, phoneSecret: phoneSecret)
        switch outcome {
        case .opened: options.logger.debug("session store opened", metadata: ["path": "\(path)"])
        case .created: options.logger.notice("session store created", metadata: ["path": "\(path)"])
        case .restored: break
        }
        return store
    }

    /// Opens an existing, current store for reading only: no recovery, no migration, no checkpoint
    /// and no write (so no fsync), which is what `tgsm status` and `session list` need to answer in
    /// milliseconds. nil when that shortcut does not apply (no file, a schema to upgrade, a file
    /// SQLite cannot read, secrets not yet set up, an encryption header it cannot use): the caller
    /// then opens it with `open`, which checks, restores, migrates and reports.
    public static func openForReading(directory: String, options: SQLiteStoreOptions = SQLiteStoreOptions()) -> SQLiteSessionStore? {
        let path = directory + "/" + options.fileName
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        var configuration = Configuration()
        configuration.readonly = true
        configuration.busyMode = .timeout(options.busyTimeout)
        guard let pool = try? DatabasePool(path: path, configuration: configuration),
              (try? pool.read({ db in try SQLiteSchema.migrator().hasCompletedMigrations(db) })) == true,
              let stored = try? pool.read({ db in
                  (try String.fetchOne(db, sql: "SELECT value FROM store_meta WHERE key = 'encryption'"),
                   try Data.fetchOne(db, sql: "SELECT value FROM store_meta WHERE key = 'phone_key_secret'"))
              }),
              let phone = stored.1 else {
            return nil
        }
        var sealer: SecretSealer?
        if let text = stored.0 {
            guard let header = try? JSONDecoder().decode(EncryptionHeader.self, from: Data(text.utf8)),
                  let opened = try? header.sealer(for: options.encryption, path: path) else { return nil }
            sealer = opened
        } else if case .none = options.encryption {
            sealer = nil
        } else {
            // Turning encryption on writes a header: that is `open`'s job.
            return nil
        }
        return SQLiteSessionStore(directory: directory, path: path, backupDirectory: directory + "/backups", outcome: .opened,
                                  pool: pool, sealer: sealer, encryptionHeader: stored.0, options: options, phoneSecret: SymmetricKey(data: phone))
    }

    /// SQLite results that mean "this file is damaged", as opposed to busy, full or missing permissions.
    private static let damageCodes: [ResultCode] = [.SQLITE_CORRUPT, .SQLITE_NOTADB, .SQLITE_READONLY, .SQLITE_FORMAT]

    private static func openPool(path: String, options: SQLiteStoreOptions) throws -> DatabasePool {
        var configuration = Configuration()
        configuration.busyMode = .timeout(options.busyTimeout)
        configuration.journalMode = .wal
        let synchronous = options.synchronous.rawValue
        configuration.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = \(synchronous)")
            // Freed pages are zeroed, so a replaced or deleted key does not linger in the file.
            try db.execute(sql: "PRAGMA secure_delete = ON")
        }
        let pool = try DatabasePool(path: path, configuration: configuration)
        // GRDB sets NORMAL on the writer when it turns WAL on, after `prepareDatabase`: set ours
        // again on the pool's one writer connection, the only one that commits.
        try pool.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA synchronous = \(synchronous)") }
        try SQLiteSchema.migrator().migrateAlongsideOtherProcesses(pool)
        return pool
    }

    private init(directory: String, path: String, backupDirectory: String, outcome: OpenOutcome, pool: DatabasePool,
                 sealer: SecretSealer?, encryptionHeader: String?, options: SQLiteStoreOptions, phoneSecret: SymmetricKey) {
        self.encryptionHeader = encryptionHeader
        self.directory = directory
        self.path = path
        self.backupDirectory = backupDirectory
        self.outcome = outcome
        self.pool = pool
        self.sealer = sealer
        self.options = options
        self.phoneSecret = phoneSecret
        self.openedFile = FileSystem.identity(path)
    }

    /// Whether the store's path no longer names the file this store opened: another process put a
    /// backup in its place (`tgsm session restore --force`) or moved it away. This store's reads and
    /// writes then reach the old file, which nobody else reads: a process must stop using it (and
    /// its sessions, whose keys the restored file may hand to another process) and open the store again.
    public var wasReplaced: Bool {
        guard let openedFile else { return false }
        return FileSystem.identity(path) != openedFile
    }

    /// Whether secrets are encrypted at rest in this store.
    public var isEncrypted: Bool { sealer != nil }

    /// The writer's `PRAGMA synchronous` (0 OFF, 1 NORMAL, 2 FULL, 3 EXTRA), for checks and diagnostics.
    public func synchronousLevel() throws(SessionStoreError) -> Int {
        do { return try pool.writeWithoutTransaction { db in try Int.fetchOne(db, sql: "PRAGMA synchronous") ?? -1 } } catch {
            throw .databaseFailed(operation: "read PRAGMA synchronous", error: error)
        }
    }

    /// Closes the database connections; the store must not be used afterwards. What the WAL holds
    /// is copied into the main file first: the pool's last connection to close is a read-only one,
    /// which cannot, so every command left its commits in `sessions.sqlite-wal` alone, and a copy
    /// of the main file (scp, a move of the store) was an empty store. PASSIVE: it never waits for
    /// another process's readers (what they still need stays in the WAL, which SQLite keeps).
    public func close() throws(SessionStoreError) {
        if !pool.configuration.readonly {
            do { try pool.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA wal_checkpoint(PASSIVE)") } } catch {
                logger.debug("the WAL could not be copied into the store file at close; it stays beside it", metadata: ["error": "\(error)"])
            }
        }
        do { try pool.close() } catch { throw .databaseFailed(operation: "close", error: error) }
    }

    /// Reads the encryption header and the phone-key secret, creating them on first use. Turning
    /// encryption on for a store that had none seals its existing secrets in the same transaction.
    private static func prepareSecrets(pool: DatabasePool, path: String, encryption: StoreEncryption,
                                       logger: Logger) throws(SessionStoreError) -> (SecretSealer?, SymmetricKey, String?) {
        let stored: (header: String?, phone: Data?)
        do {
            stored = try pool.read { db in
                (try String.fetchOne(db, sql: "SELECT value FROM store_meta WHERE key = 'encryption'"),
                 try Data.fetchOne(db, sql: "SELECT value FROM store_meta WHERE key = 'phone_key_secret'"))
            }
        } catch {
            throw .databaseFailed(operation: "read the store's metadata", error: error)
        }
        var sealer: SecretSealer?
        var newHeader: EncryptionHeader?
        if let text = stored.header {
            sealer = try EncryptionHeader.decode(text).sealer(for: encryption, path: path)
        } else if let made = try EncryptionHeader.make(for: encryption, path: path) {
            newHeader = made.0
            sealer = made.1
        }
        let phoneSecret = stored.phone.map { SymmetricKey(data: $0) } ?? SymmetricKey(size: .bits256)
        guard newHeader != nil || stored.phone == nil else { return (sealer, phoneSecret, stored.header) }
        let secretBytes = phoneSecret.withUnsafeBytes { Data($0) }
        let headerJSON = try newHeader.map { header throws(SessionStoreError) in try header.encoded() }
        let headerText = headerJSON ?? stored.header
        let sealing = newHeader == nil ? nil : sealer
        do {
            try pool.writeWithoutTransaction { db in
                try db.inTransaction(.immediate) {
                    try db.execute(sql: "INSERT OR IGNORE INTO store_meta(key, value) VALUES ('phone_key_secret', ?)", arguments: [secretBytes])
                    if let headerJSON, let sealing {
                        try db.execute(sql: "INSERT INTO store_meta(key, value) VALUES ('encryption', ?)", arguments: [headerJSON])
                        try resealSecrets(db, from: nil, to: sealing)
                    }
                    try bumpCommitSequence(db)
                    return .commit
                }
            }
        } catch let error as SessionStoreError {
            throw error
        } catch {
            throw .databaseFailed(operation: "store the encryption header", error: error)
        }
        if sealing != nil {
            // The rows now hold sealed secrets, but the pages they were rewritten from still hold
            // them in clear, in the file's free space, for anyone who copies the file: rebuild it.
            do {
                try pool.writeWithoutTransaction { db in
                    try db.execute(sql: "VACUUM")
                    try db.checkpoint(.truncate)
                }
            } catch {
                logger.warning("the secrets are sealed, but the copies in clear they replaced may remain in the file's free space",
                               metadata: ["path": "\(path)", "error": "\(error)",
                                          "fix": "with no process using the store, run: sqlite3 \(path) VACUUM"])
            }
            let directory = (path as NSString).deletingLastPathComponent
            let inClear = backupsHoldingKeysInClear(directory: directory)
            if !inClear.isEmpty {
                logger.warning("backups taken before encryption was turned on still hold the auth keys in clear",
                               metadata: ["backups": "\(inClear.count)", "directory": "\(directory)/backups",
                                          "fix": "take a sealed backup (tgsm session backup), then delete the older ones; tgsm check names them"])
            }
        }
        if stored.phone == nil {
            // Another process may have won the race to create it: use whichever is stored.
            let winner = try? pool.read { db in try Data.fetchOne(db, sql: "SELECT value FROM store_meta WHERE key = 'phone_key_secret'") }
            if let winner { return (sealer, SymmetricKey(data: winner), headerText) }
        }
        return (sealer, phoneSecret, headerText)
    }

    /// Seals every secret under `new`: secrets in clear when `old` is nil (encryption turned on),
    /// else sealed under `old` (a re-key). A secret that does not open under `old` stops it all
    /// (the transaction rolls back: nothing is lost), but a future auth token that does not is
    /// dropped (it could not be used under either key). Returns how many were sealed.
    @discardableResult
    static func resealSecrets(_ db: Database, from old: SecretSealer?, to new: SecretSealer) throws -> Int {
        var count = 0
        func reseal(_ stored: Data, _ context: String, account: String, what: String) throws -> Data {
            count += 1
            return try StoredSecret.resealedOrRefused(stored, from: old, to: new, context: context, account: account, what: what)
        }
        let rows = try Row.fetchAll(db, sql: "SELECT account, dc_id, auth_key, auth_key_id, server_salt, time_offset, is_authorized, temp_key FROM dc")
        for row in rows {
            guard let account = row.string("account"), let dc = row.int64("dc_id") else { continue }
            let key = try row.blob("auth_key").map { try reseal($0, SecretContext.authKey(account, Int(dc)), account: account, what: "auth key of DC \(dc)") }
            let temp = try row.blob("temp_key").map { try reseal($0, SecretContext.tempKey(account, Int(dc)), account: account, what: "temporary key of DC \(dc)") }
            let check = RowCheck.dc(account: account, dc: Int(dc), key: key, keyID: row.int64("auth_key_id"),
                                    salt: row.int64("server_salt") ?? 0, offset: row.double("time_offset") ?? 0,
                                    authorized: row.int64("is_authorized") == 1)
            try db.execute(sql: "UPDATE dc SET auth_key = ?, temp_key = ?, row_check = ? WHERE account = ? AND dc_id = ?",
                           arguments: [key, temp, check, account, dc])
        }
        for row in try Row.fetchAll(db, sql: "SELECT account, phone_key, phone_code_hash FROM pending_login_code") {
            guard let account = row.string("account"), let phoneKey = row.string("phone_key"), let hash = row.blob("phone_code_hash") else { continue }
            let sealed = try reseal(hash, SecretContext.phoneCodeHash(account, phoneKey), account: account, what: "pending login code")
            try db.execute(sql: "UPDATE pending_login_code SET phone_code_hash = ? WHERE account = ? AND phone_key = ?",
                           arguments: [sealed, account, phoneKey])
        }
        for row in try Row.fetchAll(db, sql: "SELECT phone_key, token_digest, token FROM future_auth_token") {
            guard let phoneKey = row.string("phone_key"), let digest = row.string("token_digest"), let token = row.blob("token") else { continue }
            guard let sealed = try StoredSecret.resealed(token, from: old, to: new, context: SecretContext.futureAuthToken(phoneKey, digest)) else {
                try db.execute(sql: "DELETE FROM future_auth_token WHERE phone_key = ? AND token_digest = ?", arguments: [phoneKey, digest])
                continue
            }
            count += 1
            try db.execute(sql: "UPDATE future_auth_token SET token = ? WHERE phone_key = ? AND token_digest = ?", arguments: [sealed, phoneKey, digest])
        }
        for row in try Row.fetchAll(db, sql: "SELECT id, proxy FROM account WHERE proxy IS NOT NULL") {
            guard let account = row.string("id"), let link = row.string("proxy") else { continue }
            count += 1
            let sealed = try StoredProxyLink.resealed(link, account: AccountID(account), from: old, to: new)
            try db.execute(sql: "UPDATE account SET proxy = ? WHERE id = ?", arguments: [sealed, account])
        }
        return count
    }

    static func bumpCommitSequence(_ db: Database) throws {
        try db.cachedStatement(sql: "UPDATE store_meta SET value = value + 1 WHERE key = 'commit_seq'").execute()
    }

    // MARK: Transactions

    /// Runs `body` as one IMMEDIATE write transaction (the write lock is taken up front, so two
    /// processes never both read and then fail to upgrade), bumping the commit counter with it.
    func write<T: Sendable>(_ operation: String, _ body: @escaping @Sendable (Database) throws -> T) async throws(SessionStoreError) -> T {
        do {
            return try await pool.writeWithoutTransaction { db in
                var result: T?
                try db.inTransaction(.immediate) {
                    result = try body(db)
                    try Self.bumpCommitSequence(db)
                    return .commit
                }
                guard let result else { throw SessionStoreError.database(operation: operation, reason: "the transaction produced no result") }
                return result
            }
        } catch let error as SessionStoreError {
            throw error
        } catch {
            throw .databaseFailed(operation: operation, error: error)
        }
    }

    func read<T: Sendable>(_ operation: String, _ body: @escaping @Sendable (Database) throws -> T) async throws(SessionStoreError) -> T {
        do {
            return try await pool.read(body)
        } catch let error as SessionStoreError {
            throw error
        } catch {
            throw .databaseFailed(operation: operation, error: error)
        }
    }

    /// Rejects the write unless `fence` is the account's current, unreleased lease token.
    static func checkFence(_ db: Database, account: AccountID, fence: LeaseToken?) throws {
        guard let fence else { return }
        let current = try currentLease(db, account: account)
        let released = try Bool.fetchOne(db.cachedStatement(sql: "SELECT released = 1 FROM lease WHERE account = ?"), arguments: [account.rawValue]) ?? true
        guard let current, current.token == fence, !released else {
            throw SessionStoreError.fenced(account: account, token: fence, current: released ? nil : current)
        }
    }

    /// A secret is written under the key this store opened with. Once another process has turned
    /// encryption on (sealing every secret there was) or re-keyed the store, such a write would
    /// leave a secret that no process with the store's key can read: refused, in the write's own
    /// transaction (`encryptionKeyRequired` without a key, `encryptionKeyChanged` with the old one).
    static func refuseStaleKey(_ db: Database, opened: String?, path: String) throws {
        let current = try String.fetchOne(db.cachedStatement(sql: "SELECT value FROM store_meta WHERE key = 'encryption'"))
        guard current != opened else { return }
        throw opened == nil ? SessionStoreError.encryptionKeyRequired(path: path) : SessionStoreError.encryptionKeyChanged(path: path)
    }

    /// A secret that did not open: the store was re-keyed since (say so), or the record is damaged.
    static func explainUnreadableSecret(_ error: SessionStoreError, _ db: Database, opened: String?, path: String) -> SessionStoreError {
        guard case .corruptRecord = error, opened != nil,
              let current = try? String.fetchOne(db, sql: "SELECT value FROM store_meta WHERE key = 'encryption'"), current != opened
        else { return error }
        return .encryptionKeyChanged(path: path)
    }

    static func ensureAccount(_ db: Database, _ account: AccountID, now: UnixTime) throws {
        let check = RowCheck.account(id: account.rawValue, homeDC: nil, userID: nil, isBot: false)
        try db.cachedStatement(sql: "INSERT INTO account(id, created_at, row_check) VALUES (?, ?, ?) ON CONFLICT(id) DO NOTHING")
            .execute(arguments: [account.rawValue, now.seconds, check])
    }

    // MARK: Accounts

    public func accounts() async throws(SessionStoreError) -> [AccountID] {
        try await read("list accounts") { db in
            try String.fetchAll(db, sql: "SELECT id FROM account ORDER BY id").map { AccountID($0) }
        }
    }

    /// One row looked up: a standby asks at every lease try.
    public func isKnownAccount(_ account: AccountID) async throws(SessionStoreError) -> Bool {
        try await read("look for account \(account)") { db in
            try Bool.fetchOne(db, sql: "SELECT EXISTS(SELECT 1 FROM account WHERE id = ?)", arguments: [account.rawValue]) ?? false
        }
    }

    public func deleteAccount(_ account: AccountID) async throws(SessionStoreError) {
        // Its send-code deadlines stay: Telegram counts code requests per number, and a removed
        // account's deadline taken away let the same number ask again under another name at once.
        try await write("delete account \(account)") { db in
            for table in ["account WHERE id", "flood_wait WHERE account", "lease WHERE account",
                          "account_status WHERE account", "pending_login_code WHERE account",
                          "future_auth_token WHERE account", "service_notification WHERE account", "account_freeze WHERE account",
                          "live_report WHERE account"] {
                try db.execute(sql: "DELETE FROM \(table) = ?", arguments: [account.rawValue])
            }
            for prefix in AlertKeys.prefixes(of: account) {
                try db.execute(sql: "DELETE FROM alert_sent WHERE substr(key, 1, length(?)) = ?", arguments: [prefix, prefix])
            }
        }
    }

    // MARK: Phone keys

    public func phoneKey(for phone: String) async throws(SessionStoreError) -> String {
        PhoneKey.digest(phone, secret: phoneSecret)
    }
}
