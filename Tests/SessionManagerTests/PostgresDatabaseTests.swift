import Foundation
import Logging
import PostgresNIO
@testable import PostgresStore
import SessionManager
import StoreTestSupport
import Synchronization
import Testing

/// The connection layer under the PostgreSQL store and queue: what a transaction or a read does
/// when the server ends its connection under it. The server ends one itself when this process
/// stalls inside a transaction for `idleInTransactionTimeout`; here another session ends it with
/// `pg_terminate_backend` at a chosen point, which is the same to the client and needs no waiting.
@Suite(.timeLimit(.minutes(2))) struct PostgresDatabaseTests {
    let quiet = Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }

    /// A transaction whose connection ended before its COMMIT runs again from the start on another
    /// connection and commits once. postgres-nio never answers a query written to a closed
    /// connection: without the watch on the connection's end the first attempt would wait out the
    /// 30 s bound and fail with `BoundExceeded` instead of being retried.
    @Test func aTransactionWhoseConnectionEndedRunsAgainOnAnotherAndCommitsOnce() async throws {
        try await withScratch { database, admin in
            try await database.transaction { try await $0.query("CREATE TABLE item(id bigint PRIMARY KEY)", logger: quiet) }
            let backends = Mutex<[Int32]>([])
            try await database.transaction { connection in
                let backend = try await Self.backendPID(connection, logger: quiet)
                let attempt = backends.withLock { $0.append(backend); return $0.count }
                try await connection.query("INSERT INTO item(id) VALUES (1)", logger: quiet)
                if attempt == 1 { try await Self.terminate(backend, admin: admin, logger: quiet) }
                try await connection.query("INSERT INTO item(id) VALUES (2)", logger: quiet)
            }
            let seen = backends.withLock { $0 }
            #expect(seen.count == 2, "one attempt on the ended connection, one that committed")
            #expect(Set(seen).count == 2, "the second attempt ran on another connection")
            let rows = try await database.read { connection in
                try await connection.query("SELECT id FROM item ORDER BY id", logger: quiet).collect().map { try $0.decode(Int64.self) }
            }
            #expect(rows == [1, 2], "the first attempt rolled back with its connection; the second committed both rows once")
        }
    }

    /// A read whose connection ended runs again on another one.
    @Test func aReadWhoseConnectionEndedRunsAgain() async throws {
        try await withScratch { database, admin in
            let attempts = Mutex(0)
            let answer = try await database.read { connection in
                let backend = try await Self.backendPID(connection, logger: quiet)
                if attempts.withLock({ $0 += 1; return $0 }) == 1 { try await Self.terminate(backend, admin: admin, logger: quiet) }
                return try await connection.query("SELECT 42::bigint", logger: quiet).collect().first?.decode(Int64.self)
            }
            #expect(answer == 42)
            #expect(attempts.withLock { $0 } == 2)
        }
    }

    /// A transaction whose connection keeps ending gives up after five attempts with an error that
    /// says what happened and what to check, and commits nothing.
    @Test func aConnectionThatKeepsEndingIsReportedAfterFiveAttempts() async throws {
        try await withScratch { database, admin in
            try await database.transaction { try await $0.query("CREATE TABLE item(id bigint PRIMARY KEY)", logger: quiet) }
            let attempts = Mutex(0)
            let error = await #expect(throws: PostgresConnectionEnded.self) {
                try await database.transaction { connection in
                    attempts.withLock { $0 += 1 }
                    try await connection.query("INSERT INTO item(id) VALUES (1)", logger: quiet)
                    try await Self.terminate(try await Self.backendPID(connection, logger: quiet), admin: admin, logger: quiet)
                    try await connection.query("INSERT INTO item(id) VALUES (2)", logger: quiet)
                }
            }
            #expect(attempts.withLock { $0 } == 5)
            #expect(error?.description.contains("ended the connection in use five times in a row") == true)
            #expect(error?.description.contains("check the server's log") == true)
            let count = try await database.read { connection in
                try await connection.query("SELECT count(*) FROM item", logger: quiet).collect().first?.decode(Int64.self)
            }
            #expect(count == 0)
        }
    }

    // MARK: Helpers

    /// A scratch database, a pool on it, and a second pool that ends the first one's connections.
    /// A login the server refuses, a database it lacks, a port nobody listens on: said at once in
    /// the server's (or the system's) words. Before: the pool retried in silence and the first query
    /// ran into its 30 s bound, "no answer within 30.0 s".
    /// A shutdown's cancelled write read as "the job queue's database failed (CancellationError())".
    @Test func aCancelledOperationIsNotCalledADatabaseFailure() {
        #expect(PostgresDatabase.describe(CancellationError()) == "cancelled before it finished (the process is stopping, or stopped serving the account)")
    }

    /// postgres-nio's pool error (its type is not public; one of the same name stands in) reads as
    /// the server being out of reach, not as a nest of module names on /health.
    @Test func thePoolGivingUpOnAServerSaysTheServerIsOutOfReach() {
        struct ConnectionPoolError: Error, CustomStringConvertible {
            var description: String { "ConnectionPoolError(base: _ConnectionPoolModule.ConnectionPoolError.Base.connectionCreationCircuitBreakerTripped)" }
        }
        let text = PostgresDatabase.describe(ConnectionPoolError())
        #expect(text.hasPrefix("no connection to the PostgreSQL server could be made") && text.contains("connectionCreationCircuitBreakerTripped")
                && text.contains("check that the server runs"), "\(text)")
    }

    /// The server's own reason, not the pool's: the pool retries a refused login quietly, so without
    /// the probe connection the error was its first query's "no answer" after the 30 s bound. The
    /// reason in the error is the proof; a clock is not (a loaded CI host once took 25 s to say it).
    @Test func aServerThatRefusesTheLoginSaysWhyAtOnce() async throws {
        let server = try ScratchPostgresDatabase.serverURL()
        var wrongUser = try #require(URLComponents(string: server))
        wrongUser.user = "nosuchrole"
        var wrongDatabase = try #require(URLComponents(string: server))
        wrongDatabase.path = "/nosuchdatabase"
        // The scratch server has no TLS; the guide's URLs ask for it.
        var tls = try #require(URLComponents(string: server))
        tls.queryItems = (tls.queryItems ?? []).filter { $0.name != "sslmode" } + [URLQueryItem(name: "sslmode", value: "require")]
        let cases = [(try #require(wrongUser.string), "role \"nosuchrole\" does not exist"),
                     (try #require(wrongDatabase.string), "database \"nosuchdatabase\" does not exist"),
                     (try #require(tls.string), "the server does not offer TLS, which the URL asks for (sslmode=require)"),
                     ("postgres://tgsm@127.0.0.1:1/x?sslmode=disable", "cannot connect: Connection refused")]
        for (url, cause) in cases {
            do {
                let database = try await PostgresDatabase.connect(url: url, logger: quiet)
                await database.close()
                Issue.record("\(url) connected")
            } catch {
                #expect(error.description.contains(cause), "\(error)")
            }
        }
    }

    private func withScratch(_ body: (PostgresStore.PostgresDatabase, PostgresStore.PostgresDatabase) async throws -> Void) async throws {
        let scratch = try await ScratchPostgresDatabase.create()
        let database = try await PostgresDatabase.connect(url: scratch.url, logger: quiet)
        let admin = try await PostgresDatabase.connect(url: scratch.url, logger: quiet)
        do { try await body(database, admin) } catch {
            await database.close()
            await admin.close()
            await scratch.drop()
            throw error
        }
        await database.close()
        await admin.close()
        await scratch.drop()
    }

    private static func backendPID(_ connection: PostgresConnection, logger: Logger) async throws -> Int32 {
        try #require(try await connection.query("SELECT pg_backend_pid()", logger: logger).collect().first?.decode(Int32.self))
    }

    /// Ends the session of `backend` and waits until it is gone from the server.
    private static func terminate(_ backend: Int32, admin: PostgresStore.PostgresDatabase, logger: Logger) async throws {
        try await admin.read { connection in
            _ = try await connection.query("SELECT pg_terminate_backend(\(backend), 10000)", logger: logger).collect()
        }
    }
}
