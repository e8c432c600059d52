import Crypto
import Foundation
import Logging
import MTProto
import MTProtoClient
import PostgresNIO
import SessionManager
import Synchronization
import Workers

/// The session store on PostgreSQL, for many processes on many hosts sharing accounts: the same
/// contract as `SQLiteSessionStore` (`SessionStore`, and with it `FloodLedgerStore` and
/// `AccountStatusStore`), the same tables (docs/SESSIONS.md, "PostgreSQL").
///
/// Every method is one transaction. Account-scoped writes check the writer's fencing token in
/// that transaction, holding the lease row `FOR SHARE` until commit, so a takeover (which updates
/// that row) waits for writes in flight and every write after it sees the new token.
/// Snapshots (`snapshot(into:)`, `restore(from:)`) are verified SQLite store files of every
/// account's session, recorded in the `backups` table; the database as a whole is backed up with
/// PostgreSQL's own tools (pg_dump, WAL archiving).
public final class PostgresSessionStore: SessionStore, Sendable {
    public let database: PostgresDatabase
    let phoneSecret: SymmetricKey
    /// Seals the secrets (auth keys, temporary keys, login code hashes, future auth tokens) when
    /// the store is encrypted; nil when they are stored as they are.
    let sealer: SecretSealer?
    /// The encryption header as this store found (or wrote) it: a secret is written only while it
    /// is still the store's (`refuseStaleKey`).
    let encryptionHeader: String?
    /// Where the key came from: snapshots are sealed with it too (`snapshot(into:options:)`).
    let encryption: StoreEncryption
    let clock: any TelegramClock
    let logger: Logger
    private let ownsDatabase: Bool
    /// Fans the flood-wait announcements (LISTEN tgsm_flood) out to this process's ledgers.
    let floodSignals = Broadcaster<AccountID?>()
    let floodListener = Mutex<Task<Void, Never>?>(nil)

    /// Connects to `url`, applies the store's migrations and returns the store; `close()` ends the connections.
    /// `encryption` seals the secrets at rest as on SQLite (docs/SESSIONS.md, "Encryption at rest"):
    /// given to a store without it, every secret already stored is sealed first.
    public static func connect(url: String, encryption: StoreEncryption = .none, clock: any TelegramClock = WallClock(),
                               logger: Logger = Logger(label: "tgsm.store")) async throws(SessionStoreError) -> PostgresSessionStore
    {
        let database: PostgresDatabase
        do { database = try await PostgresDatabase.connect(url: url, logger: logger) } catch {
            throw .database(operation: "connect", reason: error.description, failure: .postgres)
        }
        do {
            return try await open(database: database, encryption: encryption, clock: clock, logger: logger, ownsDatabase: true)
        } catch {
            await database.close()
            throw error
        }
    }

    /// Connects to `url` for a view that only reads (`tgsm status`, `check`, `session list`): the
    /// schema is checked, not migrated; nothing is written (no phone-key secret is made, and a key
    /// given to a store without encryption does not turn it on); no flood-wait listener runs.
    /// A database with no store in it is `notAStore`; a schema behind or ahead of this tgsm's is a
    /// `database` error saying which.
    public static func connectForReading(url: String, encryption: StoreEncryption = .none, clock: any TelegramClock = WallClock(),
                                         logger: Logger = Logger(label: "tgsm.store")) async throws(SessionStoreError) -> PostgresSessionStore
    {
        let database: PostgresDatabase
        do { database = try await PostgresDatabase.connect(url: url, logger: logger) } catch {
            throw .database(operation: "connect", reason: error.description, failure: .postgres)
        }
        do throws(SessionStoreError) {
            let found: Bool
            do { found = try await PostgresMigrator.verify(database, prefix: "store.", migrations: PostgresStoreSchema.migrations) } catch {
                throw SessionStoreError.database(operation: "read the store", reason: error.description, failure: .postgres)
            }
            guard found else { throw SessionStoreError.notAStore(path: database.location, reason: "no tgsm store schema in it") }
            let secret: Data?
            do {
                secret = try await database.read { connection in
                    try await connection.rows("SELECT value FROM store_meta WHERE key = 'phone_key_secret'", logger: database.logger)
                        .first?.decode(Data.self)
                }
            } catch {
                throw SessionStoreError.database(operation: "read the store's metadata", reason: PostgresDatabase.describe(error), failure: .postgres)
            }
            // No secret yet: no process has used the store (one makes it at its first connection).
            let phoneSecret = secret ?? Data(repeating: 0, count: 32)
            guard phoneSecret.count == 32 else {
                throw SessionStoreError.corruptRecord(account: AccountID("-"), what: "phone-key secret in store_meta (\(phoneSecret.count) bytes, not 32)")
            }
            let header = try await readHeader(database)
            let sealer = try header.map { stored throws(SessionStoreError) in try EncryptionHeader.decode(stored).sealer(for: encryption, path: database.location) } ?? nil
            return PostgresSessionStore(database: database, phoneSecret: SymmetricKey(data: phoneSecret), sealer: sealer, encryptionHeader: header,
                                        encryption: encryption, clock: clock, logger: logger, ownsDatabase: true)
        } catch {
            await database.close()
            throw error
        }
    }

