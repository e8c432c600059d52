import Foundation
import Logging
import MTProtoNIO
import NIOCore
import PostgresNIO
import SessionManager
import Synchronization

/// One PostgreSQL database shared by the session store and the job queue of many processes on
/// many hosts: a postgres-nio connection pool (run by a task of its own), transactions that retry
/// when PostgreSQL reports a deadlock or a serialization failure, and errors that never repeat a
/// query's bound values (they may be auth keys).
public final class PostgresDatabase: Sendable {
    let client: PostgresClient
    let logger: Logger
    /// Where the pool connects, without the password (for messages).
    public let location: String
    private let runner: Mutex<Task<Void, Never>?>
    private let endWatch = ConnectionEndWatch()

    /// Connects to `url` (`postgres://user:password@host:port/database?sslmode=disable|prefer|require`)
    /// and checks that the server answers before returning.
    public static func connect(url: String, logger: Logger = Logger(label: "tgsm.postgres"), maximumConnections: Int = 8)
        async throws(PostgresStoreError) -> PostgresDatabase
    {
        let parsed = try PostgresURL(url)
        // One connection of its own first: the pool retries a refused login or a missing database
        // quietly, so its first query only ran into its 30 s bound ("no answer"), while the
        // server had said at once what is wrong (role "x" does not exist, connection refused).
        do {
            let probe = parsed.probeConfiguration
            let connection = try await withBound(seconds: 15, "PostgreSQL at \(parsed.redacted): connecting") {
                try await PostgresConnection.connect(configuration: probe, id: 0, logger: logger)
            }
            try? await connection.close()
        } catch {
            throw .unreachable(location: parsed.redacted, reason: Self.describe(error))
        }
        var configuration = parsed.configuration
        configuration.options.maximumConnections = max(2, maximumConnections)
        configuration.options.connectTimeout = .seconds(10)
        // A process frozen (SIGSTOP, a stalled VM) or cut off inside a transaction keeps its row
        // and advisory locks while the server waits for its next statement: a fenced write holds
        // the account's lease row FOR SHARE, a claim the account's advisory lock, so the process
        // taking the account over would block on them for as long as the freeze lasts, its lease
        // long expired. The server ends a session idle inside a transaction this long (our
        // transactions take milliseconds between statements), which releases the locks.
        configuration.options.additionalStartupParameters.append(
            ("idle_in_transaction_session_timeout", "\(Int(idleInTransactionTimeout * 1000))"))
        let database = PostgresDatabase(client: PostgresClient(configuration: configuration, backgroundLogger: logger),
                                        logger: logger, location: parsed.redacted)
        do {
            // Bounded: a server that accepts the connection but never answers (stopped, overloaded)
            // is reported, not waited for.
            let client = database.client
            try await withBound(seconds: operationTimeout, "PostgreSQL at \(parsed.redacted): the first query") {
                _ = try await client.query("SELECT 1", logger: logger)
            }
        } catch {
            await database.close()
            throw .unreachable(location: parsed.redacted, reason: Self.describe(error))
        }
        return database
    }

    /// Seconds the server lets a connection of ours sit idle inside a transaction before it ends
    /// the session (`idle_in_transaction_session_timeout`): the longest a frozen process can hold
    /// locks that a takeover needs.
    public static let idleInTransactionTimeout = 5.0

    private init(client: PostgresClient, logger: Logger, location: String) {
        self.client = client
        self.logger = logger
        self.location = location
        runner = Mutex(nil)
        let task = Task { [client] in await client.run() }
        runner.withLock { $0 = task }
    }

    /// Closes every connection (a LISTEN included); the database must not be used afterwards.
    public func close() async {
        let task = runner.withLock { task in
            defer { task = nil }
            return task
        }
        task?.cancel()
        // Bounded: connections left behind by queries that never ended (see `guarded`) may keep
        // the pool from finishing; the process is closing them anyway.
        if let task { _ = try? await withBound(seconds: Self.closeTimeout, "closing PostgreSQL", cancellable: false) { await task.value } }
    }

