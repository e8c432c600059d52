import Foundation
import MTProto
import PostgresStore
import SessionManager
import StoreTestSupport
import Synchronization
import Workers

/// A queue's data on one engine (a temporary SQLite file, or a fresh PostgreSQL database) that
/// tests open queues on: several queues on the same data are what several processes see.
final class EngineQueue: Sendable {
    let engine: StoreEngine
    private let database: TemporaryDatabase?
    private let scratch: ScratchPostgresDatabase?
    private let opened = Mutex<[any ClosableJobQueue]>([])
    private let databases = Mutex<[PostgresDatabase]>([])

    private init(engine: StoreEngine, database: TemporaryDatabase?, scratch: ScratchPostgresDatabase?) {
        self.engine = engine
        self.database = database
        self.scratch = scratch
    }

    /// Runs `body` with fresh data on `engine`, then closes every queue it opened and removes the data.
    static func with<T>(_ engine: StoreEngine, _ body: (EngineQueue) async throws -> T) async throws -> T {
        let place = switch engine {
        case .sqlite: EngineQueue(engine: engine, database: try TemporaryDatabase(), scratch: nil)
        case .postgres: EngineQueue(engine: engine, database: nil, scratch: try await ScratchPostgresDatabase.create())
        }
        do {
            let result = try await body(place)
            await place.remove()
            return result
        } catch {
            await place.remove()
            throw error
        }
    }

    /// The scratch database's URL on PostgreSQL.
    var postgresURL: String? { scratch?.url }

    /// A new queue on the data (its own connections).
    func queue() async throws -> any JobQueue {
        let queue: any ClosableJobQueue
        switch engine {
        case .sqlite:
            guard let database else { throw EngineQueueError.missing }
            queue = try database.queue()
        case .postgres:
            guard let scratch else { throw EngineQueueError.missing }
            queue = try await PostgresJobQueue.connect(url: scratch.url, logger: quietLogger)
        }
        opened.withLock { $0.append(queue) }
        return queue
    }

    /// The message archive on the same data.
    func archive() async throws -> any MessageArchive {
        switch engine {
        case .sqlite:
            guard let database else { throw EngineQueueError.missing }
            let queue = try database.queue()
            opened.withLock { $0.append(queue) }
            return try SQLiteMessageArchive(writer: queue.writer)
        case .postgres:
            guard let scratch else { throw EngineQueueError.missing }
            let connection = try await PostgresDatabase.connect(url: scratch.url, logger: quietLogger)
            databases.withLock { $0.append(connection) }
            return try await PostgresMessageArchive.open(database: connection, logger: quietLogger)
        }
    }

    private func remove() async {
        for connection in databases.withLock({ $0 }) { await connection.close() }
        for queue in opened.withLock({ $0 }) { await queue.shutDown() }
        database?.remove()
        await scratch?.drop()
    }

    enum EngineQueueError: Error { case missing }
}

protocol ClosableJobQueue: JobQueue {
    func shutDown() async
}

extension SQLiteJobQueue: ClosableJobQueue {
    func shutDown() async { try? writer.close() }
}

extension PostgresJobQueue: ClosableJobQueue {
    func shutDown() async { await close() }
}
