import Foundation
import GRDB
import MTProto
import SessionManager

/// What a salvage kept of a damaged queue file (`SQLiteJobQueue.salvage`).
public struct JobQueueSalvageReport: Sendable, Equatable {
    /// Ids of jobs that may be lost: between the last job read from the start and the last read
    /// from the end. `through` is nil when the end could not be read and the highest id ever
    /// given is unknown too.
    public struct IDRange: Sendable, Equatable {
        public var from: Int64
        public var through: Int64?
    }

    /// A job in `possiblyLost` as the kept history tells it (the history sits in other pages of the
    /// file): what it was, and how far it got, so an operator enqueues again only what had not ended.
    public struct LostJob: Sendable, Equatable {
        public var id: JobID
        public var kind: JobKind
        public var account: AccountID
        /// Its last change the history kept: `enqueued` when nothing happened to it since.
        public var lastEvent: JobHistoryEntry.Event
        public var lastChangeAt: UnixTime
        /// The error of that change (a retry's, a dead letter's), when it had one.
        public var lastError: String?

        /// Whether it had ended (completed, dead or cancelled): nothing of it waits to run.
        public var hadEnded: Bool { [.completed, .dead, .cancelled].contains(lastEvent) }
    }

    /// Jobs listed in `lostJobs` at most; the rest of a larger range are counted, not listed.
    public static let lostJobsListed = 1000

    public var jobsKept: Int
    public var jobsKeptByState: [JobState: Int]
    public var jobsReadInFull: Bool
    /// nil when every job read, or when reading broke off with nothing lost between its two ends.
    public var possiblyLost: IDRange?
    /// The jobs of `possiblyLost` the kept history names (a week of it), lowest id first, at most
    /// `lostJobsListed`; an id it does not name has no trace left (older, purged, or its history lost too).
    public var lostJobs: [LostJob] = []
    /// How many the history names in all, when more than `lostJobsListed`.
    public var lostJobsNamed = 0
    /// Jobs a worker held when the file was damaged: queued again (dead on their last attempt), as
    /// a rescue at their lease's end would, since their workers stopped with the damaged file.
    /// Each may have run already.
    public var claimsRescued: Int
    public var historyRowsKept: Int
    public var historyReadInFull: Bool
    /// The message archive that shares the file (`SQLiteMessageArchive`): messages and resolved
    /// peers kept.
    public var archivedMessagesKept: Int
    public var resolvedPeersKept: Int
    /// False when the archived messages broke off at damage: the archive's cursors ("complete
    /// through id N") were then dropped, so history jobs fetch again what the damage took.
    public var archiveReadInFull: Bool
    /// Where the damaged file is now, as it was found.
    public var damagedFileMovedTo: String
}

/// Builds a new queue file from what still reads in a damaged one, instead of the two ways out
/// before: a specialist's `sqlite3 .recover`, or an empty queue and every job enqueued again from
/// memory. Jobs are read by id from both ends (`DamagedSQLiteFile`), so the ids that may be lost
/// are exactly the ones between the two places reading broke off; every job kept is the row as it
/// was (state, attempts, idempotency key; a running one rescued, since its worker stopped with the
/// damaged file), and ids are never given out again.
struct SQLiteJobQueueSalvage {
    let path: String
    let busyTimeout: Double
    let now: UnixTime

