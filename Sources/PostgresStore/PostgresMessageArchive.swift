import Foundation
import Logging
import PostgresNIO
import SessionManager
import Workers

/// The built-in jobs' archive (`MessageArchive`: fetched messages, history cursors, resolved
/// peers) on PostgreSQL, beside the queue (migrations "jobs.archive.*"), so a job finished on one
/// host continues from its cursor on another.
public final class PostgresMessageArchive: MessageArchive {
    public let database: PostgresDatabase
    private let logger: Logger

    /// Applies the archive's migrations on `database` (shared with the queue and the store).
    public static func open(database: PostgresDatabase, logger: Logger = Logger(label: "tgsm.jobs")) async throws(PostgresStoreError) -> PostgresMessageArchive {
        try await PostgresMigrator.migrate(database, prefix: "jobs.archive.", migrations: migrations)
        return PostgresMessageArchive(database: database, logger: logger)
    }

    private init(database: PostgresDatabase, logger: Logger) {
        self.database = database
        self.logger = logger
    }

    /// Failures say what failed (SQLSTATE, the server's message), as the queue's do: postgres-nio's
    /// own text is deliberately generic, and reached jobs' errors and dead letters as "PSQLError".
    private func read<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) async throws -> T) async throws(JobQueueError) -> T {
        try await database.jobsRead("the message archive", body)
    }

    @discardableResult
    private func write<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) async throws -> T) async throws(JobQueueError) -> T {
        try await database.jobsTransaction("the message archive", body)
    }

    static let migrations: [PostgresMigration] = [
        PostgresMigration(id: "jobs.archive.v1", statements: [
            """
            CREATE TABLE messages (
                account text NOT NULL, peer text NOT NULL, id bigint NOT NULL, date bigint NOT NULL,
                sender text, text text NOT NULL, raw bytea NOT NULL,
                PRIMARY KEY (account, peer, id)
            )
            """,
            "CREATE TABLE message_cursors (account text NOT NULL, peer text NOT NULL, complete_through bigint NOT NULL, PRIMARY KEY (account, peer))",
            """
            CREATE TABLE resolved_peers (
                account text NOT NULL, username text NOT NULL, type text NOT NULL, id bigint NOT NULL, access_hash bigint NOT NULL,
                PRIMARY KEY (account, username)
            )
            """,
        ]),
    ]

    public func cursor(account: AccountID, peer: String) async throws -> Int32 {
        let logger = self.logger
        return try await read { connection in
            guard let row = try await connection.rows(
                "SELECT complete_through FROM message_cursors WHERE account = \(account.rawValue) AND peer = \(peer)", logger: logger).first
            else { return 0 }
            return Int32(truncatingIfNeeded: try row.decode(Int64.self))
        }
    }

    public func advanceCursor(account: AccountID, peer: String, to id: Int32) async throws {
        let logger = self.logger
        try await write { connection in
            try await connection.query("""
                INSERT INTO message_cursors (account, peer, complete_through) VALUES (\(account.rawValue), \(peer), \(Int64(id)))
                ON CONFLICT (account, peer) DO UPDATE SET complete_through = GREATEST(message_cursors.complete_through, excluded.complete_through)
                """, logger: logger)
        }
    }

    public func store(_ messages: [ArchivedMessage], account: AccountID, peer: String) async throws {
        guard !messages.isEmpty else { return }
        let logger = self.logger
        try await write { connection in
            for message in messages {
                try await connection.query("""
                    INSERT INTO messages (account, peer, id, date, sender, text, raw)
                    VALUES (\(account.rawValue), \(peer), \(Int64(message.id)), \(Int64(message.date)), \(message.from), \(message.text), \(message.raw))
                    ON CONFLICT (account, peer, id) DO UPDATE SET date = excluded.date, sender = excluded.sender, text = excluded.text, raw = excluded.raw
                    """, logger: logger)
            }
        }
    }

    public func messages(account: AccountID, peer: String) async throws -> [ArchivedMessage] {
        let logger = self.logger
        return try await read { connection in
            try await connection.rows(
                "SELECT id, date, sender, text, raw FROM messages WHERE account = \(account.rawValue) AND peer = \(peer) ORDER BY id", logger: logger
            ).map { row in
                let (id, date, sender, text, raw) = try row.decode((Int64, Int64, String?, String, Data).self)
                return ArchivedMessage(id: Int32(truncatingIfNeeded: id), date: Int32(truncatingIfNeeded: date), from: sender, text: text, raw: raw)
            }
        }
    }

    public func savePeer(_ peer: ResolvedPeer, username: String, account: AccountID) async throws {
        let logger = self.logger
        try await write { connection in
            try await connection.query("""
                INSERT INTO resolved_peers (account, username, type, id, access_hash)
                VALUES (\(account.rawValue), \(username.lowercased()), \(peer.type.rawValue), \(peer.id), \(peer.accessHash))
                ON CONFLICT (account, username) DO UPDATE SET type = excluded.type, id = excluded.id, access_hash = excluded.access_hash
                """, logger: logger)
        }
    }

    public func peer(username: String, account: AccountID) async throws -> ResolvedPeer? {
        let logger = self.logger
        return try await read { connection -> ResolvedPeer? in
            guard let row = try await connection.rows(
                "SELECT type, id, access_hash FROM resolved_peers WHERE account = \(account.rawValue) AND username = \(username.lowercased())",
                logger: logger).first
            else { return nil }
            let (typeName, id, hash) = try row.decode((String, Int64, Int64).self)
            guard let type = ResolvedPeer.PeerType(rawValue: typeName) else { return nil }
            return ResolvedPeer(type: type, id: id, accessHash: hash)
        }
    }
}