    /// Uses an open database (shared with a `PostgresJobQueue`, say); `close()` leaves it open.
    public static func open(database: PostgresDatabase, encryption: StoreEncryption = .none, clock: any TelegramClock = WallClock(),
                            logger: Logger = Logger(label: "tgsm.store")) async throws(SessionStoreError) -> PostgresSessionStore
    {
        try await open(database: database, encryption: encryption, clock: clock, logger: logger, ownsDatabase: false)
    }

    private static func open(database: PostgresDatabase, encryption: StoreEncryption, clock: any TelegramClock, logger: Logger,
                             ownsDatabase: Bool)
        async throws(SessionStoreError) -> PostgresSessionStore
    {
        do {
            try await PostgresMigrator.migrate(database, prefix: "store.", migrations: PostgresStoreSchema.migrations)
        } catch {
            throw .database(operation: "prepare the schema in \(database.location)", reason: error.description, failure: .postgres)
        }
        // The phone-key secret: made once by whichever process gets there first, then shared.
        let proposed = SymmetricKey(size: .bits256).withUnsafeBytes { Data($0) }
        let secret: Data
        do {
            secret = try await database.transaction { connection in
                try await connection.query("""
                    INSERT INTO store_meta(key, value) VALUES ('format', \(Data("tgsm.session-store".utf8))), ('phone_key_secret', \(proposed))
                    ON CONFLICT (key) DO NOTHING
                    """, logger: database.logger)
                for try await value in try await connection.query(
                    "SELECT value FROM store_meta WHERE key = 'phone_key_secret'", logger: database.logger).decode(Data.self)
                {
                    return value
                }
                throw SessionStoreError.database(operation: "read the phone-key secret", reason: "it is missing after being written", failure: .postgres)
            }
        } catch let error as SessionStoreError {
            throw error
        } catch {
            throw .database(operation: "read the store's metadata", reason: PostgresDatabase.describe(error), failure: .postgres)
        }
        guard secret.count == 32 else {
            throw .corruptRecord(account: AccountID("-"), what: "phone-key secret in store_meta (\(secret.count) bytes, not 32)")
        }
        let (sealer, header) = try await prepareEncryption(database, encryption: encryption, logger: logger)
        let store = PostgresSessionStore(database: database, phoneSecret: SymmetricKey(data: secret), sealer: sealer, encryptionHeader: header,
                                         encryption: encryption,
                                         clock: clock, logger: logger, ownsDatabase: ownsDatabase)
        await store.startFloodListener()
        return store
    }

    private init(database: PostgresDatabase, phoneSecret: SymmetricKey, sealer: SecretSealer?, encryptionHeader: String?, encryption: StoreEncryption,
                 clock: any TelegramClock, logger: Logger, ownsDatabase: Bool) {
        self.database = database
        self.phoneSecret = phoneSecret
        self.sealer = sealer
        self.encryptionHeader = encryptionHeader
        self.encryption = encryption
        self.clock = clock
        self.logger = logger
        self.ownsDatabase = ownsDatabase
    }

    /// Stops listening for flood-wait announcements, and closes the connections when the store opened them itself.
    public func close() async {
        let task = floodListener.withLock { task in
            defer { task = nil }
            return task
        }
        task?.cancel()
        await PostgresDatabase.stopListening(task)
        if ownsDatabase { await database.close() }
    }

    // MARK: Transactions

    @discardableResult
    func write<T: Sendable>(_ operation: String, _ body: @escaping @Sendable (PostgresConnection) async throws -> T) async throws(SessionStoreError) -> T {
        do {
            return try await database.transaction(body)
        } catch let error as SessionStoreError {
            throw error
        } catch {
            throw .database(operation: operation, reason: PostgresDatabase.describe(error), failure: .postgres)
        }
    }

    func read<T: Sendable>(_ operation: String, _ body: @escaping @Sendable (PostgresConnection) async throws -> T) async throws(SessionStoreError) -> T {
        do {
            return try await database.read(body)
        } catch let error as SessionStoreError {
            throw error
        } catch {
            throw .database(operation: operation, reason: PostgresDatabase.describe(error), failure: .postgres)
        }
    }