    func salvage() throws(JobQueueError) -> JobQueueSalvageReport {
        guard FileSystem.exists(path) else { throw .salvageRefused(path: path, reason: "there is no queue file") }
        if let problem = isIntact() { throw .salvageRefused(path: path, reason: problem) }
        let users = FileSystem.otherProcessesLocking([path, path + "-shm"]).filter(FileSystem.processIsAlive)
        if !users.isEmpty {
            throw .salvageRefused(path: path, reason: "process \(users.map(String.init).joined(separator: ", ")) has it open (a `tgsm run`?); "
                + "stop it first, so that nothing writes the file while it is read")
        }
        let source = path + ".salvage-source-\(getpid())"
        let staging = path + ".salvage-\(getpid())"
        let scratch = [source, staging].flatMap { file in ["", "-wal", "-shm", "-journal"].map { file + $0 } }
        for file in scratch { FileSystem.removeFile(file) }
        defer { for file in scratch { FileSystem.removeFile(file) } }
        var report: JobQueueSalvageReport
        do {
            for suffix in ["", "-wal"] where FileSystem.exists(path + suffix) { try FileSystem.copy(path + suffix, source + suffix) }
            try FileSystem.createPrivateFile(staging)
            report = try carry(from: source, into: staging)
        } catch let error as JobQueueError {
            throw error
        } catch {
            throw .storage("the damaged queue \(path) could not be salvaged into a new file (\(error)); nothing was changed")
        }
        let aside = "\(path).damaged-\(Int64(exactly: (now.seconds * 1000).rounded(.down)) ?? 0)"
        do {
            for suffix in ["", "-wal", "-shm"] where FileSystem.exists(path + suffix) { try FileSystem.moveFile(path + suffix, aside + suffix) }
            try FileSystem.moveFile(staging, path)
        } catch {
            // The damaged file goes back rather than leave no queue at its path (the next process
            // would start an empty one).
            for suffix in ["", "-wal", "-shm"] where FileSystem.exists(aside + suffix) { try? FileSystem.moveFile(aside + suffix, path + suffix) }
            throw .storage("the salvaged queue could not be put in place of \(path) (\(error)); the damaged file was left where it was")
        }
        FileSystem.syncFile((path as NSString).deletingLastPathComponent)
        report.damagedFileMovedTo = aside
        return report
    }

    /// Why the file needs no salvage (it opens and passes `integrity_check`); nil when it is damaged.
    private func isIntact() -> String? {
        var configuration = Configuration()
        configuration.readonly = true
        configuration.busyMode = .timeout(busyTimeout)
        guard let queue = try? DatabaseQueue(path: path, configuration: configuration) else { return nil }
        defer { try? queue.close() }
        guard (try? queue.read({ db in try String.fetchAll(db, sql: "PRAGMA integrity_check(1)") })) == ["ok"] else { return nil }
        return "the queue is not damaged (it passes SQLite's integrity_check); it opens as it is"
    }

    private func carry(from source: String, into staging: String) throws -> JobQueueSalvageReport {
        let old: DatabaseQueue
        do {
            old = try DamagedSQLiteFile.open(source, busyTimeout: busyTimeout)
        } catch where DatabaseFailure(error) == .damaged {
            throw JobQueueError.salvageRefused(path: path, reason: "SQLite cannot read the file's list of tables (\((error as? DatabaseError)?.message ?? "\(error)")), "
                + "so no job in it can be found. Keep the file: `sqlite3 \(path) .recover` may still read rows from it")
        }
        defer { try? old.close() }
        var configuration = Configuration()
        configuration.busyMode = .timeout(busyTimeout)
        let new = try DatabaseQueue(path: staging, configuration: configuration)
        defer { try? new.close() }
        // The queue's file also holds the message archive ("jobs.archive.*"): both come along.
        var migrator = DatabaseMigrator()
        SQLiteJobQueue.registerMigrations(in: &migrator)
        SQLiteMessageArchive.registerMigrations(in: &migrator)
        try migrator.migrate(new)
        return try old.inDatabase { old in
            let known = Set(migrator.migrations)
            if let applied = try? String.fetchAll(old, sql: "SELECT identifier FROM grdb_migrations WHERE identifier LIKE 'jobs.%'"),
               let newer = applied.first(where: { !known.contains($0) }) {
                throw JobQueueError.salvageRefused(path: path, reason: "a newer tgsm wrote it (migration \(newer)); salvage it with that version")
            }
            return try new.inDatabase { db in
                var report: JobQueueSalvageReport?
                try db.inTransaction {
                    report = try copyAll(from: old, into: db)
                    return .commit
                }
                guard let report else { throw JobQueueError.storage("the salvage's transaction ended without a report") }
                return report
            }
        }
    }

