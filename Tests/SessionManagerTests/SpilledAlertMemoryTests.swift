import Foundation
import MTProto
import SessionManager
import StoreTestSupport
import Testing

/// The alert memory over a real SQLite store that another connection holds locked (a stalled store
/// during a deploy): what the store does not take waits in the file beside it.
@Suite struct SpilledAlertMemoryTests {
    @Test func whatAStalledStoreDidNotTakeOutlivesTheProcessAndReachesTheStoreLater() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("spilled-alerts-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let options = SQLiteStoreOptions(busyTimeout: 0.2)
        let path = directory + "/alerts-unrecorded.json"
        let sent = UnixTime(seconds: 1_800_000_000)

        // A process says an incident while the store is locked, and ends before it answers.
        let first = try SQLiteSessionStore.open(directory: directory, options: options)
        let lock = try SQLiteFileLock(path: directory + "/sessions.sqlite")
        await #expect(throws: SessionStoreError.self) {
            try await SpilledAlertMemory(base: first, path: path).remember(["account:alice:down"], at: sent)
        }
        try first.close()
        let attributes = try FileManager.default.attributesOfItem(atPath: path)
        #expect((attributes[.posixPermissions] as? NSNumber)?.intValue == 0o600)

        // The next process, the store still locked for writes, knows of it (the incident was said).
        let second = try SQLiteSessionStore.open(directory: directory, options: options)
        defer { try? second.close() }
        let memory = SpilledAlertMemory(base: second, path: path)
        #expect(try await memory.recentlySent(now: sent + 60) == ["account:alice:down": sent])
        lock.release()

        // Its own next record takes the file's keys into the store, and the file goes.
        try await memory.remember(["recovered:alice"], at: sent + 120)
        #expect(try await second.recentlySent(now: sent + 180) == ["account:alice:down": sent, "recovered:alice": sent + 120])
        #expect(!FileManager.default.fileExists(atPath: path))
    }
}
