import Foundation
import Logging

/// What happens before the store's file is opened: it is inspected, and when it is damaged,
/// missing, not a store, or older than a verified backup, the newest good backup takes its place
/// and the damaged file is moved aside (never deleted). Everything it does is logged.
struct StoreRecovery {
    let path: String
    let backupDirectory: String
    let options: SQLiteStoreOptions

    var logger: Logger { options.logger }
    var catalog: BackupCatalog { BackupCatalog(directory: backupDirectory) }

    func prepare() throws(SessionStoreError) -> SQLiteSessionStore.OpenOutcome {
        // Before anything opens the file (opening creates a -wal).
        let lostWAL = FileSystem.exists(path + "-shm") && !FileSystem.exists(path + "-wal")
        // Listed before the file is read: a backup another process takes meanwhile is newer than
        // what the inspection saw, and must not pass for proof that this file lost commits.
        let backupsBefore = catalog.entries()
        // Who uses the file before this process reads it: reading a file whose WAL went missing
        // under its user can upset that user, and a user still alive but not holding its locks at
        // the second look is still a user. One that has exited meanwhile is not (see `inUse`).
        let usersBefore = Self.otherUsers(of: path)
        let verdict = StoreInspector.inspect(path, busyTimeout: options.busyTimeout)
        // What reads as damage here may be another process's file in the middle of something (its
        // WAL deleted under it, a lock): a backup put in place under it would end that process and
        // throw away what it holds beyond the backup. Before, `tgsm status` did just that to a run.
        let users: [Int32]
        switch verdict {
        case .damaged, .foreign: users = Array(Set(usersBefore.filter(FileSystem.processIsAlive) + Self.otherUsers(of: path))).sorted()
        default: users = []
        }
        switch verdict {
        case .good(let sequence):
            // A backup newer than the file means commits were lost (a deleted WAL, a file copied back):
            // the backup is the better state. Only sidecars are read until one is newer.
            let newer = backupsBefore.filter { $0.commitSequence > sequence }
            let inUse = newer.isEmpty ? [] : Self.otherUsers(of: path)
            if !inUse.isEmpty {
                logger.warning("session store is behind its backups, but another process has it open: it is used as it is, not restored under that process",
                               metadata: ["path": "\(path)", "pids": "\(inUse)"])
            } else if !newer.isEmpty {
                let reason = "the file's commit counter \(sequence) is behind its backups'" + (lostWAL ? " (its WAL is missing)" : "")
                // A good file stays in use when no newer backup can be checked now (a full disk).
                if let restored = try restoreNewestGood(from: newer, reason: reason, throwsWhenUnverifiable: false) { return restored }
            }
            if lostWAL {
                logger.warning("session store's WAL is missing; commits made after its last checkpoint may be lost, and no newer backup exists",
                               metadata: ["path": "\(path)"])
            }
            return .opened
        case .absent, .empty:
            let entries = catalog.entries()
            if !entries.isEmpty, let restored = try restoreNewestGood(from: entries, reason: verdict == .absent ? "the store file is missing" : "the store file is empty") {
                return restored
            }
            return .created
        case .damaged(let reason):
            if !users.isEmpty { throw Self.inUse(path: path, reading: "reads as damaged here (\(reason))", users: users) }
            return try recover(reason: reason)
        case .unreachable(let reason):
            // Not damage: restoring a backup over a file this process merely cannot open would
            // throw away whatever the file holds beyond the backup.
            throw .filesystem(path: path, operation: "open the store file (nothing was changed)", reason: reason)
        case .foreign(let reason):
            if !users.isEmpty { throw Self.inUse(path: path, reading: "does not read as a session store here (\(reason))", users: users) }
            if let restored = try restoreNewestGood(from: catalog.entries(), reason: "not a session store: \(reason)") { return restored }
            logger.error("the store path holds something that is not a session store", metadata: ["path": "\(path)", "reason": "\(reason)"])
            throw .notAStore(path: path, reason: reason)
        }
    }

    /// The other processes that have the store open (SQLite's locks on it and its `-shm`).
    static func otherUsers(of path: String) -> [Int32] {
        FileSystem.otherProcessesLocking([path, path + "-shm"])
    }