    /// A write to one account's rows: refused when `fence` is no longer the account's lease (checked in
    /// the same transaction), and the account row made first so the rows referring to it can be written.
    @discardableResult
    func accountWrite<T: Sendable>(
        _ operation: String, account: AccountID, fence: LeaseToken?, now: UnixTime,
        _ body: @escaping @Sendable (PostgresConnection) async throws -> T
    ) async throws(SessionStoreError) -> T {
        let logger = self.logger
        return try await write(operation) { connection in
            try await Self.checkFence(connection, account: account, fence: fence, logger: logger)
            try await Self.ensureAccount(connection, account, now: now, logger: logger)
            return try await body(connection)
        }
    }

    /// Rejects the write unless `fence` is the account's current, unreleased lease token. The lease
    /// row stays locked (`FOR SHARE`, or `FOR UPDATE` when the caller changes the lease itself)
    /// until the transaction ends, so no takeover can slip between this check and the write.
    static func checkFence(_ connection: PostgresConnection, account: AccountID, fence: LeaseToken?, logger: Logger,
                           forUpdate: Bool = false) async throws {
        guard let fence else { return }
        let query: PostgresQuery = forUpdate
            ? "SELECT \(unescaped: leaseColumns) FROM lease WHERE account = \(account.rawValue) FOR UPDATE"
            : "SELECT \(unescaped: leaseColumns) FROM lease WHERE account = \(account.rawValue) FOR SHARE"
        let found = try await leaseRow(connection, query, account: account, logger: logger)
        guard let found, found.lease.token == fence, !found.released else {
            throw SessionStoreError.fenced(account: account, token: fence, current: found.flatMap { $0.released ? nil : $0.lease })
        }
    }

    static func ensureAccount(_ connection: PostgresConnection, _ account: AccountID, now: UnixTime, logger: Logger) async throws {
        try await connection.query(
            "INSERT INTO account(id, created_at) VALUES (\(account.rawValue), \(now.seconds)) ON CONFLICT (id) DO NOTHING", logger: logger)
    }

    // MARK: Accounts

    public func accounts() async throws(SessionStoreError) -> [AccountID] {
        let logger = self.logger
        return try await read("list accounts") { connection in
            var accounts: [AccountID] = []
            for try await id in try await connection.query("SELECT id FROM account ORDER BY id", logger: logger).decode(String.self) {
                accounts.append(AccountID(id))
            }
            return accounts
        }
    }

    /// One row looked up: a standby asks at every lease try.
    public func isKnownAccount(_ account: AccountID) async throws(SessionStoreError) -> Bool {
        let logger = self.logger
        return try await read("look for account \(account)") { connection in
            for try await _ in try await connection.query("SELECT id FROM account WHERE id = \(account.rawValue)", logger: logger).decode(String.self) {
                return true
            }
            return false
        }
    }

    public func deleteAccount(_ account: AccountID) async throws(SessionStoreError) {
        let logger = self.logger
        try await write("delete account \(account)") { connection in
            let id = account.rawValue
            try await connection.query("DELETE FROM account WHERE id = \(id)", logger: logger)
            try await connection.query("DELETE FROM flood_wait WHERE account = \(id)", logger: logger)
            // Its send-code deadlines stay (Telegram counts code requests per number): see SQLiteSessionStore.deleteAccount.
            try await connection.query("DELETE FROM pending_login_code WHERE account = \(id)", logger: logger)
            try await connection.query("DELETE FROM future_auth_token WHERE account = \(id)", logger: logger)
            try await connection.query("DELETE FROM service_notification WHERE account = \(id)", logger: logger)
            try await connection.query("DELETE FROM account_freeze WHERE account = \(id)", logger: logger)
            try await connection.query("DELETE FROM live_report WHERE account = \(id)", logger: logger)
            try await connection.query("DELETE FROM lease WHERE account = \(id)", logger: logger)
            try await connection.query("DELETE FROM account_status WHERE account = \(id)", logger: logger)
            try await connection.query("DELETE FROM rate_bucket WHERE account = \(id)", logger: logger)
            for prefix in AlertKeys.prefixes(of: account) {
                try await connection.query("DELETE FROM alert_sent WHERE left(key, length(\(prefix))) = \(prefix)", logger: logger)
            }
        }
    }

    // MARK: Phone keys

    public func phoneKey(for phone: String) async throws(SessionStoreError) -> String {
        PhoneKey.digest(phone, secret: phoneSecret)
    }
}

extension PostgresConnection {
    /// Every row of `query` (small result sets only: the store's reads are per account).
    package func rows(_ query: PostgresQuery, logger: Logger) async throws -> [PostgresRow] {
        try await self.query(query, logger: logger).collect()
    }
}
