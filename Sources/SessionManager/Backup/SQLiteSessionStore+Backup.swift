import Logging
import Foundation
import GRDB
import MTProto

/// Verified backups: an online copy (SQLite's backup API, consistent while writers run), checked
/// with `integrity_check` and the store's own checks, with its SHA-256 in a sidecar beside it.
extension SQLiteSessionStore {
    /// Takes a verified backup now and prunes to the configured number of generations.
    @discardableResult
    public func backup(reason: BackupRecord.Reason = .manual) throws(SessionStoreError) -> BackupRecord {
        let result: Result<BackupRecord, SessionStoreError> = backupLock.withLock { _ in
            do throws(SessionStoreError) { return .success(try makeBackup(reason: reason)) } catch { return .failure(error) }
        }
        return try result.get()
    }

    /// Takes a scheduled backup when the newest one is older than `interval` seconds (default: the
    /// options' `backupInterval`). A backup stamped later than now (taken while the clock was
    /// ahead, before NTP stepped it back) does not count: it would hold the schedule off until the
    /// clock caught up with it.
    @discardableResult
    public func backupIfDue(interval: Double? = nil) throws(SessionStoreError) -> BackupRecord? {
        let now = clock.now().seconds
        let newest = BackupCatalog(directory: backupDirectory).entries().map(\.createdAt).filter { $0 <= now }.max()
        if let newest, now - newest < (interval ?? options.backupInterval) { return nil }
        return try backup(reason: .scheduled)
    }

    /// Runs `backupIfDue(interval:)` every so often until cancelled (`tgsm run` runs it for its whole
    /// life); failures are logged, never fatal. It looks a quarter interval apart (at least 1 s, at
    /// most 10 min), so a backup is at most that late, and a process started long after the newest
    /// backup takes one at once.
    /// `reporting`: where a failed backup is said (default the store's logger; `tgsm run` passes
    /// its own, since the store's is quiet unless --verbose and a failing schedule must be heard).
    public func runBackupSchedule(interval: Double? = nil, reporting: Logger? = nil) async {
        let interval = interval ?? options.backupInterval
        let pause = max(1, min(interval / 4, 600))
        let logger = reporting ?? self.logger
        while !Task.isCancelled {
            do { try backupIfDue(interval: interval) } catch {
                logger.error("scheduled backup failed; the schedule tries again, and `tgsm session backup` takes one by hand",
                             metadata: ["error": "\(error)", "directory": "\(backupDirectory)"])
            }
            do { try await clock.sleep(for: pause) } catch { return }
        }
    }

    public func recordedBackups() async throws(SessionStoreError) -> [BackupRecord] {
        try await read("list backups") { db in
            try Row.fetchAll(db, sql: "SELECT file, created_at, size, sha256, commit_seq, reason FROM backup ORDER BY commit_seq DESC, created_at DESC")
                .compactMap { row in
                    guard let file = row.string("file"), let created = row.double("created_at"), let size = row.int64("size"),
                          let sha = row.string("sha256"), let sequence = row.int64("commit_seq")
                    else { return nil }
                    return BackupRecord(file: file, createdAt: UnixTime(seconds: created), size: size, sha256: sha, commitSequence: sequence,
                                        reason: row.string("reason").flatMap(BackupRecord.Reason.init(rawValue:)) ?? .manual)
                }
        }
    }

    private func makeBackup(reason: BackupRecord.Reason) throws(SessionStoreError) -> BackupRecord {
        let now = clock.now()
        let stamp = Int64(now.seconds * 1000)
        let staging = backupDirectory + "/.staging-\(getpid())-\(stamp).sqlite"
        defer { FileSystem.removeFile(staging); FileSystem.removeFile(staging + "-journal") }
        try FileSystem.createPrivateFile(staging)
        let sequence: Int64
        do {
            let copy = try DatabaseQueue(path: staging)
            try pool.backup(to: copy)
            // The copy inherits the WAL flag; a backup is a single self-contained file.
            try copy.writeWithoutTransaction { db in _ = try String.fetchOne(db, sql: "PRAGMA journal_mode = DELETE") }
            let verdict = try copy.read { db in try StoreInspector.verdict(db) }
            try copy.close()
            guard case .good(let copied) = verdict else { throw SessionStoreError.backupFailed(reason: "the copy failed verification: \(verdict)") }
            sequence = copied
        } catch let error as SessionStoreError {
            throw error
        } catch let error as DatabaseError where error.resultCode.primaryResultCode == .SQLITE_FULL {
            // SQLite's own text here is "not an error" (the copy's connection had none of its own).
            throw .backupFailed(reason: "the disk holding \(backupDirectory) is full (SQLite error 13); free space there "
                + "(old `.replaced-*`/`.damaged-*` files in the store directory can go once looked at) and take the backup again",
                failure: .full)
        } catch {
            throw .backupFailed(reason: "\(error)", failure: DatabaseFailure(error))
        }
        guard let size = FileSystem.size(staging), let sha = FileSystem.sha256Hex(staging) else {
            throw .backupFailed(reason: "the copy cannot be read back")
        }
        let name = String(format: "sessions-%012lld-%lld-%d.sqlite", sequence, stamp, getpid())
        let sidecar = BackupCatalog.Sidecar(file: name, createdAt: now.seconds, size: size, sha256: sha, commitSequence: sequence, reason: reason.rawValue)
        let sidecarData: Data
        do { sidecarData = try JSONEncoder().encode(sidecar) } catch { throw .backupFailed(reason: "\(error)") }
        FileSystem.syncFile(staging)
        try FileSystem.moveFile(staging, backupDirectory + "/" + name)
        try FileSystem.writeFile(sidecarData, to: backupDirectory + "/" + name + ".json")
        FileSystem.syncFile(backupDirectory)
        let removed = BackupCatalog(directory: backupDirectory).prune(keep: options.backupGenerations, now: now)
        let record = sidecar.record
        do {
            try pool.writeWithoutTransaction { db in
                try db.inTransaction(.immediate) {
                    try db.execute(sql: "INSERT OR REPLACE INTO backup(file, created_at, size, sha256, commit_seq, reason) VALUES (?, ?, ?, ?, ?, ?)",
                                   arguments: [name, now.seconds, size, sha, sequence, reason.rawValue])
                    for file in removed { try db.execute(sql: "DELETE FROM backup WHERE file = ?", arguments: [file]) }
                    try Self.bumpCommitSequence(db)
                    return .commit
                }
            }
        } catch {
            throw .backupFailed(reason: "the backup \(name) was made but not recorded: \(error)", failure: DatabaseFailure(error))
        }
        logger.info("session store backed up", metadata: ["backup": "\(name)", "reason": "\(reason.rawValue)", "size": "\(size)"])
        return record
    }
}
