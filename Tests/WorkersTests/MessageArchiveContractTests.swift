import Foundation
import PostgresStore
import SessionManager
import StoreTestSupport
import Testing
import Workers

/// The `MessageArchive` contract on every engine.
@Suite struct MessageArchiveContractTests {
    @Test(arguments: StoreEngine.allCases) func messagesAreStoredOnceCursorsOnlyMoveOnAndPeersIgnoreCase(_ engine: StoreEngine) async throws {
        try await EngineQueue.with(engine) { database in
            let archive = try await database.archive()
            #expect(try await archive.cursor(account: "alice", peer: "channel:1") == 0)
            let first = ArchivedMessage(id: 10, date: 100, from: "user:7", text: "hi", raw: Data([1, 2]))
            let second = ArchivedMessage(id: 11, date: 101, from: nil, text: "post", raw: Data([3]))
            try await archive.store([second, first], account: "alice", peer: "channel:1")
            var edited = first
            edited.text = "hi (edited)"
            try await archive.store([edited], account: "alice", peer: "channel:1")
            #expect(try await archive.messages(account: "alice", peer: "channel:1") == [edited, second])
            #expect(try await archive.messages(account: "bob", peer: "channel:1") == [])
            try await archive.advanceCursor(account: "alice", peer: "channel:1", to: 11)
            try await archive.advanceCursor(account: "alice", peer: "channel:1", to: 5)
            #expect(try await archive.cursor(account: "alice", peer: "channel:1") == 11)
            let peer = ResolvedPeer(type: .channel, id: 2001, accessHash: -5)
            try await archive.savePeer(peer, username: "TestNews", account: "alice")
            #expect(try await archive.peer(username: "testnews", account: "alice") == peer)
            #expect(try await archive.peer(username: "testnews", account: "bob") == nil)
        }
    }

    /// A failure of the PostgreSQL archive says what failed (SQLSTATE, the server's message), as
    /// the queue's do: before, jobs' errors and dead letters held postgres-nio's generic text.
    @Test func aPostgreSQLArchiveFailureSaysWhatFailed() async throws {
        guard StoreEngine.allCases.contains(.postgres) else { return }
        try await EngineQueue.with(.postgres) { database in
            let archive = try await database.archive()
            let url = try #require(database.postgresURL)
            let admin = try await PostgresDatabase.connect(url: url, logger: quietLogger)
            try await admin.execute(unsafeSQL: "DROP TABLE resolved_peers")
            await admin.close()
            do {
                _ = try await archive.peer(username: "testnews", account: "alice")
                Issue.record("a missing table was read")
            } catch {
                let text = "\(error)"
                #expect(text.contains("42P01") && text.contains("resolved_peers") && text.contains("message archive"), "\(text)")
            }
        }
    }
}