    /// Runs `body` in one transaction (READ COMMITTED; callers lock what they read with FOR
    /// UPDATE / FOR SHARE or an advisory lock). A deadlock or serialization failure is retried
    /// from the start, up to 5 times; any other error rolls back and is rethrown as it is.
    ///
    /// `bound` limits each attempt, the wait for one of the pool's connections included (nil for
    /// work that may rightly wait long: a migration behind another process's); the caller's
    /// cancellation ends the wait at any point. A transaction given up on never commits unless its
    /// COMMIT was already sent, and then the error (`PostgresOutcomeUnknown`) says so.
    @discardableResult
    package func transaction<T: Sendable>(bound: Double? = PostgresDatabase.operationTimeout,
                                  _ body: @escaping @Sendable (PostgresConnection) async throws -> T) async throws -> T {
        let client = self.client, logger = self.logger, what = "PostgreSQL at \(location): a transaction"
        var attempt = 0
        while true {
            attempt += 1
            let progress = TransactionProgress()
            do {
                return try await withBound(seconds: bound, what) {
                    try await client.withConnection { connection in
                        try await self.guarded(connection, progress: progress) {
                            try await connection.query("BEGIN", logger: logger)
                            let result: T
                            do {
                                result = try await body(connection)
                            } catch {
                                // A failed rollback leaves the connection broken; the pool then drops it.
                                _ = try? await connection.query("ROLLBACK", logger: logger)
                                throw error
                            }
                            guard progress.beginCommit() else {
                                _ = try? await connection.query("ROLLBACK", logger: logger)
                                throw CancellationError()
                            }
                            try await connection.query("COMMIT", logger: logger)
                            return result
                        }
                    }
                }
            } catch let exceeded as BoundExceeded {
                if progress.abandon() { throw PostgresOutcomeUnknown(what: exceeded.what, seconds: exceeded.seconds) }
                throw exceeded
            } catch let ended as PostgresConnectionEnded {
                // Before its COMMIT was sent the server rolled the transaction back with the
                // connection: it is run again from the start on another one.
                if progress.abandon() { throw PostgresOutcomeUnknown(what: "\(what): the server ended the connection", seconds: nil) }
                guard attempt < 5 else { throw ended }
                logger.debug("transaction retried", metadata: ["reason": "connection ended", "attempt": "\(attempt)"])
                try await Self.pauseBeforeAnotherConnection(attempt)
                continue
            } catch let error as PSQLError where attempt < 5 && Self.isRetryable(error) {
                logger.debug("transaction retried", metadata: ["sqlstate": "\(error.serverInfo?[.sqlState] ?? "-")", "attempt": "\(attempt)"])
                continue
            } catch let error as PSQLError where error.code != .server {
                // The connection failed under a query (it closed before the watch on its end
                // noticed). After the COMMIT was sent that is no answer, not a rollback: only an
                // error the server sends (`.server`) says the commit did not happen.
                if progress.abandon() { throw PostgresOutcomeUnknown(what: "\(what) (\(Self.describe(error)))", seconds: nil) }
                throw error
            }
        }
    }

    /// Runs one statement on its own, outside any transaction: administration that PostgreSQL
    /// refuses inside one (`CREATE DATABASE`, `VACUUM`). The text is sent as it is: never build it
    /// from untrusted input.
    public func execute(unsafeSQL sql: String) async throws(PostgresStoreError) {
        do {
            let client = self.client, logger = self.logger
            try await withBound(seconds: Self.administrationTimeout, "PostgreSQL at \(location): an administration statement") {
                _ = try await client.query(PostgresQuery(unsafeSQL: sql), logger: logger)
            }
        } catch {
            throw .unreachable(location: location, reason: Self.describe(error))
        }
    }

