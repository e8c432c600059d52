import Foundation
import MTProto
import MTProtoClient
import SessionManager
import StoreTestSupport
import Testing

/// What the store's errors tell the operator, met through a real SQLite file.
@Suite struct SessionStoreErrorTests {
    /// A file another program holds in a transaction is busy, not damaged: the advice says so
    /// instead of "reopen the store (damage is then detected and the newest backup restored)".
    @Test func aLockedFileIsToldApartFromADamagedOne() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("store-errors-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        var options = Fixtures.options()
        options.busyTimeout = 0.05
        let store = try SQLiteSessionStore.open(directory: directory.path, options: options)
        let lock = try SQLiteFileLock(path: directory.path + "/sessions.sqlite")
        do {
            try await store.saveSession(Fixtures.session(), account: "alice", fence: nil)
            Issue.record("a write went through a locked file")
        } catch {
            #expect("\(error)".contains("Another program holds the SQLite file"), "\(error)")
            #expect(!"\(error)".contains("reopen the store"), "\(error)")
        }
        // A backup under the lock says the same, not "check free space and permissions".
        do {
            _ = try store.backup(reason: .manual)
            Issue.record("a backup was recorded in a locked file")
        } catch {
            #expect("\(error)".contains("Another program holds the store file") && !"\(error)".contains("free space"), "\(error)")
        }
        lock.release()
        try await store.saveSession(Fixtures.session(), account: "alice", fence: nil)
        try store.close()
    }
}
