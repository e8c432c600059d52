import Foundation
import MTProto
import MTProtoClient
import MTProtoCrypto
import SessionManager
import Testing

/// The operator's view of the SQLite store (`SQLiteSessionStore+Operator.swift`): read-only
/// inspection, backups on disk and their verification, an explicit restore, and listings that
/// never show a key or a phone key.
@Suite struct StoreOperatorTests {
    @Test func inspectionIsReadOnlyAndNamesTheDamage() async throws {
        let directory = TemporaryDirectory("operator")
        defer { directory.remove() }
        #expect(SQLiteSessionStore.inspectFile(directory: directory.path) == .absent)
        #expect(!FileManager.default.fileExists(atPath: directory.path), "inspecting creates nothing")

        let store = try SQLiteSessionStore.open(directory: directory.path, options: Fixtures.options())
        try await store.saveSession(Fixtures.session(), account: "alice", fence: nil)
        try store.close()
        guard case .good(let sequence) = SQLiteSessionStore.inspectFile(directory: directory.path) else {
            Issue.record("a fresh store inspects as good")
            return
        }
        #expect(sequence > 0)

        let path = directory.file("sessions.sqlite")
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        try handle.write(contentsOf: Data(count: 100))
        try handle.close()
        let damaged = try Data(contentsOf: URL(fileURLWithPath: path))
        guard case .damaged(let reason) = SQLiteSessionStore.inspectFile(directory: directory.path) else {
            Issue.record("a zeroed header inspects as damaged")
            return
        }
        #expect(reason.contains("header"))
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == damaged)
    }

    @Test func restoreTakesTheNamedBackupAndKeepsTheReplacedFile() async throws {
        let directory = TemporaryDirectory("operator")
        defer { directory.remove() }
        let options = Fixtures.options(generations: 5)
        let store = try SQLiteSessionStore.open(directory: directory.path, options: options)
        try await store.saveSession(Fixtures.session(salt: 1), account: "alice", fence: nil)
        let older = try store.backup(reason: .manual)
        try await store.saveSession(Fixtures.session(salt: 2), account: "bob", fence: nil)
        let newer = try store.backup(reason: .manual)
        try store.close()

        let onDisk = SQLiteSessionStore.backupsOnDisk(directory: directory.path)
        #expect(onDisk.first?.file == newer.file)
        #expect(onDisk.contains { $0.file == older.file })
        #expect(SQLiteSessionStore.verifyBackup(older.file, directory: directory.path, options: options) == nil)
        #expect(SQLiteSessionStore.verifyBackup("nope.sqlite", directory: directory.path, options: options)?.contains("no backup named") == true)

        let before = try Data(contentsOf: URL(fileURLWithPath: directory.file("sessions.sqlite")))
        let outcome = try SQLiteSessionStore.restore(directory: directory.path, backup: older.file, options: options)
        guard case .restored(let file, _, let movedTo) = outcome, let movedTo else {
            Issue.record("the restore reports the backup and where the old file went: \(outcome)")
            return
        }
        #expect(file == older.file)
        #expect(movedTo.contains("replaced-"))
        #expect(try Data(contentsOf: URL(fileURLWithPath: movedTo)) == before)

        let reopened = try SQLiteSessionStore.open(directory: directory.path, options: options)
        #expect(try await reopened.accounts() == ["alice"], "the older backup holds alice only")
        try reopened.close()

        #expect(throws: SessionStoreError.self) {
            _ = try SQLiteSessionStore.restore(directory: directory.path, backup: "missing.sqlite", options: options)
        }
    }

    /// A restore brings the sessions back as they were, not what Telegram said since: a flood wait,
    /// a send-code deadline, a mark and a notice recorded after the backup stay (each the later of
    /// the two); one the backup holds and the file lost stays too. Before, a restore dropped them,
    /// and the next process called into a 2-hour FLOOD_WAIT at once.
    @Test func aRestoreKeepsWhatTelegramSaidSinceTheBackup() async throws {
        let directory = TemporaryDirectory("operator")
        defer { directory.remove() }
        let options = Fixtures.options(generations: 5)
        let now = UnixTime(seconds: 1_800_000_000)
        let store = try SQLiteSessionStore.open(directory: directory.path, options: options)
        try await store.saveSession(Fixtures.session(salt: 1), account: "alice", fence: nil)
        try await store.recordFloodWait(FloodWait(account: "alice", method: "messages.sendMessage", kind: .floodWait, recordedAt: now, until: now + 600))
        try await store.recordFloodWait(FloodWait(account: "alice", method: "contacts.resolveUsername", kind: .floodWait, recordedAt: now, until: now + 300))
        try await store.saveSession(Fixtures.session(salt: 2), account: "bob", fence: nil)
        let token = FutureAuthToken(bytes: Array(repeating: 7, count: 32), receivedAt: now)
        try await store.addFutureAuthToken(token, account: "alice", phoneKey: "pk")
        try await store.addFutureAuthToken(FutureAuthToken(bytes: Array(repeating: 9, count: 32), receivedAt: now), account: "bob", phoneKey: "pk2")
        let backup = try store.backup(reason: .manual)
        // alice's token was spent since (Telegram accepted it); bob was removed (his token is the number's, still good).
        #expect(try await store.removeFutureAuthTokens(phoneKey: "pk") == 1)
        try await store.deleteAccount("bob")
        // After the backup: the wait grew to two hours, a code was requested, the account was marked.
        try await store.recordFloodWait(FloodWait(account: "alice", method: "messages.sendMessage", kind: .floodWait, recordedAt: now + 60, until: now + 7260))
        try await store.setSendCodeDeadline(now + 180, account: "alice", phoneKey: "pk")
        try await store.setStatus(AccountStatus(state: .revoked, since: now + 90, cause: "SESSION_REVOKED", code: "TGSM-AUTH-002"), for: "alice")
        try await store.recordServiceNotification(StoredServiceNotification(account: "alice", type: "AUTH_KEY_DROP_DUPLICATE", message: "m",
                                                                            popup: true, receivedAt: now + 100))
        try store.close()

        _ = try SQLiteSessionStore.restore(directory: directory.path, backup: backup.file, options: options)
        let restored = try SQLiteSessionStore.open(directory: directory.path, options: options)
        let waits = try await restored.activeFloodWaits(account: "alice", at: now + 61)
        #expect(waits.first { $0.method == "messages.sendMessage" }?.until == now + 7260, "the later wait: \(waits)")
        #expect(waits.first { $0.method == "contacts.resolveUsername" }?.until == now + 300)
        #expect(try await restored.sendCodeDeadline(account: "alice", phoneKey: "pk") == now + 180)
        #expect(try await restored.status(of: "alice")?.state == .revoked)
        #expect(try await restored.serviceNotifications(account: "alice", since: now).map(\.type) == ["AUTH_KEY_DROP_DUPLICATE"])
        // A spent token does not come back (a re-login offered it and got a second code past the
        // deadline); a removed account the backup brings back keeps its own.
        #expect(try await restored.futureAuthTokens(phoneKey: "pk").isEmpty)
        #expect(try await restored.futureAuthTokens(phoneKey: "pk2").count == 1)
        try restored.close()
    }

    @Test func aTamperedBackupFailsVerificationAndIsNotRestored() async throws {
        let directory = TemporaryDirectory("operator")
        defer { directory.remove() }
        let options = Fixtures.options()
        let backup = try await Fixtures.aliceWithABackup(in: directory, options: options)
        // Only this backup exists: remove the automatic ones taken at the key change.
        for other in SQLiteSessionStore.backupsOnDisk(directory: directory.path) where other.file != backup.file {
            try FileManager.default.removeItem(atPath: directory.file("backups/" + other.file))
            try FileManager.default.removeItem(atPath: directory.file("backups/" + other.file + ".json"))
        }
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: directory.file("backups/" + backup.file)))
        try handle.seek(toOffset: 5000)
        try handle.write(contentsOf: Data([0xFF, 0xFE]))
        try handle.close()
        #expect(SQLiteSessionStore.verifyBackup(backup.file, directory: directory.path, options: options)?.contains("SHA-256") == true)
        let before = try Data(contentsOf: URL(fileURLWithPath: directory.file("sessions.sqlite")))
        #expect(throws: SessionStoreError.self) { _ = try SQLiteSessionStore.restore(directory: directory.path, backup: nil, options: options) }
        #expect(try Data(contentsOf: URL(fileURLWithPath: directory.file("sessions.sqlite"))) == before, "the store is left as it was")
        #expect(FileManager.default.fileExists(atPath: directory.file("backups/" + backup.file + ".bad")))
    }

    @Test func deadlinesAndSummariesShowNoSecrets() async throws {
        let directory = TemporaryDirectory("operator")
        defer { directory.remove() }
        let clock = ManualClock()
        let store = try SQLiteSessionStore.open(directory: directory.path, options: Fixtures.options(clock: clock))
        defer { try? store.close() }
        try await store.saveSession(Fixtures.session(), account: "alice", fence: nil)
        let now = clock.now()
        try await store.setSendCodeDeadline(now + 300, account: "alice", phoneKey: try await store.phoneKey(for: "+15550002222"))
        try await store.setSendCodeDeadline(now + 10, account: "bob", phoneKey: try await store.phoneKey(for: "+15550003333"))
        try await store.setSendCodeDeadline(UnixTime(seconds: now.seconds - 1), account: "carol", phoneKey: try await store.phoneKey(for: "+15550004444"))
        let deadlines = try await store.activeSendCodeDeadlines(at: now)
        #expect(deadlines.map(\.account) == ["bob", "alice"], "soonest first, ended ones left out")
        #expect(deadlines.map(\.deadline) == [now + 10, now + 300])

        let summary = try #require(try await store.accountSummary("alice"))
        #expect(summary.homeDC == 2 && summary.userID == 1001 && !summary.isBot)
        #expect(summary.authorizedDCs == [2], "DC 1 has a key that is not logged in, DC 4 none")
        #expect(try await store.accountSummary("nobody") == nil)
    }
}
