import Foundation
import MTProto
import SessionManager
import Testing

/// The store's backup schedule (`runBackupSchedule`, what `tgsm run` runs for its whole life),
/// driven by a clock that only moves when the test says: it backs up when due, not before, and
/// stops when cancelled.
@Suite struct BackupScheduleTests {
    static func open(_ directory: TemporaryDirectory, clock: TestClock) throws -> SQLiteSessionStore {
        // No backup per key change: every backup here is the schedule's.
        try SQLiteSessionStore.open(directory: directory.path, options: SQLiteStoreOptions(
            backupInterval: 3600, backsUpOnAuthKeyChange: false, clock: clock, logger: quietLogger))
    }

    static func scheduled(_ store: SQLiteSessionStore) async throws -> [BackupRecord] {
        try await store.recordedBackups().filter { $0.reason == .scheduled }
    }

    @Test func aRunningScheduleBacksUpAtOnceThenWhenTheIntervalHasPassedAndStopsWhenCancelled() async throws {
        let directory = TemporaryDirectory("schedule")
        defer { directory.remove() }
        let clock = TestClock(autoAdvance: false)
        let store = try Self.open(directory, clock: clock)
        try await store.saveSession(Fixtures.session(salt: 1), account: "alice", fence: nil)

        let schedule = Task { await store.runBackupSchedule() }
        // No backup existed: the first look takes one, then the schedule waits a quarter interval
        // (900 s), capped at 10 minutes.
        await clock.untilSleeping()
        let first = try await Self.scheduled(store)
        #expect(first.count == 1)
        #expect(clock.sleeps == [600])

        // Five looks within the interval take none, even though the store changed.
        try await store.saveSession(Fixtures.session(salt: 2), account: "alice", fence: nil)
        for _ in 0..<5 {
            clock.advance(by: 600)
            await clock.untilSleeping()
        }
        #expect(try await Self.scheduled(store).count == 1)

        // Once the newest backup is an interval old, the next look takes one holding the change.
        clock.advance(by: 600)
        await clock.untilSleeping()
        let second = try await Self.scheduled(store)
        #expect(second.count == 2)
        let newest = try #require(second.first)
        #expect(newest.createdAt.seconds - (first.first?.createdAt.seconds ?? 0) == 3600)
        #expect(newest.commitSequence > (first.first?.commitSequence ?? .max))
        #expect(FileManager.default.fileExists(atPath: directory.file("backups/" + newest.file)))

        // Cancelling ends the schedule while it waits; no backup after that.
        schedule.cancel()
        await schedule.value
        clock.advance(by: 7200)
        #expect(try await Self.scheduled(store).count == 2)
        try store.close()
    }

    /// `tgsm run --backup-interval`: the schedule's own interval over the store's; a backup younger
    /// than it is left alone at start, and the first scheduled one comes when that backup is due.
    @Test func theScheduleIntervalOverridesTheStoresAndCountsFromTheNewestBackup() async throws {
        let directory = TemporaryDirectory("schedule")
        defer { directory.remove() }
        let clock = TestClock(autoAdvance: false)
        let store = try Self.open(directory, clock: clock)
        try await store.saveSession(Fixtures.session(), account: "alice", fence: nil)
        try store.backup(reason: .manual)

        clock.advance(by: 30)
        let schedule = Task { await store.runBackupSchedule(interval: 60) }
        await clock.untilSleeping()
        #expect(clock.sleeps == [15])
        #expect(try await Self.scheduled(store).isEmpty, "the manual backup is 30 s old, younger than 60 s")
        clock.advance(by: 15)
        await clock.untilSleeping()
        #expect(try await Self.scheduled(store).isEmpty)
        clock.advance(by: 15)
        await clock.untilSleeping()
        #expect(try await Self.scheduled(store).count == 1, "60 s after the manual backup")
        schedule.cancel()
        await schedule.value
        try store.close()
    }

    /// A backup taken while the clock was an hour ahead (before NTP stepped it back) does not hold
    /// the schedule off for that hour: it is not taken for a recent one.
    @Test func aBackupStampedInTheFutureDoesNotHoldTheScheduleOff() async throws {
        let directory = TemporaryDirectory("schedule-future")
        defer { directory.remove() }
        let clock = ManualClock()
        let store = try SQLiteSessionStore.open(directory: directory.path, options: SQLiteStoreOptions(
            backupInterval: 3600, backsUpOnAuthKeyChange: false, clock: clock, logger: quietLogger))
        try await store.saveSession(Fixtures.session(salt: 1), account: "alice", fence: nil)
        clock.advance(by: 7200)
        #expect(try store.backupIfDue() != nil)
        clock.advance(by: -7200)
        let taken = try store.backupIfDue()
        #expect(taken?.reason == .scheduled)
        // And once one is in the past again, the interval counts from it as before.
        #expect(try store.backupIfDue() == nil)
        try store.close()
    }
}
