import Foundation
import MTProto
import SessionManager
import Testing

/// Snapshot directories (`SnapshotDirectory`, what `tgsm session backup` writes for a PostgreSQL
/// store): their order holds whatever the clock did between them.
@Suite struct SessionSnapshotTests {
    /// Snapshots taken while the clock was a day ahead (an hourly cron on a host booted with a wrong
    /// clock) must not outrank the ones taken after NTP corrected it: before, the new snapshot was
    /// ordered by its time, pruned at once as the oldest, and a restore passed over it.
    @Test func aSnapshotTakenAfterTheClockWentBackIsTheNewest() async throws {
        let directory = TemporaryDirectory("snapshots")
        defer { directory.remove() }
        let clock = ManualClock()
        let options = SQLiteStoreOptions(backupGenerations: 3, clock: clock, logger: quietLogger)
        clock.advance(by: 86400)
        for salt in 1...3 {
            _ = try await SnapshotDirectory.make(in: directory.path, options: options, reason: .manual) { store in
                try await store.saveSession(Fixtures.session(salt: Int64(salt)), account: "alice", fence: nil)
            }
            clock.advance(by: 60)
        }
        clock.advance(by: -86400)
        let (record, pruned) = try await SnapshotDirectory.make(in: directory.path, options: options, reason: .manual) { store in
            try await store.saveSession(Fixtures.session(salt: 4), account: "alice", fence: nil)
        }
        #expect(!pruned.contains(record.file))
        let listed = SnapshotDirectory.list(directory.path)
        #expect(listed.count == 3)
        #expect(listed.first == record)
    }
}