    static func inUse(path: String, reading: String, users: [Int32]) -> SessionStoreError {
        let who = users.map { "\($0)" }.joined(separator: ", ")
        return .filesystem(path: path, operation: "open the store file (nothing was changed: no backup is put in place under a process using it)",
                           reason: "it \(reading), but process \(who) has it open (a `tgsm run`?). Its -wal may have been deleted or moved "
                               + "under it, or it is mid-write. Stop that process (it saves its sessions as it ends), then run `tgsm check`: "
                               + "if the file is still damaged then, the next command restores the newest verified backup")
    }

    /// Replaces a damaged file with the newest good backup, or throws the typed error saying there is none.
    func recover(reason: String) throws(SessionStoreError) -> SQLiteSessionStore.OpenOutcome {
        if let restored = try restoreNewestGood(from: catalog.entries(), reason: reason) { return restored }
        logger.error("session store is damaged and no verified backup exists", metadata: ["path": "\(path)", "reason": "\(reason)"])
        throw .damagedWithoutBackup(path: path, reason: reason, backupDirectory: backupDirectory)
    }

    /// Tries the backups newest first; the first that verifies replaces the store file, which is
    /// moved aside under `asideAs` ("damaged" in recovery, "replaced" for an operator's restore).
    /// - Parameter throwsWhenUnverifiable: when no backup could be used and some could not be
    ///   verified here (not found bad), throw rather than return nil.
    func restoreNewestGood(from entries: [BackupCatalog.Sidecar], reason: String,
                           asideAs: String = "damaged", throwsWhenUnverifiable: Bool = true) throws(SessionStoreError) -> SQLiteSessionStore.OpenOutcome? {
        let staging = backupDirectory + "/.restore-\(getpid()).sqlite"
        defer { FileSystem.removeFile(staging) }
        var unverifiable: [String] = []
        for entry in entries {
            switch catalog.check(entry, copyTo: staging, busyTimeout: options.busyTimeout) {
            case .good:
                break
            case .bad(let problem):
                logger.warning("backup failed verification and was set aside", metadata: ["backup": "\(entry.file)", "problem": "\(problem)"])
                catalog.quarantine(entry)
                continue
            case .unverifiable(let problem):
                logger.warning("backup could not be verified now; it is kept", metadata: ["backup": "\(entry.file)", "problem": "\(problem)"])
                unverifiable.append("\(entry.file): \(problem)")
                FileSystem.removeFile(staging)
                continue
            }
            let movedTo = moveAside(reason: asideAs)
            // Before the copy goes in place: what Telegram said since the backup stays true.
            if let movedTo { TelegramFactsCarryOver.carry(from: movedTo, into: staging, busyTimeout: options.busyTimeout, logger: logger) }
            try FileSystem.moveFile(staging, path)
            FileSystem.syncFile((path as NSString).deletingLastPathComponent)
            logger.warning("session store restored from backup", metadata: [
                "path": "\(path)", "reason": "\(reason)", "backup": "\(entry.file)",
                "backup_commit": "\(entry.commitSequence)", "damaged_file_moved_to": "\(movedTo ?? "none")",
            ])
            return .restored(backup: entry.file, reason: reason, damagedFileMovedTo: movedTo)
        }
        guard unverifiable.isEmpty || !throwsWhenUnverifiable else {
            // A backup that may be good was not tried: better no store change than the wrong one
            // (a damaged file given up, an empty store created) until there is room to check it.
            throw .filesystem(path: backupDirectory, operation: "verify a backup to restore it (\(reason); nothing was changed and no backup was set aside)",
                              reason: unverifiable.joined(separator: "; "))
        }
        return nil
    }

    /// Moves the store file and its -wal/-shm aside under a timestamped name; returns the new name
    /// of the main file, if there was one.
    @discardableResult
    func moveAside(reason: String) -> String? {
        let stamp = Int64(options.clock.now().seconds * 1000)
        let target = "\(path).\(reason)-\(stamp)"
        var moved: String?
        for suffix in ["", "-wal", "-shm"] where FileSystem.exists(path + suffix) {
            if (try? FileSystem.moveFile(path + suffix, target + suffix)) != nil, suffix.isEmpty { moved = target }
        }
        return moved
    }
}
