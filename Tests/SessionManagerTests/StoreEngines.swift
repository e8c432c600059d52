import Foundation
import Logging
import MTProto
import PostgresStore
import StoreTestSupport
import SessionManager
import Synchronization
import Testing

/// A store on one engine, on data of its own (a temporary directory, or a fresh PostgreSQL
/// database), that a test can close and open again on the same data, as a restart would.
final class EngineStore: Sendable {
    let engine: StoreEngine
    private let directory: TemporaryDirectory?
    private let scratch: ScratchPostgresDatabase?
    let options: SQLiteStoreOptions
    private let opened = Mutex<[any ClosableSessionStore]>([])

    private init(engine: StoreEngine, directory: TemporaryDirectory?, scratch: ScratchPostgresDatabase?, options: SQLiteStoreOptions) {
        self.engine = engine
        self.directory = directory
        self.scratch = scratch
        self.options = options
    }

    /// Opens a store on `engine` (the same data every time), runs `body` with it, then removes the data.
    static func with<T>(_ engine: StoreEngine, clock: ManualClock = ManualClock(), _ body: (EngineStore) async throws -> T) async throws -> T {
        let options = Fixtures.options(clock: clock)
        let place: EngineStore
        switch engine {
        case .sqlite:
            place = EngineStore(engine: engine, directory: TemporaryDirectory(), scratch: nil, options: options)
        case .postgres:
            place = EngineStore(engine: engine, directory: nil, scratch: try await ScratchPostgresDatabase.create(), options: options)
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

    /// Where a store process opens the data: the SQLite directory or the PostgreSQL URL.
    var location: String { scratch?.url ?? directory?.path ?? "" }

    /// The scratch database's URL on PostgreSQL.
    var postgresURL: String? { scratch?.url }

    /// A new connection to the data (the previous ones stay usable until closed), with the
    /// options' encryption unless `encryption` is given.
    func open(encryption: StoreEncryption? = nil) async throws -> any ClosableSessionStore {
        let store: any ClosableSessionStore
        var options = self.options
        if let encryption { options.encryption = encryption }
        switch engine {
        case .sqlite:
            guard let directory else { throw EngineStoreError.missing }
            store = try SQLiteSessionStore.open(directory: directory.path, options: options)
        case .postgres:
            guard let scratch else { throw EngineStoreError.missing }
            store = try await PostgresSessionStore.connect(url: scratch.url, encryption: options.encryption, clock: options.clock, logger: options.logger)
        }
        opened.withLock { $0.append(store) }
        return store
    }

    private func remove() async {
        // Whatever a failed expectation left open (closing twice is harmless).
        for store in opened.withLock({ $0 }) { try? await store.shutDown() }
        directory?.remove()
        await scratch?.drop()
    }

    enum EngineStoreError: Error { case missing }
}

/// What the contract tests need besides `SessionStore`: closing, to open again as a restart would.
protocol ClosableSessionStore: SessionStore {
    func shutDown() async throws
}

extension SQLiteSessionStore: ClosableSessionStore {
    func shutDown() async throws { try close() }
}

extension PostgresSessionStore: ClosableSessionStore {
    func shutDown() async throws { await close() }
}
