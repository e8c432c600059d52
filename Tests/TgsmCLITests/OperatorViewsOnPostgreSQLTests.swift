import Foundation
import Logging
import MTProto
import MTProtoClient
import MTProtoCrypto
import PostgresNIO
@testable import PostgresStore
import SessionManager
import StoreTestSupport
import Testing

/// `tgsm status`, `tgsm check` and `tgsm session list` on a PostgreSQL store (`--store
/// postgres://…`), the built binary against a real server: a cluster's operator reads the same
/// views a SQLite store gives (they refused a PostgreSQL store before, saying to use psql).
@Suite struct OperatorViewsOnPostgreSQLTests {
    struct FindingJSON: Decodable { var level: String; var check: String; var message: String; var guidance: [String] }
    struct CheckJSON: Decodable { var store: String; var ok: Bool; var exitCode: Int32; var findings: [FindingJSON] }
    struct StatusJSON: Decodable {
        struct Account: Decodable { var account: String; var homeDC: Int?; var status: String; var statusCode: String? }
        struct Flood: Decodable { var account: String; var method: String }
        var store: String
        var accounts: [Account]
        var floodWaits: [Flood]
        var queue: [String: Int]?
    }
    struct ListedJSON: Decodable { var account: String; var homeDC: Int?; var status: String }

    @Test func statusCheckAndSessionListReadAPostgreSQLStore() async throws {
        let database = try await ScratchPostgresDatabase.create()
        let (root, cli) = try CLI.temporary()
        defer { try? FileManager.default.removeItem(atPath: root) }
        do {
            try await readViews(of: database.url, root: root, base: cli)
        } catch {
            await database.drop()
            throw error
        }
        await database.drop()
    }

    /// The views only read: on a database that holds no store they refuse (exit 4) and leave it as it
    /// was, and a schema behind this tgsm's is said, not upgraded (before, they migrated on connect:
    /// an operator's newer tgsm upgraded the cluster's schema under its workers).
    @Test func theViewsNeverMigrateOrWriteTheDatabase() async throws {
        let database = try await ScratchPostgresDatabase.create()
        let (root, base) = try CLI.temporary()
        defer { try? FileManager.default.removeItem(atPath: root) }
        do {
            var cli = base
            cli.environment = ["TGSM_STORE": "", "TGSM_CONFIG": "", "TGSM_HOME": root + "/home"]
            let url = database.url
            for arguments in [["status"], ["session", "list"], ["check", "--json"]] {
                let result = try await cli.run(arguments + ["--store", url], withStore: false)
                #expect(result.status == 4, "\(arguments): \(result.stdout)\(result.stderr)")
                #expect((result.stdout + result.stderr).contains("holds no tgsm store"), "\(arguments): \(result.stdout)\(result.stderr)")
            }
            #expect(try await Self.tables(url) == 0, "nothing was created in an empty database")

            let imported = try await cli.run(["session", "import", "--account", "alice", "-", "--store", url],
                                             stdin: try TelethonStringSession.encode(PortableSession(dc: 2, authKey: try CLIFixtures.key(seed: 4), address: DCAddress(host: "127.0.0.1", port: 1))),
                                             withStore: false)
            #expect(imported.status == 0, "\(imported.stderr)")
            // A store whose queue no process made yet: said so, and not made by the view.
            let noQueue = try await cli.run(["status", "--store", url], withStore: false)
            #expect(noQueue.status == 0 && noQueue.stdout.contains("queue: none in this database yet"), "\(noQueue.stdout)\(noQueue.stderr)")
            #expect(try await Self.count(url, "SELECT count(*) FROM pg_tables WHERE tablename = 'jobs'") == 0)
            let newest = try #require(PostgresStoreSchema.migrations.last?.id as String?)
            try await Self.execute(url, "DELETE FROM tgsm_migrations WHERE id = '\(newest)'")
            let behind = try await cli.run(["status", "--store", url], withStore: false)
            #expect(behind.status == 1 && behind.stderr.contains("has an older tgsm schema") && behind.stderr.contains(newest), "\(behind.stderr)")
            let checked = try await cli.run(["check", "--json", "--store", url], withStore: false)
            #expect(checked.status == 3 && checked.stdout.contains("has an older tgsm schema"), "\(checked.stdout)")
            #expect(try await Self.count(url, "SELECT count(*) FROM tgsm_migrations WHERE id = '\(newest)'") == 0, "not migrated by a view")
        } catch {
            await database.drop()
            throw error
        }
        await database.drop()
    }

