import Foundation
import GRDB
import SessionManager

/// One message as the `history` job stores it.
public struct ArchivedMessage: Sendable, Hashable {
    public var id: Int32
    public var date: Int32
    /// The sender as a peer key ("user:1001"), nil for a channel post.
    public var from: String?
    public var text: String
    /// The TL serialization of the whole message (Api.Message), for fields not broken out.
    public var raw: Data

    public init(id: Int32, date: Int32, from: String?, text: String, raw: Data) {
        self.id = id
        self.date = date
        self.from = from
        self.text = text
        self.raw = raw
    }
}

/// A peer an account can address: what `resolve` finds and `history`/`send` use.
public struct ResolvedPeer: Sendable, Hashable, Codable {
    public enum PeerType: String, Sendable, Hashable, Codable {
        case user, chat, channel
    }

    public var type: PeerType
    public var id: Int64
    public var accessHash: Int64

    public init(type: PeerType, id: Int64, accessHash: Int64) {
        self.type = type
        self.id = id
        self.accessHash = accessHash
    }

    /// "channel:2001": the key messages are stored under.
    public var key: String { "\(type.rawValue):\(id)" }
}

/// Where the built-in jobs keep what they fetch. Engine-neutral like `JobQueue`.
public protocol MessageArchive: Sendable {
    /// The highest message id stored for (account, peer) below which nothing is missing, or 0.
    func cursor(account: AccountID, peer: String) async throws -> Int32
    /// Moves the cursor forward (never back).
    func advanceCursor(account: AccountID, peer: String, to id: Int32) async throws
    /// Stores messages; a message already stored is replaced (fetching twice stores once).
    func store(_ messages: [ArchivedMessage], account: AccountID, peer: String) async throws
    func messages(account: AccountID, peer: String) async throws -> [ArchivedMessage]
    func savePeer(_ peer: ResolvedPeer, username: String, account: AccountID) async throws
    func peer(username: String, account: AccountID) async throws -> ResolvedPeer?
}

/// The archive on SQLite, in the same database as the queue (migrations "jobs.archive.*").
public final class SQLiteMessageArchive: MessageArchive {
    public let writer: any DatabaseWriter

    public init(writer: any DatabaseWriter) throws {
        self.writer = writer
        var migrator = DatabaseMigrator()
        Self.registerMigrations(in: &migrator)
        try migrator.migrateAlongsideOtherProcesses(writer)
    }

    public static func registerMigrations(in migrator: inout DatabaseMigrator) {
        migrator.registerMigration("jobs.archive.v1") { db in
            try db.execute(sql: """
                CREATE TABLE messages (
                    account TEXT NOT NULL,
                    peer TEXT NOT NULL,
                    id INTEGER NOT NULL,
                    date INTEGER NOT NULL,
                    sender TEXT,
                    text TEXT NOT NULL,
                    raw BLOB NOT NULL,
                    PRIMARY KEY (account, peer, id)
                ) WITHOUT ROWID;
                CREATE TABLE message_cursors (
                    account TEXT NOT NULL,
                    peer TEXT NOT NULL,
                    complete_through INTEGER NOT NULL,
                    PRIMARY KEY (account, peer)
                ) WITHOUT ROWID;
                CREATE TABLE resolved_peers (
                    account TEXT NOT NULL,
                    username TEXT NOT NULL,
                    type TEXT NOT NULL,
                    id INTEGER NOT NULL,
                    access_hash INTEGER NOT NULL,
                    PRIMARY KEY (account, username)
                ) WITHOUT ROWID;
                """)
        }
    }

    public func cursor(account: AccountID, peer: String) async throws -> Int32 {
        try await writer.read { db in
            try Int32.fetchOne(
                db, sql: "SELECT complete_through FROM message_cursors WHERE account = ? AND peer = ?", arguments: [account.rawValue, peer]) ?? 0
        }
    }

    public func advanceCursor(account: AccountID, peer: String, to id: Int32) async throws {
        try await writer.write { db in
            try db.execute(
                sql: """
                    INSERT INTO message_cursors (account, peer, complete_through) VALUES (?, ?, ?)
                    ON CONFLICT (account, peer) DO UPDATE SET complete_through = MAX(complete_through, excluded.complete_through)
                    """,
                arguments: [account.rawValue, peer, id])
        }
    }

    public func store(_ messages: [ArchivedMessage], account: AccountID, peer: String) async throws {
        guard !messages.isEmpty else { return }
        try await writer.write { db in
            for message in messages {
                try db.execute(
                    sql: "INSERT OR REPLACE INTO messages (account, peer, id, date, sender, text, raw) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    arguments: [account.rawValue, peer, message.id, message.date, message.from, message.text, message.raw])
            }
        }
    }

    public func messages(account: AccountID, peer: String) async throws -> [ArchivedMessage] {
        try await writer.read { db in
            try Row.fetchAll(
                db, sql: "SELECT id, date, sender, text, raw FROM messages WHERE account = ? AND peer = ? ORDER BY id",
                arguments: [account.rawValue, peer]
            ).map { row in
                ArchivedMessage(
                    id: try row.decode(Int32.self, forColumn: "id"), date: try row.decode(Int32.self, forColumn: "date"),
                    from: try row.decode(String?.self, forColumn: "sender"), text: try row.decode(String.self, forColumn: "text"),
                    raw: try row.decode(Data.self, forColumn: "raw"))
            }
        }
    }

    public func savePeer(_ peer: ResolvedPeer, username: String, account: AccountID) async throws {
        try await writer.write { db in
            try db.execute(
                sql: "INSERT OR REPLACE INTO resolved_peers (account, username, type, id, access_hash) VALUES (?, ?, ?, ?, ?)",
                arguments: [account.rawValue, username.lowercased(), peer.type.rawValue, peer.id, peer.accessHash])
        }
    }

    public func peer(username: String, account: AccountID) async throws -> ResolvedPeer? {
        try await writer.read { db -> ResolvedPeer? in
            guard let row = try Row.fetchOne(
                db, sql: "SELECT type, id, access_hash FROM resolved_peers WHERE account = ? AND username = ?",
                arguments: [account.rawValue, username.lowercased()])
            else { return nil }
            guard let type = ResolvedPeer.PeerType(rawValue: try row.decode(String.self, forColumn: "type")) else { return nil }
            return ResolvedPeer(type: type, id: try row.decode(Int64.self, forColumn: "id"), accessHash: try row.decode(Int64.self, forColumn: "access_hash"))
        }
    }
}
