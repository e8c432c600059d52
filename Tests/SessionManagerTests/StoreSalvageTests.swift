import Crypto
import Foundation
import GRDB
import MTProto
import MTProtoClient
import SessionManager
import Testing

/// `SQLiteSessionStore.salvage` on real damaged files: a store damaged with no verified backup
/// keeps the sessions whose rows pass their checks and the limits Telegram imposed, instead of
/// every account logging in again into limits nobody remembers.
@Suite struct StoreSalvageTests {
    static let now = UnixTime(seconds: 1_800_000_000)
    static let bobSalt: Int64 = 0x0123_4567_89AB_CDEF

    /// alice, bob and carol with sessions (homes on DC 2), 2,000 of alice's peers over many pages,
    /// a flood wait, a send-code deadline of a login not finished (dave) and carol's mark. The
    /// backups the key changes took are removed: this is the store whose backups were lost.
    static func makeStore(_ directory: TemporaryDirectory, options: SQLiteStoreOptions) async throws {
        let store = try SQLiteSessionStore.open(directory: directory.path, options: options)
        try await store.saveSession(Fixtures.session(salt: 10), account: "alice", fence: nil)
        try await store.saveSession(Fixtures.session(salt: bobSalt), account: "bob", fence: nil)
        try await store.saveSession(Fixtures.session(salt: 30), account: "carol", fence: nil)
        let peers = (1...2000).map { PeerRecord(kind: .user, id: Int64($0), accessHash: Int64($0) * 977, username: "user\($0)", seenAt: now) }
        try await store.rememberPeers(peers, account: "alice", fence: nil)
        try await store.recordFloodWait(FloodWait(account: "alice", method: "messages.sendMessage", kind: .floodWait, recordedAt: now, until: now + 7200))
        try await store.setSendCodeDeadline(now + 600, account: "dave", phoneKey: "pk-dave")
        try await store.setStatus(AccountStatus(state: .revoked, since: now, cause: "SESSION_REVOKED", code: "TGSM-AUTH-002"), for: "carol")
        try store.close()
        try FileManager.default.removeItem(atPath: directory.file("backups"))
        try checkpoint(directory.file("sessions.sqlite"))
    }

    /// Every page in the main file, where the damage goes (as after any checkpoint).
    static func checkpoint(_ path: String) throws {
        let queue = try DatabaseQueue(path: path)
        try queue.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA wal_checkpoint(TRUNCATE)") }
        try queue.close()
    }

    /// The pages of `table`'s b-tree leaves, and the page size (SQLite's dbstat).
    static func leafPages(of table: String, in path: String) throws -> (pages: [Int], size: Int) {
        let queue = try DatabaseQueue(path: path)
        defer { try? queue.close() }
        return try queue.read { db in
            (try Int.fetchAll(db, sql: "SELECT pageno FROM dbstat WHERE name = ? AND pagetype = 'leaf' ORDER BY pageno", arguments: [table]),
             try Int.fetchOne(db, sql: "PRAGMA page_size") ?? 4096)
        }
    }

    static func overwrite(_ path: String, at offset: Int, with bytes: Data) throws {
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        try handle.seek(toOffset: UInt64(offset))
        try handle.write(contentsOf: bytes)
        try handle.close()
    }

    @Test(arguments: [false, true])
    func aDamagedStoreWithoutBackupKeepsTheSessionsThatPassTheirChecksAndTheLimits(sealed: Bool) async throws {
        let directory = TemporaryDirectory("salvage")
        defer { directory.remove() }
        let options = Fixtures.options(encryption: sealed ? .key(SymmetricKey(data: Data(repeating: 5, count: 32))) : .none)
        try await Self.makeStore(directory, options: options)
        let path = directory.file("sessions.sqlite")

        // Two kinds of damage: one byte of bob's DC 2 salt (a value only its row check sees), and a
        // zeroed page in the middle of the peers (integrity_check sees it; reading stops there).
        var file = try Data(contentsOf: URL(fileURLWithPath: path))
        let salt = withUnsafeBytes(of: (Self.bobSalt + 1).bigEndian) { Data($0) }
        let found = try #require(file.range(of: salt))
        #expect(file[found.upperBound...].range(of: salt) == nil, "the salt is stored once")
        let (leaves, pageSize) = try Self.leafPages(of: "peer", in: path)
        #expect(leaves.count > 10, "\(leaves.count) leaf pages")
        let zeroed = leaves[leaves.count / 2]
        file[found.lowerBound + 7] ^= 0x01
        file.replaceSubrange((zeroed - 1) * pageSize..<zeroed * pageSize, with: Data(count: pageSize))
        try file.write(to: URL(fileURLWithPath: path))

        #expect(throws: SessionStoreError.self) { _ = try SQLiteSessionStore.open(directory: directory.path, options: options) }
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == file, "an open that fails leaves the file as it was")