    /// Runs `body` on a pooled connection outside any explicit transaction (each statement commits alone).
    /// Bounded as a transaction is (`operationTimeout`, the wait for a connection included).
    package func read<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) async throws -> T) async throws -> T {
        let client = self.client, what = "PostgreSQL at \(location): a read"
        var attempt = 0
        while true {
            attempt += 1
            do {
                return try await withBound(seconds: Self.operationTimeout, what) {
                    try await client.withConnection { connection in
                        try await self.guarded(connection, progress: nil) { try await body(connection) }
                    }
                }
            } catch is PostgresConnectionEnded where attempt < 5 {
                // Reads change nothing: run again on another connection.
                try await Self.pauseBeforeAnotherConnection(attempt)
                continue
            }
        }
    }

    /// A connection the server just ended stays in the pool until the pool sees it close, a
    /// moment later: a retry at once was handed the same dead connection, and five of them spent
    /// every attempt within a millisecond ("ended the connection five times in a row" after one
    /// end). 10, 20, 30, 40 ms: the pool has seen the close by then.
    private static func pauseBeforeAnotherConnection(_ attempt: Int) async throws {
        try await Task.sleep(for: .milliseconds(10 * attempt))
    }

    /// Seconds a transaction or a read may take, the wait for a pooled connection included, before
    /// its caller stops waiting for it (`BoundExceeded`). A lock held by a frozen process is freed
    /// within `idleInTransactionTimeout` and our transactions take milliseconds, but on a loaded
    /// machine many of them queue on one account's locks and for the pool's connections for
    /// seconds (a new connection's SCRAM login too): six times that is a connection that will not
    /// answer, not a slow one. A process woken from a freeze may wait this long for each
    /// connection the server ended while it slept before it learns that it lost its accounts.
    public static let operationTimeout = 6 * idleInTransactionTimeout

    /// Seconds an administration statement (`execute(unsafeSQL:)`: creating or dropping a
    /// database) may take: it copies a template and waits for a checkpoint.
    public static let administrationTimeout = 120.0

    /// Seconds `close` waits for the pool to end its connections.
    public static let closeTimeout = 3.0

    /// `work` on `connection`, given up on when its task is cancelled (by the caller: a graceful
    /// shutdown; or by the caller's bound running out) or when the connection ends under it.
    ///
    /// A query written to a connection that is already closed is never answered by postgres-nio
    /// (1.33: the write's promise is dropped with the pipeline), so without the watch a transaction
    /// whose connection the server ended (`idleInTransactionTimeout` after a stall of this process,
    /// a server restart) would wait out its whole bound: measured 30 s for one `SELECT` after a 7 s
    /// pause. Work given up on goes on in its own task on this connection, so the connection is
    /// closed before it goes back to the pool: no other caller ever gets it in the middle of
    /// someone else's transaction, and the server rolls back what did not commit.
    private func guarded<T: Sendable>(_ connection: PostgresConnection, progress: TransactionProgress?,
                                      _ work: @escaping @Sendable () async throws -> T) async throws -> T {
        if connection.isClosed {
            _ = progress?.abandon()
            throw PostgresConnectionEnded(location: location)
        }
        let watch = endWatch, location = self.location
        defer { watch.stopWatching(connection) }
        do {
            return try await withBound(seconds: nil, "PostgreSQL work", endedBy: { end in
                watch.watch(connection) { end(PostgresConnectionEnded(location: location)) }
            }, work)
        } catch {
            guard error is PostgresConnectionEnded || error is CancellationError else { throw error }
            _ = progress?.abandon()
            if !connection.isClosed {
                _ = try? await withBound(seconds: Self.closeTimeout, "closing a PostgreSQL connection given up on", cancellable: false) {
                    try await connection.close()
                }
            }
            throw error
        }
    }

    private static func isRetryable(_ error: PSQLError) -> Bool {
        // 40001 serialization_failure, 40P01 deadlock_detected.
        guard let state = error.serverInfo?[.sqlState] else { return false }
        return state == "40001" || state == "40P01"
    }

    /// What went wrong, for a message: the SQLSTATE and the server's text, or the client's error
    /// code. Never `String(reflecting:)` of a PSQLError: it prints the query's bound values.
    static func describe(_ error: any Error) -> String {
        if let error = error as? PSQLError {
            if let info = error.serverInfo {
                return "PostgreSQL error \(info[.sqlState] ?? "?"): \(info[.message] ?? "no message")"
                    + (info[.detail].map { " (\($0))" } ?? "")
            }
            if let failure = error.underlying as? NIOConnectionError {
                return "cannot connect: " + ConnectFailure.describe(failure)
            }
            if error.code == .sslUnsupported {
                return "the server does not offer TLS, which the URL asks for (sslmode=require): turn ssl on in the server's "
                    + "postgresql.conf, or leave sslmode out of the URL where the network between the hosts is trusted"
            }
            if let underlying = error.underlying { return "\(error.code): \(underlying)" }
            return "\(error.code)"
        }
        if let error = error as? PostgresStoreError { return error.description }
        // postgres-nio's pool, once connections to a server that went away keep failing, answers
        // with its own error type (not public), printed as a nest of module names that said
        // nothing of the server to an operator reading /health.
        if String(reflecting: type(of: error)).contains("ConnectionPoolError") {
            let name = "\(error)".split(whereSeparator: { !$0.isLetter }).last.map(String.init) ?? "\(error)"
            return "no connection to the PostgreSQL server could be made (its connection pool: \(name)); check that the server runs "
                + "and that this host reaches it"
        }
        // A shutdown cancels the work in flight: not a failure of the database ("CancellationError()").
        if error is CancellationError { return "cancelled before it finished (the process is stopping, or stopped serving the account)" }
        return "\(error)"
    }
}

