import Foundation
import MTProto
import PostgresStore
import SessionManager
import Workers

/// Opening the store and the queue for a command, with the typed errors turned into a person's
/// message and an exit code.
enum StoreAccess {
    /// Opens the store. Without `creating`, a directory holding neither a store nor a backup is
    /// `notFound` (a read-only command must not leave an empty store behind a typo'd path).
    /// Opening restores the newest verified backup when the file is damaged: that is reported on
    /// stderr, and the command goes on with the restored store.
    static func open(_ global: GlobalOptions, creating: Bool) throws(CLIFailure) -> SQLiteSessionStore {
        let directory = try global.storeDirectory()
        let options = global.storeOptions()
        if !creating, !FileManager.default.fileExists(atPath: directory + "/" + options.fileName),
           SQLiteSessionStore.backupsOnDisk(directory: directory).isEmpty {
            throw CLIFailure(.notFound, "there is no session store in \(directory) (no \(options.fileName), no backups). "
                + "Log an account in (`tgsm auth --account NAME`) or import a session (`tgsm session import --account NAME FILE`) to start one, or point --store or TGSM_HOME at the store directory.")
        }
        let store: SQLiteSessionStore
        let started = global.now()
        do {
            store = try SQLiteSessionStore.open(directory: directory, options: options)
        } catch {
            // The recovery of a damaged file runs before the key is checked: a refusal for the key
            // must not hide that the file was replaced meanwhile (its notice comes after a good open).
            switch error {
            case .encryptionKeyRequired, .wrongEncryptionKey, .keyFile:
                if let moved = recentlySetAside(in: directory, since: started) {
                    Terminal.standard.warning("the store file was damaged and was restored from its newest verified backup before the key was "
                        + "checked; the damaged file was moved to \(moved) (kept for inspection)")
                }
            default: break
            }
            throw CLIFailure(error)
        }
        if case .restored(let backup, let reason, let movedTo) = store.outcome {
            Terminal.standard.warning("the store \(store.path) was unusable (\(reason)); it was restored from the verified backup \(backup)"
                + (movedTo.map { "; the old file was moved to \($0) (kept for inspection)" } ?? "")
                + ". Changes made after that backup are lost; run `tgsm check` to see the state.")
        }
        return store
    }

    /// A `.damaged-MS` file the store's recovery made in `directory` since `time` (its name carries
    /// the moment in milliseconds; a rename keeps the file's own times).
    private static func recentlySetAside(in directory: String, since time: UnixTime) -> String? {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return names.first { name in
            guard let range = name.range(of: ".damaged-"), let stamp = Int64(name[range.upperBound...]) else { return false }
            return Double(stamp) / 1000 >= time.seconds - 1
        }.map { directory + "/" + $0 }
    }

    /// Opens the store for a command that only reads it: read-only and without checks or writes
    /// when the store is healthy and current (fast, no fsync), else as `open` does (restoring a
    /// damaged file from its backup, reporting it, upgrading an old schema).
    static func openForReading(_ global: GlobalOptions) throws(CLIFailure) -> SQLiteSessionStore {
        let directory = try global.storeDirectory()
        if let store = SQLiteSessionStore.openForReading(directory: directory, options: global.storeOptions()) { return store }
        return try open(global, creating: false)
    }

    /// The store an operator's read-only view reads (`status`, `check`, `session list`), on either
    /// engine: the SQLite store as `openForReading` opens it, or the PostgreSQL database `--store`
    /// names, checked but never migrated or written (`PostgresSessionStore.connectForReading`).
    /// `location` is the directory, or the URL without its password.
    static func operatorStoreForReading(_ global: GlobalOptions) async throws(CLIFailure) -> (store: any OperatorReadableStore, location: String, close: @Sendable () async -> Void) {
        if let url = global.postgresURL {
            do {
                let store = try await PostgresSessionStore.connectForReading(url: url, encryption: global.storeEncryption(), clock: global.clock(), logger: global.storeLogger())
                return (store, store.database.location, { await store.close() })
            } catch {
                if case .notAStore(let location, _) = error {
                    throw CLIFailure(.notFound, "the PostgreSQL database \(location) holds no tgsm store; nothing was changed in it. Check that "
                        + "--store (or $TGSM_STORE, the config file's \"store\") names the cluster's database; a store is started there by "
                        + "`tgsm session import`, `tgsm auth` or `tgsm run`.")
                }
                throw CLIFailure(error)
            }
        }
        let store = try openForReading(global)
        return (store, store.directory, { try? store.close() })
    }

    /// Runs `body` on the store `operatorStoreForReading` opens, and closes it however `body` ends.
    static func withOperatorStoreForReading<T>(
        _ global: GlobalOptions, _ body: (any OperatorReadableStore, _ location: String) async throws -> T
    ) async throws -> T {
        try await using(operatorStoreForReading(global), body)
    }

    /// Runs `body` on an opened store, and closes it however `body` ends.
    private static func using<Store, T>(
        _ opened: (store: Store, location: String, close: @Sendable () async -> Void), _ body: (Store, _ location: String) async throws -> T
    ) async throws -> T {
        do {
            let result = try await body(opened.store, opened.location)
            await opened.close()
            return result
        } catch {
            await opened.close()
            throw error
        }
    }

    /// The store an operator's command that also writes (`recover`: leases, marks) uses, on either
    /// engine: the SQLite store as `open` opens it, or the PostgreSQL database, migrated on connect.
    static func operatorStore(_ global: GlobalOptions) async throws(CLIFailure) -> (store: any OperatorReadableStore, location: String, close: @Sendable () async -> Void) {
        if let url = global.postgresURL {
            let store = try await postgresStore(url, global)
            return (store, store.database.location, { await store.close() })
        }
        let store = try open(global, creating: false)
        return (store, store.directory, { try? store.close() })
    }

