import Foundation
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
}
