import Foundation
import Logging
import MTProto
import PostgresStore
import SessionManager
import StoreTestSupport
import Testing

/// What only the PostgreSQL store does: versioned migrations shared by many processes, and rate
/// buckets shared by the cluster. The contract it shares with SQLite is in SessionStoreContractTests.
@Suite struct PostgresSessionStoreTests {
    let quiet = Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }

    @Test func migrationsAreRecordedOnceAndASchemaFromANewerVersionIsRefused() async throws {
        try await EngineStore.with(.postgres) { place in
            let store = try #require(try await place.open() as? PostgresSessionStore)
            try await store.shutDown()
            let again = try #require(try await place.open() as? PostgresSessionStore)
            let admin = try await PostgresDatabase.connect(url: try #require(place.postgresURL), logger: quiet)
            try await admin.execute(unsafeSQL: "INSERT INTO tgsm_migrations(id) VALUES ('store.v99')")
            await admin.close()
            await #expect(throws: SessionStoreError.self) { _ = try await place.open() }
            do { _ = try await place.open() } catch let error as SessionStoreError {
                #expect(error.description.contains("store.v99") && error.description.contains("newer tgsm"))
            }
            try await again.shutDown()
        }
    }

    /// Two processes (two stores on one database) draw from the same buckets: together they get
    /// the account's burst, not one burst each.
    @Test func rateBucketsAreSharedByEveryProcess() async throws {
        try await EngineStore.with(.postgres) { place in
            let first = try #require(try await place.open() as? PostgresSessionStore)
            let second = try #require(try await place.open() as? PostgresSessionStore)
            let clock = ManualClock()
            let policy = RateGatePolicy(maximumInlineWait: 0)
            let gates = [RateGate(account: "alice", policy: policy, clock: clock, logger: quiet, shared: first),
                         RateGate(account: "alice", policy: policy, clock: clock, logger: quiet, shared: second)]
            let now = clock.now()
            // The send burst is 5 per account and 3 per chat.
            var decisions: [RateGate.Decision] = []
            for index in 0..<6 {
                decisions.append(await gates[index % 2].reserveShared(category: .send, peer: "user:\(index)", now: now))
            }
            #expect(decisions.prefix(5).allSatisfy { $0 == .go(after: 0) })
            #expect(decisions.last == .refuse(until: now + 3), "the sixth send of the account waits for a refill, whichever process asks")
            // Per chat too: a third process asking for chat user:0 later sees its bucket as the others left it.
            #expect(await gates[1].reserveShared(category: .send, peer: "user:0", now: now + 3) == .go(after: 0))
            #expect(await gates[0].reserveShared(category: .send, peer: "user:0", now: now + 3) == .refuse(until: now + 6))
            try await first.shutDown()
            try await second.shutDown()
        }
    }
}
