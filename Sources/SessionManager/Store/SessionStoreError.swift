/// What can go wrong with the session store. Each case says what happened, why, and what to do;
/// `code` is stable for scripts and dashboards. No case carries a secret.
public enum SessionStoreError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The store file is damaged (or missing its committed data) and no verified backup exists.
    case damagedWithoutBackup(path: String, reason: String, backupDirectory: String)
    /// The file at the store's path is not a tgsm session store, and no backup of one exists.
    case notAStore(path: String, reason: String)
    /// The store's secrets are encrypted under a different key than the one given.
    case wrongEncryptionKey(path: String, source: String)
    /// The store's secrets are encrypted and no key was given.
    case encryptionKeyRequired(path: String)
    /// Another process re-keyed the store (`rekey`) since this one opened it with the old key.
    case encryptionKeyChanged(path: String)
    /// The key file cannot be used.
    case keyFile(path: String, reason: String)
    /// A re-key was asked for without a new key (`StoreEncryption.none`); nothing was changed.
    case newKeyRequired(path: String)
    /// Another live process owns the account.
    case leaseHeld(Lease)
    /// A write carried a lease token that is no longer the account's (another process took over).
    case fenced(account: AccountID, token: LeaseToken, current: Lease?)
    /// One stored record failed its check (a damaged row the file-level checks did not catch).
    case corruptRecord(account: AccountID, what: String)
    case invalidProxy(reason: String)
    /// A backup could not be made or verified; the store itself is unaffected. `failure` is the
    /// database engine's kind of failure, when it was one.
    case backupFailed(reason: String, failure: DatabaseFailure = .other)
    /// The database engine failed; `failure` says how, and chooses the advice.
    case database(operation: String, reason: String, failure: DatabaseFailure = .other)

    /// `corruptRecord` for an account's terminal mark this version cannot read (a state a newer tgsm
    /// wrote, a hand edit): the one record whose readers refuse the account rather than run it on a
    /// guess (`AccountStatusStore.guardedStatus`).
    public static func unreadableAccountStatus(account: AccountID, detail: String) -> SessionStoreError {
        .corruptRecord(account: account, what: "\(accountStatusRecord) (\(detail))")
    }

    static let accountStatusRecord = "account status"

    /// What could not be read, when this is `unreadableAccountStatus`'s error.
    public var unreadableAccountStatus: String? {
        guard case .corruptRecord(_, let what) = self, what.hasPrefix(Self.accountStatusRecord) else { return nil }
        return what
    }

    /// `database` for what the engine threw: its message as the reason, its kind as the failure.
    public static func databaseFailed(operation: String, error: any Error) -> SessionStoreError {
        .database(operation: operation, reason: "\(error)", failure: DatabaseFailure(error))
    }

    /// The database engine's kind of failure, for the cases that carry one.
    public var databaseFailure: DatabaseFailure? {
        switch self {
        case .database(_, _, let failure), .backupFailed(_, let failure): failure
        default: nil
        }
    }
    /// A file or directory could not be used.
    case filesystem(path: String, operation: String, reason: String)
    /// A salvage (`SQLiteSessionStore.salvage`) was not done, and nothing was changed.
    case salvageRefused(path: String, reason: String)

    public var code: String {
        switch self {
        case .damagedWithoutBackup: "store.damaged_without_backup"
        case .notAStore: "store.not_a_store"
        case .wrongEncryptionKey: "store.wrong_encryption_key"
        case .encryptionKeyRequired: "store.encryption_key_required"
        case .encryptionKeyChanged: "store.encryption_key_changed"
        case .keyFile: "store.key_file"
        case .newKeyRequired: "store.new_key_required"
        case .leaseHeld: "store.lease_held"
        case .fenced: "store.fenced"
        case .corruptRecord: "store.corrupt_record"
        case .invalidProxy: "store.invalid_proxy"
        case .backupFailed: "store.backup_failed"
        case .database: "store.database"
        case .filesystem: "store.filesystem"
        case .salvageRefused: "store.salvage_refused"
        }
    }

    public var description: String {
        switch self {
        case .damagedWithoutBackup(let path, let reason, let backups):
            "the session store \(path) is damaged (\(reason)) and \(backups) holds no verified backup of it; "
                + "it was left in place untouched. Restore a copy of the store directory from your own backups, or run "
                + "`tgsm recover --salvage`: it builds a new store from what still reads in the file (the sessions whose rows pass their "
                + "checks, the flood waits and send-code deadlines), keeps the file aside as found, and lists the accounts to log in again. "
                + "Do not just move the file aside: a new store would not know the limits Telegram imposed, and the next login or call "
                + "would walk into them."
        case .notAStore(let path, let reason):
            "\(path) is not a tgsm session store (\(reason)) and no backup of one exists; it was left untouched. "
                + "Point the store at another directory, or move the file away if it is not needed."
        case .wrongEncryptionKey(let path, let source):
            "the secrets in \(path) are encrypted under another key than the one from \(source); nothing was decrypted. "
                + "Give the key the store was created with, or its last re-key's (`--key-file`, TGSM_KEY_FILE; a passphrase or key where a program gave one)."
        case .encryptionKeyRequired(let path):
            "the secrets in \(path) are encrypted and no key was given; pass the store's key (`--key-file`, TGSM_KEY_FILE; a "
                + "passphrase or key where a program gave one). If the key is lost, nobody can read those secrets (that is the point "
                + "of it). On SQLite, a backup taken before encryption was turned on holds them in clear (`tgsm session backup --list "
                + "--verify` says which): move the file aside (`mv \(path) \(path).sealed`), then `tgsm session restore --backup FILE`. "
                + "Without one, set the store file and its backups/ directory aside (the sealed backups would be put back by the next "
                + "command otherwise; the job queue, jobs.sqlite, stays), or on PostgreSQL use a new database, and log the accounts in "
                + "again (`tgsm auth`)."
        case .encryptionKeyChanged(let path):
            "the secrets in \(path) were sealed under a new key (`tgsm session rekey`) since this process opened the store with the old one; "
                + "nothing was written or read with the old key. Restart this process with the store's new key."
        case .keyFile(let path, let reason):
            "the key file \(path) cannot be used: \(reason). A key file holds 32 random bytes, raw or as 64 hex "
                + "digits (e.g. `head -c 32 /dev/urandom > key`), mode 0600."
        case .newKeyRequired(let path):
            "re-keying \(path) needs a new key (a key file, a passphrase or a key); nothing was changed. Give the new key. Turning "
                + "encryption off is not supported: export each account (`tgsm session export --account NAME --format telethon-string "
                + "--output FILE`) and import it into a new store opened without a key; its proxy, cached peers, flood waits and future "
                + "auth tokens do not move that way."
        case .leaseHeld(let lease):
            "account \(lease.account) is owned by \(lease.holder) (since \(lease.startedAt), lease expires \(lease.expiresAt), "
                + "token \(lease.token)); two owners would get the key revoked with AUTH_KEY_DUPLICATED. Stop that process, "
                + "or wait for its lease to expire if it died on another host."
        case .fenced(let account, let token, let current):
            "a write for \(account) carried lease token \(token), but "
                + (current.map { "the account is now owned by \($0.holder) with token \($0.token)" } ?? "the account has no lease")
                + "; the write was rejected. This process lost ownership: stop its connections and take the lease again."
        case .corruptRecord(let account, let what) where what.hasPrefix(Self.accountStatusRecord):
            // A restore copies the mark back, and a login or an import reads it first: neither helps.
            "the stored \(what) of \(account) cannot be read; it was not used, and the account is not run on a guess. A newer tgsm "
                + "may have written it: that version reads it. Otherwise clear it with `tgsm session clear-mark --account \(account)`."
        case .corruptRecord(let account, let what):
            "the stored \(what) of \(account) failed its integrity check; it was not used. Restore the newest backup "
                + "(reopening the store does so when the file is damaged) or log the account in again."
        case .invalidProxy(let reason):
            "the proxy link is not usable: \(reason)" + (reason.hasSuffix(".") ? "" : ".")
        case .backupFailed(let reason, .busy):
            // Space and permissions are fine; somebody holds the file.
            "a backup or restore of the session store failed: \(reason). Another program holds the store file in a transaction (a `sqlite3` "
                + "shell, a backup tool): let it finish, then back up again. The store itself is intact."
        case .backupFailed(let reason, _):
            "a backup or restore of the session store failed: \(reason). The store itself is intact; check free space and "
                + "permissions of the backup directory."
        case .database(let operation, let reason, let failure):
            "the session store failed to \(operation): \(reason)" + Self.advice(for: failure)
        case .salvageRefused(let path, let reason):
            "\(path) was not salvaged: \(reason). Nothing was changed; `tgsm check` says what the store needs."
        case .filesystem(let path, let operation, let reason):
            "cannot \(operation) \(path): \(reason); check the path, free space and permissions."
        }
    }

    /// What to do, for each kind of engine failure (after the reason, so it starts with a stop).
    private static func advice(for failure: DatabaseFailure) -> String {
        switch failure {
        case .busy:
            // Past the busy timeout: nothing is wrong with the file.
            ". Another program holds the SQLite file in a transaction (a backup tool, a `sqlite3` shell, a process stuck "
                + "mid-write): let it finish or stop it; the store itself is fine."
        case .full:
            ". A disk is full (the store's, or the temporary directory's for a re-key): free space there. Nothing stored was "
                + "lost and the file is not damaged: do not restore a backup for this (it would lose what changed since)."
        case .notWritable:
            ". The store file or its directory cannot be written: a read-only file system, or owner and mode that are not "
                + "the user running tgsm's (the file is that user's, mode 0600). Fix that; the store itself is fine."
        case .cannotOpen:
            ". SQLite could not open the file: check that its directory exists and is this user's, that no directory stands "
                + "at the file's path, and the process's limit of open files (`ulimit -n`; each connection holds a few)."
        case .ioError:
            ". The disk reported an I/O error: look for disk faults in the system log (`dmesg`), then run `tgsm check`, "
                + "which says whether the file is damaged and what to do."
        case .damaged:
            ". The store file is damaged: run `tgsm check`, which says what is wrong; `tgsm session restore` puts the newest "
                + "verified backup in place (reopening the store does so by itself)."
        case .postgres:
            ". Check that the PostgreSQL server is up and reachable from this host, and that the URL, user and password "
                + "($PGPASSWORD) are right; an error with a SQLSTATE is the server's own, explained by its message."
        case .other:
            ". If this repeats: on SQLite, check the disk (free space, I/O errors in the system log), then run `tgsm check`, "
                + "which says whether the file is damaged and what to do (a full disk is not damage: restoring a backup for it "
                + "loses what changed since); on PostgreSQL, check that the server is up and reachable and that the URL, user "
                + "and password ($PGPASSWORD) are right."
        }
    }
}