/// What the PostgreSQL layer itself can fail with (the store and the queue wrap it in their own
/// errors). No case carries a password.
public enum PostgresStoreError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The URL is not a PostgreSQL URL tgsm understands.
    case invalidURL(String)
    /// No connection could be made, or the server refused the login.
    case unreachable(location: String, reason: String)
    /// The schema could not be created or upgraded.
    case migration(id: String, reason: String)
    /// The schema is newer than this tgsm (another process on the database runs a newer version).
    case schemaFromTheFuture(unknown: [String])
    /// A command that only reads found the schema behind this tgsm's (it does not upgrade it).
    case schemaBehind(location: String, missing: [String])

    public var description: String {
        switch self {
        case .invalidURL(let reason):
            "the PostgreSQL URL is not usable: \(reason). Write it as postgres://USER:PASSWORD@HOST:PORT/DATABASE "
                + "(optionally ?sslmode=disable|prefer|require); the password may also come from $PGPASSWORD."
        case .unreachable(let location, let reason):
            "cannot use the PostgreSQL database \(location): \(reason). Check that the server runs and accepts connections "
                + "from this host, the user name and password, and that the database exists."
        case .migration(let id, let reason):
            "the PostgreSQL schema migration \(id) failed: \(reason). Nothing of it was applied (migrations are transactional); "
                + "fix the cause (permissions to CREATE in the database, disk space) and start again."
        case .schemaFromTheFuture(let unknown):
            "the PostgreSQL database has migrations this tgsm does not know (\(unknown.joined(separator: ", "))): a newer tgsm "
                + "upgraded it. Run the same tgsm version on every host."
        case .schemaBehind(let location, let missing):
            "the PostgreSQL database \(location) has an older tgsm schema (this tgsm's \(missing.joined(separator: ", ")) not applied), "
                + "and a command that only reads does not upgrade it. Use the tgsm version the cluster runs, or upgrade the cluster "
                + "(its processes apply the migrations when they start)."
        }
    }
}

/// A transaction given up on (no answer within its bound) after its COMMIT was sent: the server
/// may have committed it or not.
public struct PostgresOutcomeUnknown: Error, Sendable, Hashable, CustomStringConvertible {
    public var what: String
    /// The bound that ran out; nil when the connection ended instead.
    public var seconds: Double?

    public var description: String {
        let cause = seconds.map { "no answer within \($0) s" } ?? "the connection ended"
        return "\(what): \(cause) after its COMMIT was sent, so it may or may not have taken effect"
    }
}

/// The server ended the connection a transaction or read was using (it ends one left idle inside a
/// transaction for `idleInTransactionTimeout`, e.g. while this process was stalled; a restart or
/// the network ends them all). Transactions and reads run again on another connection; this
/// reaches a caller only when that kept happening.
public struct PostgresConnectionEnded: Error, Sendable, Hashable, CustomStringConvertible {
    public var location: String

    public var description: String {
        "PostgreSQL at \(location) ended the connection in use five times in a row; check the server's log and that it is up "
            + "(a stall of this process over \(Int(PostgresDatabase.idleInTransactionTimeout)) s inside a transaction also ends it)"
    }
}

/// Whether a transaction was given up on and whether its COMMIT had been sent: the two race, so
/// the one that comes first decides (an abandoned transaction rolls back instead of committing).
final class TransactionProgress: Sendable {
    private struct State {
        var abandoned = false
        var committing = false
    }

    private let state = Mutex(State())

    /// False when the transaction was already given up on: roll back instead.
    func beginCommit() -> Bool {
        state.withLock { state in
            guard !state.abandoned else { return false }
            state.committing = true
            return true
        }
    }

    /// Marks the transaction given up on; true when its COMMIT had already been sent.
    func abandon() -> Bool {
        state.withLock { state in
            state.abandoned = true
            return state.committing
        }
    }
}