        let report = try SQLiteSessionStore.salvage(directory: directory.path, options: options)
        #expect(report.secretsKept)
        #expect(report.rowsFailingTheirCheck == ["the DC 2 row of bob"])
        #expect(report.accountsWithSession == ["alice", "carol"])
        #expect(report.accountsWithoutSession == ["bob"], "bob's home DC row is lost; his DC 1 key alone is no session")
        #expect(report.accountsLost.isEmpty)
        let tables = Dictionary(uniqueKeysWithValues: report.tables.map { ($0.name, $0) })
        #expect(tables["dc"].map { [$0.rowsKept, $0.rowsDropped] } == [8, 1] && tables["dc"]?.readInFull == true, "\(String(describing: tables["dc"]))")
        #expect(tables["account"]?.rowsKept == 3)
        let peersKept = try #require(tables["peer"])
        #expect(!peersKept.readInFull && peersKept.rowsKept > 1000 && peersKept.rowsKept < 2000, "\(peersKept)")
        #expect(tables["lease"] == nil && tables["live_report"] == nil)

        // The damaged file is kept exactly as found, beside a new private file.
        #expect(try Data(contentsOf: URL(fileURLWithPath: report.damagedFileMovedTo)) == file)
        let mode = try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int
        #expect(mode == 0o600)