    private static func postgresStore(_ url: String, _ global: GlobalOptions) async throws(CLIFailure) -> PostgresSessionStore {
        do {
            return try await PostgresSessionStore.connect(url: url, encryption: global.storeEncryption(), clock: global.clock(), logger: global.storeLogger())
        } catch {
            throw CLIFailure(error)
        }
    }

    /// The queue for a command that only reads it (see `openForReading`); nil without a queue file.
    /// On PostgreSQL the queue's schema is checked, not migrated; nil when the database has none yet.
    static func queueForReading(_ global: GlobalOptions, sharing store: (any OperatorReadableStore)? = nil) async throws(CLIFailure) -> (any JobQueue, close: @Sendable () async -> Void)? {
        if let store = store as? PostgresSessionStore {
            // The store's pool serves the queue too: one set of connections for the command.
            do {
                guard let queue = try await PostgresJobQueue.openForReading(database: store.database, logger: global.storeLogger()) else { return nil }
                return (queue, { await queue.close() })
            } catch {
                throw CLIFailure(error)
            }
        }
        if let url = global.postgresURL {
            do {
                guard let queue = try await PostgresJobQueue.connectForReading(url: url, logger: global.storeLogger()) else { return nil }
                return (queue, { await queue.close() })
            } catch {
                throw CLIFailure(error)
            }
        }
        if let queue = SQLiteJobQueue.openForReading(path: try global.jobsPath()) {
            return (queue, { try? queue.writer.close() })
        }
        return try await self.queue(global, creating: false)
    }

    /// Opens the store through its engine-neutral contract: the SQLite store as `open` does, or the
    /// PostgreSQL database `--store` names (migrated on connect). `close` ends its connections.
    static func sessionStore(_ global: GlobalOptions, creating: Bool) async throws(CLIFailure) -> (store: any SessionStore, location: String, close: @Sendable () async -> Void) {
        if let url = global.postgresURL {
            let store = try await postgresStore(url, global)
            return (store, store.database.location, { await store.close() })
        }
        let store = try open(global, creating: creating)
        return (store, store.path, { try? store.close() })
    }

    /// Runs `body` on the store `sessionStore` opens, and closes it however `body` ends.
    static func withSessionStore<T>(
        _ global: GlobalOptions, creating: Bool, _ body: (any SessionStore, _ location: String) async throws -> T
    ) async throws -> T {
        try await using(sessionStore(global, creating: creating), body)
    }

    /// `sessionStore` for a command that only reads: a healthy, current SQLite store is opened
    /// read-only (no write, works on a read-only filesystem); otherwise as `sessionStore` opens it.
    static func sessionStoreForReading(_ global: GlobalOptions) async throws(CLIFailure) -> (store: any SessionStore, location: String, close: @Sendable () async -> Void) {
        if global.postgresURL == nil, let directory = try? global.storeDirectory(),
           let store = SQLiteSessionStore.openForReading(directory: directory, options: global.storeOptions()) {
            return (store, store.path, { try? store.close() })
        }
        return try await sessionStore(global, creating: false)
    }

    /// The failure for a store directory that does not exist (a reading command never creates one).
    static func missingDirectory(_ directory: String) -> CLIFailure {
        CLIFailure(.notFound, "there is no store directory \(directory); check --store (or TGSM_STORE, TGSM_HOME, the config file's \"store\")")
    }

    /// Opens the job queue: beside the SQLite store, or in the PostgreSQL database `--store` names.
    /// Without `creating`, a missing SQLite queue file is nil. `close` ends its connections.
    static func queue(_ global: GlobalOptions, creating: Bool) async throws(CLIFailure) -> (any JobQueue, close: @Sendable () async -> Void)? {
        if let url = global.postgresURL {
            do {
                let queue = try await PostgresJobQueue.connect(url: url, logger: global.storeLogger())
                return (queue, { await queue.close() })
            } catch {
                throw CLIFailure(error)
            }
        }
        guard let queue = try sqliteQueue(global, creating: creating) else { return nil }
        return (queue, { try? queue.writer.close() })
    }

    static func sqliteQueue(_ global: GlobalOptions, creating: Bool) throws(CLIFailure) -> SQLiteJobQueue? {
        let path = try global.jobsPath()
        if !FileManager.default.fileExists(atPath: path) {
            guard creating else {
                // No queue yet is "no jobs"; no store directory at all is a mistyped --store.
                let directory = try global.storeDirectory()
                guard FileManager.default.fileExists(atPath: directory) else { throw missingDirectory(directory) }
                return nil
            }
            let directory = try global.storeDirectory()
            do {
                try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            } catch {
                throw CLIFailure(.failure, "cannot create the store directory \(directory): \(error.localizedDescription); check the path and permissions")
            }
        }
        do { return try SQLiteJobQueue.open(path: path) } catch { throw CLIFailure(error) }
    }

    /// The first account a live process holds, with its lease: what `session restore` and `session
    /// rekey` refuse to run under (each says why). Nil when none is held.
    static func liveLease(in store: any SessionStore, now: UnixTime) async throws(CLIFailure) -> (AccountID, Lease)? {
        func failure(_ error: any Error) -> CLIFailure {
            (error as? SessionStoreError).map(CLIFailure.init) ?? CLIFailure(.failure, "the store's leases could not be read: \(error)")
        }
        let accounts: [AccountID]
        do { accounts = try await store.accounts() } catch { throw failure(error) }
        for account in accounts {
            let lease: Lease?
            do { lease = try await store.currentLease(account: account) } catch { throw failure(error) }
            if let lease, LeaseView(lease, now: now).isLive { return (account, lease) }
        }
        return nil
    }
}