    private static func count(_ url: String, _ sql: String) async throws -> Int {
        let quiet = Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }
        let database = try await PostgresDatabase.connect(url: url, logger: quiet)
        let query = PostgresQuery(unsafeSQL: sql)
        do {
            let value = try await database.read { connection in
                try await connection.rows(query, logger: quiet).first?.decode(Int.self) ?? 0
            }
            await database.close()
            return value
        } catch {
            await database.close()
            throw error
        }
    }

    private static func tables(_ url: String) async throws -> Int {
        try await count(url, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
    }

    private static func execute(_ url: String, _ sql: String) async throws {
        let quiet = Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }
        let database = try await PostgresDatabase.connect(url: url, logger: quiet)
        let query = PostgresQuery(unsafeSQL: sql)
        do {
            try await database.transaction { connection in _ = try await connection.rows(query, logger: quiet) }
        } catch {
            await database.close()
            throw error
        }
        await database.close()
    }

    private func readViews(of url: String, root: String, base: CLI) async throws {
        var cli = base
        cli.environment = ["TGSM_STORE": "", "TGSM_CONFIG": "", "TGSM_HOME": root + "/home"]
        func session(_ seed: UInt8) throws -> String {
            try TelethonStringSession.encode(PortableSession(dc: 2, authKey: try CLIFixtures.key(seed: seed), address: DCAddress(host: "127.0.0.1", port: 24402)))
        }
        for (account, seed) in [("alice", UInt8(1)), ("bob", UInt8(2))] {
            let imported = try await cli.run(["session", "import", "--account", account, "-", "--store", url], stdin: try session(seed), withStore: false)
            #expect(imported.status == 0, "\(imported.stderr)")
        }
        // What a running cluster leaves in the database: a flood wait, a terminal mark, jobs no
        // worker will ever take (a kind no worker runs, an account the store does not hold).
        let quiet = Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }
        let store = try await PostgresSessionStore.connect(url: url, logger: quiet)
        let now = UnixTime(seconds: Date().timeIntervalSince1970)
        try await store.recordFloodWait(FloodWait(account: "alice", method: "contacts.resolveUsername", kind: .floodWait, recordedAt: now, until: now + 3600))
        try await store.setStatus(AccountStatus(state: .revoked, since: now, cause: "SESSION_REVOKED", code: "TGSM-AUTH-002"), for: "bob")
        await store.close()
        for (kind, account) in [("me", "alice"), ("fancy", "alice"), ("me", "ghost")] {
            let enqueued = try await cli.run(["jobs", "enqueue", "--kind", kind, "--account", account, "--store", url], withStore: false)
            #expect(enqueued.status == 0, "\(enqueued.stderr)")
        }

        let listed = try await cli.run(["session", "list", "--json", "--store", url], withStore: false)
        #expect(listed.status == 0, "\(listed.stderr)")
        let accounts = try listed.json([ListedJSON].self)
        #expect(accounts.map(\.account) == ["alice", "bob"] && accounts.allSatisfy { $0.homeDC == 2 })
        #expect(accounts.last?.status == "revoked")

        let status = try await cli.run(["status", "--json", "--store", url], withStore: false)
        #expect(status.status == 0, "\(status.stderr)")
        let report = try status.json(StatusJSON.self)
        #expect(report.store.hasPrefix("postgres://") && report.store.hasSuffix(String(url.split(separator: "/").last ?? "")))
        #expect(report.accounts.map(\.account) == ["alice", "bob"])
        #expect(report.accounts.last?.statusCode == "TGSM-AUTH-002")
        #expect(report.floodWaits.map(\.method) == ["contacts.resolveUsername"])
        #expect(report.queue?["queued"] == 3)
        let table = try await cli.run(["status", "--store", url], withStore: false)
        #expect(table.status == 0 && table.stdout.contains("flood waits (1 active)") && table.stdout.contains("queued 3"), "\(table.stdout)")
        // Watching: the queue reads through the store's pool and is kept across redraws; the
        // store still reads after each (the queue does not close the pool it borrows).
        let watched = try await cli.run(["status", "--watch", "--interval", "0.05", "--count", "3", "--store", url], withStore: false)
        #expect(watched.status == 0, "\(watched.stderr)")
        #expect(watched.stdout.components(separatedBy: "queued 3").count - 1 == 3 && watched.stdout.components(separatedBy: "alice").count - 1 >= 3,
                "\(watched.stdout)")

        let check = try await cli.run(["check", "--json", "--store", url], withStore: false)
        let findings = try check.json(CheckJSON.self)
        // The revoked account needs a person: exit 8, the most serious of the findings here.
        #expect(check.status == 8 && findings.exitCode == 8, "\(check.stdout)\(check.stderr)")
        func finding(_ check: String, _ fragment: String) -> FindingJSON? {
            findings.findings.first { $0.check == check && $0.message.contains(fragment) }
        }
        #expect(finding("store", "PostgreSQL database")?.level == "ok")
        #expect(finding("account alice", "session on DC 2")?.level == "ok", "\(check.stdout)")
        #expect(finding("account bob", "marked revoked")?.level == "problem")
        #expect(finding("flood wait", "alice contacts.resolveUsername")?.level == "problem")
        #expect(finding("job queue", "kinds tgsm run has no workers for: fancy (1)")?.level == "warning")
        #expect(finding("job queue", "accounts the store does not hold: ghost (1)")?.level == "warning")
        // Nothing SQLite-specific is said of a database: no store directory, no jobs.sqlite.
        #expect(!findings.findings.contains { $0.check == "store directory" || ($0.message + $0.guidance.joined()).contains("jobs.sqlite") }, "\(check.stdout)")

        // A database that cannot be reached is one finding saying so (exit 3, as other problems),
        // with what to look at, and nothing said of SQLite.
        let unreachable = "postgres://tgsm@127.0.0.1:1/nothing"
        let down = try await cli.run(["check", "--json", "--store", unreachable], withStore: false)
        #expect(!down.crashed && down.status == 3, "\(down.stdout)\(down.stderr)")
        let downReport = try down.json(CheckJSON.self)
        let downFinding = try #require(downReport.findings.first)
        #expect(downReport.findings.count == 1 && downFinding.check == "store" && downFinding.level == "problem", "\(down.stdout)")
        #expect(downFinding.message.contains("127.0.0.1:1") && !downFinding.message.contains("SQLite"), "\(downFinding.message)")
        #expect(downFinding.guidance.contains { $0.contains("pg_isready") }, "\(downFinding.guidance)")
        let downStatus = try await cli.run(["status", "--store", unreachable], withStore: false)
        #expect(!downStatus.crashed && downStatus.status == 1 && downStatus.stderr.contains("127.0.0.1:1"), "\(downStatus.stderr)")
    }

    /// `tgsm recover` on a PostgreSQL store: the database reached is its first step, then every
    /// session is checked against the DC as on SQLite; a session Telegram ended is exit 8 with the
    /// login to do.
    @Test func recoverChecksTheSessionsOfAPostgreSQLStore() async throws {
        let bed = try await ClusterRunTests.Bed.start(accounts: [("alice", "15550001", 1001, nil)], usernames: [])
        do {
            try await recover(bed)
        } catch {
            try? await bed.close()
            throw error
        }
        try await bed.close()
    }

    private func recover(_ bed: ClusterRunTests.Bed) async throws {
        try await bed.run {
            let cli = CLI(store: bed.database.url, environment: bed.environment)
            let recovered = try await cli.run(["recover"])
            #expect(recovered.status == 0, "\(recovered.stdout)\(recovered.stderr)")
            #expect(recovered.stdout.contains("1. store postgres://") && recovered.stdout.contains("PostgreSQL, reachable"), "\(recovered.stdout)")
            #expect(recovered.stdout.contains("alice: valid (user 1001)"), "\(recovered.stdout)")
            let salvage = try await cli.run(["recover", "--salvage"])
            #expect(salvage.status == 2 && salvage.stderr.contains("PostgreSQL store's pages") && salvage.stdout.isEmpty, "\(salvage.stdout)\(salvage.stderr)")
            bed.dc.core.withState { state in
                for keyID in state.authKeyIDs(dc: 1) { state.revokeAuthorization(dc: 1, keyID: keyID) }
            }
            let lost = try await cli.run(["recover"])
            #expect(lost.status == 8 && lost.stdout.contains("alice: needs a login") && lost.stdout.contains("tgsm auth --account alice"),
                    "\(lost.stdout)\(lost.stderr)")
        }
    }
}