        let store = try SQLiteSessionStore.open(directory: directory.path, options: options)
        defer { try? store.close() }
        #expect(store.outcome == .opened)
        #expect(try await store.loadSession(account: "alice") == Fixtures.session(salt: 10))
        #expect(try await store.loadSession(account: "carol") == Fixtures.session(salt: 30))
        let bob = try await store.loadSession(account: "bob")
        #expect(bob?.dcs[2] == nil && bob?.dcs[1] == Fixtures.session(salt: Self.bobSalt).dcs[1])
        #expect(try await store.activeFloodWaits(account: "alice", at: Self.now + 60).map(\.until) == [Self.now + 7200])
        #expect(try await store.sendCodeDeadline(account: "dave", phoneKey: "pk-dave") == Self.now + 600,
                "the phone key secret came along, so dave's next login still waits")
        #expect(try await store.status(of: "carol")?.state == .revoked)
        let peers = try await store.peers(account: "alice").map(\.id)
        #expect(peers.count == peersKept.rowsKept && peers.contains(1) && peers.contains(2000), "read from both ends")

        #expect(throws: SessionStoreError.salvageRefused(path: path, reason: "the store is not damaged; it opens as it is")) {
            _ = try SQLiteSessionStore.salvage(directory: directory.path, options: options)
        }
    }

    /// Every page of the file zeroed in turn, and the file cut at several lengths: the salvage either
    /// refuses with a typed error and leaves the file as it was, or builds a store in which every
    /// session it says it kept is exactly the one saved and every limit it kept is exactly the one
    /// recorded. Never another key, salt or time; never a crash.
    @Test func whateverPageIsLostASalvageKeepsOnlyWhatWasThere() async throws {
        let template = TemporaryDirectory("salvage")
        defer { template.remove() }
        let options = Fixtures.options()
        try await Self.makeStore(template, options: options)
        let pristine = try Data(contentsOf: URL(fileURLWithPath: template.file("sessions.sqlite")))
        let (_, pageSize) = try Self.leafPages(of: "peer", in: template.file("sessions.sqlite"))
        let pages = pristine.count / pageSize
        var damages: [(String, Data)] = (2...pages).map { page in
            var file = pristine
            file.replaceSubrange((page - 1) * pageSize..<page * pageSize, with: Data(count: pageSize))
            return ("page \(page) zeroed", file)
        }
        for fraction in [0.25, 0.5, 0.75, 0.95] {
            let length = Int(Double(pages) * fraction) * pageSize
            damages.append(("cut to \(length) bytes", pristine.prefix(length)))
        }
        let saved: [AccountID: SessionState] = ["alice": Fixtures.session(salt: 10), "bob": Fixtures.session(salt: Self.bobSalt),
                                                "carol": Fixtures.session(salt: 30)]
        var salvaged = 0
        for (label, damaged) in damages {
            let directory = TemporaryDirectory("salvage")
            defer { directory.remove() }
            try FileManager.default.createDirectory(atPath: directory.path, withIntermediateDirectories: true)
            let path = directory.file("sessions.sqlite")
            try damaged.write(to: URL(fileURLWithPath: path))
            guard case .damaged = SQLiteSessionStore.inspectFile(directory: directory.path, options: options) else { continue }
            let report: StoreSalvageReport
            do {
                report = try SQLiteSessionStore.salvage(directory: directory.path, options: options)
            } catch {
                // Only a file whose list of tables is gone is beyond a salvage.
                #expect(error.code == "store.salvage_refused" && "\(error)".contains("list of tables"), "\(label): \(error)")
                #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == damaged, "\(label): a refusal changes nothing")
                continue
            }
            salvaged += 1
            let store = try SQLiteSessionStore.open(directory: directory.path, options: options)
            defer { try? store.close() }
            for account in report.accountsWithSession {
                let session = try await store.loadSession(account: account)
                let home = try #require(saved[account]?.dcs[2])
                #expect(session?.dcs[2] == home, "\(label): \(account)'s home DC comes back exactly or not at all")
                for (dc, state) in session?.dcs ?? [:] { #expect(saved[account]?.dcs[dc] == state, "\(label): \(account) DC \(dc)") }
            }
            for wait in try await store.activeFloodWaits(account: nil, at: Self.now) {
                #expect(wait.account == "alice" && wait.until == Self.now + 7200, "\(label): \(wait)")
            }
            for peer in try await store.peers(account: "alice") {
                #expect(peer.accessHash == peer.id * 977 && peer.username == "user\(peer.id)", "\(label): \(peer)")
            }
        }
        #expect(salvaged >= damages.count * 9 / 10, "\(salvaged) of \(damages.count) damaged files salvaged")
    }

    /// A damaged record can hold a value of another type than its STRICT column's (a flipped type
    /// byte in its header): here text where the account row's check, an integer, belongs. The
    /// salvage reads each field as the type it is stored as (`Row.int64` and the others, which
    /// neither trap nor let SQLite turn text into 0), so the row fails its check and is left out.
    @Test func aValueOfTheWrongTypeIsLeftOutNotACrash() async throws {
        let directory = TemporaryDirectory("salvage")
        defer { directory.remove() }
        let options = Fixtures.options()
        try await Self.makeStore(directory, options: options)
        try Self.plantAnAccountRowWithATextCheck(directory.file("sessions.sqlite"))
        guard case .damaged = SQLiteSessionStore.inspectFile(directory: directory.path, options: options) else {
            Issue.record("a value of the wrong type in a STRICT table reads as damage")
            return
        }
        let report = try SQLiteSessionStore.salvage(directory: directory.path, options: options)
        #expect(report.rowsFailingTheirCheck == ["the account row of zed"])
        #expect(report.accountsWithSession == ["alice", "bob", "carol"])
    }

    /// Writes an account row whose row check is text into the STRICT `account` table, with STRICT
    /// taken off the table's definition for the write and put back after.
    static func plantAnAccountRowWithATextCheck(_ path: String) throws {
        var configuration = Configuration()
        configuration.prepareDatabase { db in try db.execute(sql: "PRAGMA writable_schema = ON") }
        let original = try DatabaseQueue(path: path, configuration: configuration).write { db -> String in
            let sql = try String.fetchOne(db, sql: "SELECT sql FROM sqlite_master WHERE name = 'account'") ?? ""
            try db.execute(sql: "UPDATE sqlite_master SET sql = ? WHERE name = 'account'", arguments: [sql.replacingOccurrences(of: "STRICT", with: "")])
            return sql
        }
        let loose = try DatabaseQueue(path: path)
        try loose.write { db in try db.execute(sql: "INSERT INTO account(id, created_at, row_check) VALUES ('zed', 0, 'not a number')") }
        try loose.close()
        let strict = try DatabaseQueue(path: path, configuration: configuration)
        try strict.write { db in try db.execute(sql: "UPDATE sqlite_master SET sql = ? WHERE name = 'account'", arguments: [original]) }
        try strict.close()
        try checkpoint(path)
    }

    @Test func aVerifiedBackupIsRestoredNotSalvaged() async throws {
        let directory = TemporaryDirectory("salvage")
        defer { directory.remove() }
        let options = Fixtures.options()
        let backup = try await Fixtures.aliceWithABackup(in: directory, options: options)
        let path = directory.file("sessions.sqlite")
        try Self.overwrite(path, at: 0, with: Data(count: 100))
        let damaged = try Data(contentsOf: URL(fileURLWithPath: path))
        do {
            _ = try SQLiteSessionStore.salvage(directory: directory.path, options: options)
            Issue.record("a salvage went ahead beside a verified backup")
        } catch {
            guard case .salvageRefused(_, let reason) = error else { throw error }
            #expect(reason.contains("backup") && reason.contains("tgsm recover"), "\(reason)")
        }
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == damaged)
        #expect(SQLiteSessionStore.backupsOnDisk(directory: directory.path).contains { $0.file == backup.file })
    }

    /// A backup that fails verification is no reason to refuse: the salvage goes ahead, and the
    /// backup is set aside (`*.bad`) as a restore sets it aside, so no later open tries it again.
    /// A refusal changes nothing, bad backups included.
    @Test func aBackupThatFailsVerificationIsSetAsideByTheSalvage() async throws {
        let directory = TemporaryDirectory("salvage")
        defer { directory.remove() }
        let options = Fixtures.options()
        let backup = try await Fixtures.aliceWithABackup(in: directory, options: options)
        let backupPath = directory.file("backups/" + backup.file)
        // Every backup bad (the key's first save took one too), the manual one among them.
        let backups = SQLiteSessionStore.backupsOnDisk(directory: directory.path).map(\.file)
        #expect(backups.contains(backup.file))
        for file in backups { try Self.overwrite(directory.file("backups/" + file), at: 0, with: Data(count: 100)) }
        let path = directory.file("sessions.sqlite")
        try Self.checkpoint(path)
        // alice's DC rows lost: the store's list of tables still reads.
        let (leaves, pageSize) = try Self.leafPages(of: "dc", in: path)
        let page = try #require(leaves.first)
        try Self.overwrite(path, at: (page - 1) * pageSize, with: Data(count: pageSize))

        let report = try SQLiteSessionStore.salvage(directory: directory.path, options: options)
        #expect(report.backupsSetAside == backups)
        #expect(!FileManager.default.fileExists(atPath: backupPath))
        #expect(FileManager.default.fileExists(atPath: backupPath + ".bad") && FileManager.default.fileExists(atPath: backupPath + ".json.bad"))
        #expect(SQLiteSessionStore.backupsOnDisk(directory: directory.path).map(\.file) == [], "only the salvage's own backup, taken by the CLI")
    }

    /// Without the header rows, a key could be sealed under a key nobody can name, or in clear:
    /// no secret is carried, and everything else still is.
    @Test func aStoreWhoseHeaderRowsAreLostKeepsTheLimitsButNoSecret() async throws {
        let directory = TemporaryDirectory("salvage")
        defer { directory.remove() }
        let options = Fixtures.options()
        try await Self.makeStore(directory, options: options)
        let path = directory.file("sessions.sqlite")
        let (pages, pageSize) = try Self.leafPages(of: "store_meta", in: path)
        let page = try #require(pages.first)
        try Self.overwrite(path, at: (page - 1) * pageSize, with: Data(count: pageSize))

        let report = try SQLiteSessionStore.salvage(directory: directory.path, options: options)
        #expect(!report.secretsKept)
        #expect(report.tables.map(\.name).contains("dc") == false)
        #expect(report.accountsWithSession.isEmpty && report.accountsWithoutSession == ["alice", "bob", "carol"])
        let store = try SQLiteSessionStore.open(directory: directory.path, options: options)
        defer { try? store.close() }
        #expect(try await store.loadSession(account: "alice")?.dcs.isEmpty != false)
        #expect(try await store.activeFloodWaits(account: "alice", at: Self.now + 60).count == 1)
        #expect(try await store.peers(account: "alice").count == 2000)
    }
}
