import Foundation
import GRDB
import MTProto
import MTProtoClient
import MTProtoCrypto
import SessionManager
import Testing
import Crypto

/// What only the SQLite store does (its files, modes, WAL, open outcomes, backups); the contract
/// every engine keeps is in SessionStoreContractTests.
@Suite struct SQLiteSessionStoreTests {
    @Test func itSaysWhetherItCreatedOrOpenedTheFileAndNeverHoldsAPhoneNumber() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let store = try SQLiteSessionStore.open(directory: dir.path, options: Fixtures.options())
        #expect(store.outcome == .created)
        try await store.saveSession(Fixtures.session(), account: "alice", fence: nil)
        let key = try await store.phoneKey(for: "+1 555 000 1234")
        try await store.setSendCodeDeadline(UnixTime(seconds: 5000), account: "alice", phoneKey: key)
        try store.close()
        let reopened = try SQLiteSessionStore.open(directory: dir.path, options: Fixtures.options())
        #expect(reopened.outcome == .opened)
        try reopened.close()
        let raw = try Data(contentsOf: URL(fileURLWithPath: dir.file("sessions.sqlite")))
        #expect(raw.range(of: Data("15550001234".utf8)) == nil)
    }

    /// `tgsm status` reads through `openForReading`: the same data, nothing written, and every
    /// case it cannot serve (no file, an old schema, encryption to set up) left to `open`.
    @Test func openForReadingReadsTheStoreWithoutWritingAndDeclinesWhatNeedsOpen() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        #expect(SQLiteSessionStore.openForReading(directory: dir.path, options: Fixtures.options()) == nil, "no store yet")
        let store = try SQLiteSessionStore.open(directory: dir.path, options: Fixtures.options())
        try await store.saveSession(Fixtures.session(), account: "alice", fence: nil)
        let key = try await store.phoneKey(for: "+1 555 000 1234")
        try await store.setSendCodeDeadline(UnixTime(seconds: 5000), account: "alice", phoneKey: key)
        try store.close()
        let before = try Data(contentsOf: URL(fileURLWithPath: dir.file("sessions.sqlite")))

        let reader = try #require(SQLiteSessionStore.openForReading(directory: dir.path, options: Fixtures.options()))
        #expect(try await reader.accounts() == ["alice"])
        #expect(try await reader.loadSession(account: "alice") == Fixtures.session())
        #expect(try await reader.phoneKey(for: "+1 555 000 1234") == key, "the stored phone secret, not a new one")
        await #expect(throws: SessionStoreError.self) {
            try await reader.saveSession(Fixtures.session(), account: "bob", fence: nil)
        }
        try reader.close()
        #expect(try Data(contentsOf: URL(fileURLWithPath: dir.file("sessions.sqlite"))) == before)

        // Asking for encryption of a plain store means writing its header: not a reader's job.
        var encrypted = Fixtures.options()
        encrypted.encryption = .key(SymmetricKey(size: .bits256))
        #expect(SQLiteSessionStore.openForReading(directory: dir.path, options: encrypted) == nil)
    }

    /// A store open in a process learns that another process put a backup in its file's place.
    /// Closed, the store file alone holds every commit: a copy of it (scp, a move of the store) or
    /// a lost -wal loses nothing. Before, the commits stayed in the -wal after every command.
    @Test func closingLeavesEveryCommitInTheStoreFileItself() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let store = try SQLiteSessionStore.open(directory: dir.path, options: Fixtures.options())
        try await store.saveSession(Fixtures.session(salt: 42), account: "alice", fence: nil)
        try store.close()
        for suffix in ["-wal", "-shm"] { try? FileManager.default.removeItem(atPath: dir.file("sessions.sqlite" + suffix)) }
        let reader = try #require(SQLiteSessionStore.openForReading(directory: dir.path, options: Fixtures.options()))
        #expect(try await reader.loadSession(account: "alice") == Fixtures.session(salt: 42))
        try reader.close()
    }

    @Test func anOpenStoreKnowsWhenItsFileWasReplaced() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let store = try SQLiteSessionStore.open(directory: dir.path, options: Fixtures.options())
        try await store.saveSession(Fixtures.session(), account: "alice", fence: nil)
        _ = try store.backup(reason: .manual)
        #expect(!store.wasReplaced)
        _ = try SQLiteSessionStore.restore(directory: dir.path, backup: nil, options: Fixtures.options())
        #expect(store.wasReplaced)
        try store.close()
    }

    /// The default place on a fresh machine (~/.local/share/tgsm with no ~/.local): its missing
    /// parents are made (0700), and a parent that exists keeps its mode.
    @Test func aStoreWhoseParentsDoNotExistYetIsOpenedWithThemMade() async throws {
        let home = TemporaryDirectory()
        defer { home.remove() }
        try FileManager.default.createDirectory(atPath: home.path, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
        let directory = home.file(".local/share/tgsm")
        let store = try SQLiteSessionStore.open(directory: directory, options: Fixtures.options())
        try await store.saveSession(Fixtures.session(), account: "alice", fence: nil)
        try store.close()
        #expect(try mode(directory) == 0o700)
        #expect(try mode(home.file(".local")) == 0o700 && mode(home.file(".local/share")) == 0o700)
        #expect(try mode(home.path) == 0o755)
    }

    @Test func filesAre0600InA0700DirectoryInWALModeWithStorePrefixedMigrations() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let store = try SQLiteSessionStore.open(directory: dir.path, options: Fixtures.options())
        try await store.saveSession(Fixtures.session(), account: "alice", fence: nil)
        #expect(try store.synchronousLevel() == 2, "synchronous=FULL on the writer, as configured")
        let files = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasPrefix("sessions.sqlite") }
        #expect(files.contains("sessions.sqlite") && files.contains("sessions.sqlite-wal"))
        for file in files { #expect(try mode(dir.file(file)) == 0o600, "\(file)") }
        #expect(try mode(dir.path) == 0o700)
        #expect(try mode(dir.file("backups")) == 0o700)
        for file in try FileManager.default.contentsOfDirectory(atPath: dir.file("backups")) {
            #expect(try mode(dir.file("backups/" + file)) == 0o600, "\(file)")
        }
        try store.close()

        let queue = try DatabaseQueue(path: dir.file("sessions.sqlite"))
        let (journal, migrations) = try await queue.read { db in
            (try String.fetchOne(db, sql: "PRAGMA journal_mode"), try String.fetchAll(db, sql: "SELECT identifier FROM grdb_migrations"))
        }
        try queue.close()
        #expect(journal == "wal")
        #expect(!migrations.isEmpty && migrations.allSatisfy { $0.hasPrefix("store.") })
    }

    /// A login (the key made before it, logged in after: `tgsm auth`) is backed up as it completes:
    /// before, the only backup was the one taken when the key was created, logged out, so a
    /// restore before the next scheduled backup (by hand, or recovery of a damaged file) needed a
    /// person with a login code. Saves that log nothing in take none.
    @Test func aBackupIsTakenWhenALoginCompletes() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let clock = ManualClock()
        let options = Fixtures.options(clock: clock, generations: 5)
        let store = try SQLiteSessionStore.open(directory: dir.path, options: options)
        var state = Fixtures.session(user: nil)
        state.dcs[2]?.isAuthorized = false
        #expect(try await store.saveSession(state, account: "alice", fence: nil), "the keys are new")
        // The login is the one a mark waited for: the mark ends with it, in the backup too.
        try await store.setStatus(AccountStatus(state: .duplicated, since: clock.now(), cause: AccountStatus.keyUnknownCause, code: "TGSM-AUTH-007"),
                                  for: "alice")
        clock.advance(by: 1)
        state.dcs[2]?.isAuthorized = true
        state.userID = 1001
        #expect(try await store.saveSession(state, account: "alice", fence: nil) == false, "no key changed")
        #expect(try await store.status(of: "alice")?.isTerminal == false)
        clock.advance(by: 1)
        state.dcs[2]?.serverSalt = 99
        try await store.saveSession(state, account: "alice", fence: nil)
        #expect(try await store.recordedBackups().map(\.reason) == [.loggedIn, .authKeyChanged])
        try store.close()

        _ = try SQLiteSessionStore.restore(directory: dir.path, backup: nil, options: options)
        let restored = try SQLiteSessionStore.open(directory: dir.path, options: options)
        let session = try #require(try await restored.loadSession(account: "alice"))
        #expect(session.isAuthorized && session.userID == 1001, "the newest backup holds the login")
        #expect(try await restored.status(of: "alice")?.isTerminal == false, "and not the mark the login ended")
        try restored.close()
    }

    /// Only the home DC's login ends a mark: another DC's authorization is copied from the home key
    /// and may land after that key was revoked.
    @Test func aNonHomeDCsAuthorizationDoesNotEndAMark() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let store = try SQLiteSessionStore.open(directory: dir.path, options: Fixtures.options())
        var state = Fixtures.session()
        state.dcs[4] = DCSessionState(authKey: try AuthKey([UInt8](repeating: 9, count: 256)), isAuthorized: false)
        try await store.saveSession(state, account: "alice", fence: nil)
        try await store.setStatus(AccountStatus(state: .revoked, since: UnixTime(seconds: 1), cause: "SESSION_REVOKED", code: "TGSM-AUTH-002"), for: "alice")
        state.dcs[4]?.isAuthorized = true
        try await store.saveSession(state, account: "alice", fence: nil)
        #expect(try await store.status(of: "alice")?.state == .revoked)
        try store.close()
    }

    /// A mark no login ends (deactivated: the account is banned) stays through a save that logs in.
    @Test func aDeactivatedMarkOutlivesASaveThatLogsIn() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let store = try SQLiteSessionStore.open(directory: dir.path, options: Fixtures.options())
        var state = Fixtures.session(user: nil)
        state.dcs[2]?.isAuthorized = false
        try await store.saveSession(state, account: "alice", fence: nil)
        try await store.setStatus(AccountStatus(state: .deactivated, since: UnixTime(seconds: 1), cause: "USER_DEACTIVATED", code: "TGSM-AUTH-005"),
                                  for: "alice")
        state.dcs[2]?.isAuthorized = true
        state.userID = 1001
        try await store.saveSession(state, account: "alice", fence: nil)
        #expect(try await store.status(of: "alice")?.state == .deactivated)
        try store.close()
    }

    /// The backup `tgsm session remove` names outlives the newest generations for 30 days: a few
    /// logins or backups after a removal, the restore it offered still works (it was pruned after
    /// five more backups).
    @Test func aBackupTakenBeforeARemovalIsKeptThirtyDaysBesideTheGenerations() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let clock = ManualClock()
        let store = try SQLiteSessionStore.open(directory: dir.path, options: Fixtures.options(clock: clock, generations: 2))
        try await store.saveSession(Fixtures.session(), account: "alice", fence: nil)
        let named = try store.backup(reason: .beforeRemoval)
        for _ in 0..<4 {
            clock.advance(by: 60)
            _ = try store.backup()
        }
        var files = try await store.recordedBackups().map(\.file)
        #expect(files.count == 3 && files.contains(named.file), "\(files)")
        clock.advance(by: BackupRecord.removalBackupDays * 86_400)
        _ = try store.backup()
        files = try await store.recordedBackups().map(\.file)
        #expect(files.count == 2 && !files.contains(named.file), "\(files)")
        try store.close()
    }

    @Test func aBackupIsTakenAfterEveryAuthKeyChangeAndGenerationsArePruned() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let clock = ManualClock()
        let store = try SQLiteSessionStore.open(directory: dir.path, options: Fixtures.options(clock: clock, generations: 3))
        for seed in UInt8(1)...5 {
            clock.advance(by: 1)
            var state = Fixtures.session()
            state.dcs[2]?.authKey = Fixtures.key(seed &* 20)
            #expect(try await store.saveSession(state, account: "alice", fence: nil))
        }
        // Salt-only saves are not key changes.
        try await store.saveSession(Fixtures.session(salt: 1), account: "alice", fence: nil)
        let recorded = try await store.recordedBackups()
        #expect(recorded.count == 3)
        #expect(recorded.allSatisfy { $0.reason == .authKeyChanged })
        let files = try FileManager.default.contentsOfDirectory(atPath: dir.file("backups")).sorted()
        #expect(files.filter { $0.hasSuffix(".sqlite") }.count == 3)
        #expect(files.filter { $0.hasSuffix(".sqlite.json") }.count == 3)
        for record in recorded {
            let data = try Data(contentsOf: URL(fileURLWithPath: dir.file("backups/" + record.file)))
            #expect(data.count == Int(record.size))
            #expect(sha256Hex(data) == record.sha256)
        }

        // The schedule: nothing is due within the interval, a backup is once it passed.
        #expect(try store.backupIfDue() == nil)
        clock.advance(by: 3601)
        #expect(try store.backupIfDue()?.reason == .scheduled)
        try store.close()
    }

    private func mode(_ path: String) throws -> Int {
        let attributes = try FileManager.default.attributesOfItem(atPath: path)
        return (attributes[.posixPermissions] as? Int ?? -1) & 0o777
    }
}

func sha256Hex(_ data: Data) -> String {
    var hasher = Crypto.SHA256()
    hasher.update(data: data)
    return hasher.finalize().map { String(format: "%02x", $0) }.joined()
}