    /// The jobs and their history, the id sequence, and which ids may be lost.
    private func copyAll(from old: Database, into db: Database) throws -> JobQueueSalvageReport {
        // The history triggers would record every copied job as enqueued now: the old
        // history is copied instead, and the triggers come back after.
        let triggers = try String.fetchAll(db, sql: "SELECT sql FROM sqlite_master WHERE type = 'trigger' AND sql IS NOT NULL")
        for name in try String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE type = 'trigger'") {
            try db.execute(sql: "DROP TRIGGER \"\(name)\"")
        }
        var byState: [JobState: Int] = [:]
        let jobs = try copy("jobs", from: old, into: db) { row in
            if let state = row.string("state").flatMap(JobState.init(rawValue:)) { byState[state, default: 0] += 1 }
        }
        let history = try copy("job_history", from: old, into: db) { _ in }
        // Ids are never given out twice: the highest the old file ever gave stays the floor.
        if let sequences = try? Row.fetchAll(old, sql: "SELECT name, seq FROM sqlite_sequence") {
            for row in sequences {
                guard let name = row.string("name"), let seq = row.int64("seq") else { continue }
                try db.execute(sql: "DELETE FROM sqlite_sequence WHERE name = ? AND seq < ?", arguments: [name, seq])
                if try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM sqlite_sequence WHERE name = ?", arguments: [name]) == 0 {
                    try db.execute(sql: "INSERT INTO sqlite_sequence(name, seq) VALUES (?, ?)", arguments: [name, seq])
                }
            }
        }
        for sql in triggers { try db.execute(sql: sql) }
        // Nobody has the damaged file open (checked before), so no worker holds a claim in it any more.
        let rescued = try SQLiteJobQueue.rescueEveryClaim(db, now: now)
        if rescued > 0 {
            byState = [:]
            for row in try Row.fetchAll(db, sql: "SELECT state, COUNT(*) AS n FROM jobs GROUP BY state") {
                if let state = row.string("state").flatMap(JobState.init(rawValue:)), let count = row.int64("n") { byState[state] = Int(count) }
            }
        }
        let messages = try copy("messages", from: old, into: db) { _ in }
        let peers = try copy("resolved_peers", from: old, into: db) { _ in }
        // A cursor says every message up to its id is archived: kept only when every message read.
        if messages.read.readInFull { _ = try copy("message_cursors", from: old, into: db) { _ in } }
        var lost: JobQueueSalvageReport.IDRange?
        if !jobs.read.readInFull {
            func id(_ key: [DatabaseValue]?) -> Int64? { key?.first.flatMap { Int64.fromDatabaseValue($0) } }
            let from = (id(jobs.read.lastKeyFromStart) ?? 0) + 1
            // Damage at the very end: the highest id the old file gave, when that still reads.
            let through = id(jobs.read.lastKeyFromEnd).map { $0 - 1 }
                ?? (try? Int64.fetchOne(old, sql: "SELECT seq FROM sqlite_sequence WHERE name = 'jobs'")) ?? nil
            if through.map({ $0 >= from }) ?? true { lost = .init(from: from, through: through) }
        }
        var report = JobQueueSalvageReport(jobsKept: jobs.kept, jobsKeptByState: byState, jobsReadInFull: jobs.read.readInFull,
                                           possiblyLost: lost, claimsRescued: rescued, historyRowsKept: history.kept,
                                           historyReadInFull: history.read.readInFull, archivedMessagesKept: messages.kept,
                                           resolvedPeersKept: peers.kept, archiveReadInFull: messages.read.readInFull, damagedFileMovedTo: "")
        if let lost { (report.lostJobs, report.lostJobsNamed) = try Self.lostJobs(in: lost, history: db) }
        return report
    }

    /// The jobs of `range` the (copied) history names, each with its last change.
    private static func lostJobs(in range: JobQueueSalvageReport.IDRange, history db: Database) throws -> ([JobQueueSalvageReport.LostJob], Int) {
        let named = try Int.fetchOne(db, sql: "SELECT COUNT(DISTINCT job) FROM job_history WHERE job >= ?1 AND (?2 IS NULL OR job <= ?2)",
                                     arguments: [range.from, range.through]) ?? 0
        // Each job's last entry: the highest id among its rows.
        let rows = try Row.fetchAll(db, sql: """
            SELECT h.job, h.kind, h.account, h.event, h.at, h.error FROM job_history h
            JOIN (SELECT job, MAX(id) AS last FROM job_history WHERE job >= ?1 AND (?2 IS NULL OR job <= ?2) GROUP BY job ORDER BY job LIMIT ?3) l
              ON h.id = l.last
            ORDER BY h.job
            """, arguments: [range.from, range.through, JobQueueSalvageReport.lostJobsListed])
        let jobs = rows.compactMap { row -> JobQueueSalvageReport.LostJob? in
            guard let id = row.int64("job"), let kind = row.string("kind"), let account = row.string("account"),
                  let event = row.string("event").flatMap(JobHistoryEntry.Event.init(rawValue:)), let at = row.double("at")
            else { return nil }
            return .init(id: JobID(id), kind: JobKind(kind), account: AccountID(account), lastEvent: event, lastChangeAt: UnixTime(seconds: at),
                         lastError: row.string("error"))
        }
        return (jobs, named)
    }

    /// Copies the rows of `table` that read (every column both files have); counts what it kept.
    private func copy(_ table: String, from old: Database, into db: Database,
                      _ note: (Row) -> Void) throws -> (kept: Int, read: DamagedSQLiteFile.TableRead) {
        guard let shape = DamagedSQLiteFile.shape(of: table, in: old) else {
            // A queue file from before the archive has no messages table: nothing is missing from it.
            guard DamagedSQLiteFile.holds(table, in: old) else { return (0, DamagedSQLiteFile.TableRead()) }
            return (0, DamagedSQLiteFile.TableRead(rowsRead: 0, readInFull: false, failure: "its definition does not read"))
        }
        let current = try String.fetchAll(db, sql: "SELECT name FROM pragma_table_info(?)", arguments: [table])
        let columns = current.filter(Set(shape.columns).contains)
        let insert = "INSERT OR IGNORE INTO \(table)(\(columns.map { "\"\($0)\"" }.joined(separator: ", "))) "
            + "VALUES (\(columns.map { _ in "?" }.joined(separator: ", ")))"
        var kept = 0
        let read = try DamagedSQLiteFile.read(table, columns: columns, key: shape.key, from: old) { row in
            // A row that breaks a constraint (a CHECK on its state, a type) was damaged: not kept.
            guard (try? db.execute(sql: insert, arguments: StatementArguments(columns.map { row[$0] as DatabaseValue }))) != nil else { return }
            kept += db.changesCount
            if db.changesCount > 0 { note(row) }
        }
        return (kept, read)
    }
}

extension SQLiteJobQueue {
    /// Builds a new queue file at `path` from what still reads in the damaged one there
    /// (`SQLiteJobQueueSalvage`); the damaged file is moved aside as found (`PATH.damaged-MS`).
    /// Refused (`salvageRefused`), with nothing changed, when the file is not damaged, a newer
    /// tgsm wrote it, or another process has it open.
    public static func salvage(path: String, busyTimeout: Double = 10, now: UnixTime) throws(JobQueueError) -> JobQueueSalvageReport {
        try SQLiteJobQueueSalvage(path: path, busyTimeout: busyTimeout, now: now).salvage()
    }
}
