import Logging
import PostgresNIO

/// Versioned schema migrations on PostgreSQL. Each component (the session store, the job queue,
/// the message archive) names its own PREFIX + "vN" ("store.v1", "jobs.v1", "jobs.archive.v1") in
/// one table, `tgsm_migrations`. A migration,
/// once shipped, is never edited: changes are new migrations.
///
/// Safe when several processes start at once: the whole check-and-apply runs in one transaction
/// that first takes a transaction-scoped advisory lock, so the second process waits, then finds
/// everything applied. DDL is transactional in PostgreSQL: a failed migration leaves nothing behind.
struct PostgresMigration: Sendable {
    let id: String
    /// One statement each (the extended query protocol runs one statement per query).
    let statements: [String]
}

enum PostgresMigrator {
    /// The advisory lock every tgsm process takes while migrating (an arbitrary constant: "tgsm" + 1).
    static let lockKey: Int64 = 0x7467_736D_0000_0001

    /// For a command that only reads: the component's migrations are checked and none is applied,
    /// so a view run from another host, another tgsm version or a role without CREATE changes
    /// nothing. Returns false when the database holds none of the component's migrations (not a
    /// tgsm database, or not this component's); throws when it holds some but not all, or more.
    static func verify(_ database: PostgresDatabase, prefix: String, migrations: [PostgresMigration]) async throws(PostgresStoreError) -> Bool {
        let applied: Set<String>
        do {
            applied = try await database.read { connection in
                // to_regclass is NULL for a table that does not exist: an empty database is no error here.
                let table = try await connection.rows("SELECT to_regclass('tgsm_migrations') IS NOT NULL", logger: database.logger)
                guard try table.first?.decode(Bool.self) == true else { return [] }
                var ids: Set<String> = []
                for try await id in try await connection.query("SELECT id FROM tgsm_migrations", logger: database.logger).decode(String.self) {
                    ids.insert(id)
                }
                return ids
            }
        } catch {
            throw .unreachable(location: database.location, reason: "its schema could not be read: \(PostgresDatabase.describe(error))")
        }
        let family = applied.filter { $0.hasPrefix(prefix + "v") }
        guard !family.isEmpty else { return false }
        let known = Set(migrations.map(\.id))
        let unknown = family.filter { !known.contains($0) }.sorted()
        guard unknown.isEmpty else { throw .schemaFromTheFuture(unknown: unknown) }
        let missing = migrations.map(\.id).filter { !applied.contains($0) }
        guard missing.isEmpty else { throw .schemaBehind(location: database.location, missing: missing) }
        return true
    }

    static func migrate(_ database: PostgresDatabase, prefix: String, migrations: [PostgresMigration]) async throws(PostgresStoreError) {
        do {
            // Unbounded (cancellable): behind another process's migration, or DDL on a loaded server, the wait is long and healthy.
            try await database.transaction(bound: nil) { connection in
                try await connection.query("SELECT pg_advisory_xact_lock(\(lockKey))", logger: database.logger)
                try await connection.query("""
                    CREATE TABLE IF NOT EXISTS tgsm_migrations (
                        id text PRIMARY KEY,
                        applied_at timestamptz NOT NULL DEFAULT now()
                    )
                    """, logger: database.logger)
                var applied: Set<String> = []
                for try await id in try await connection.query("SELECT id FROM tgsm_migrations", logger: database.logger).decode(String.self) {
                    applied.insert(id)
                }
                let known = Set(migrations.map(\.id))
                // Ids are PREFIX + "v" + N: "jobs.v1" and "jobs.archive.v1" are different families.
                let unknown = applied.filter { $0.hasPrefix(prefix + "v") && !known.contains($0) }.sorted()
                guard unknown.isEmpty else { throw PostgresStoreError.schemaFromTheFuture(unknown: unknown) }
                for migration in migrations where !applied.contains(migration.id) {
                    for statement in migration.statements {
                        try await connection.query(PostgresQuery(unsafeSQL: statement), logger: database.logger)
                    }
                    try await connection.query("INSERT INTO tgsm_migrations(id) VALUES (\(migration.id))", logger: database.logger)
                    database.logger.notice("PostgreSQL migration applied", metadata: ["migration": "\(migration.id)"])
                }
            }
        } catch let error as PostgresStoreError {
            throw error
        } catch {
            throw .migration(id: prefix + "*", reason: PostgresDatabase.describe(error))
        }
    }
}
