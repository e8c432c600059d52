import MTProto
import SessionManager
import Workers

/// The exit codes of every tgsm command (docs/CLI.md). Stable: scripts branch on them.
enum CLIExit: Int32, CaseIterable {
    case ok = 0
    case failure = 1
    case usage = 2
    /// `check` found something that needs a person.
    case problems = 3
    /// No such store, account, backup or job.
    case notFound = 4
    /// The store file is damaged (no usable backup) or is not a store.
    case storeDamaged = 5
    /// Another live process owns the account.
    case leaseHeld = 6
    /// An active flood wait or send-code deadline (`check`).
    case rateLimited = 7
    /// An account is marked revoked/unauthorized/duplicated/deactivated (`check`).
    case accountMarked = 8
    /// The store is encrypted and the key is missing or wrong.
    case encryptionKey = 9
    /// The output file exists and --force was not given.
    case fileExists = 10
}

/// A failure already phrased for a person (what happened, why, what to do), with its exit code.
struct CLIFailure: Error {
    var exit: CLIExit
    var message: String

    init(_ exit: CLIExit, _ message: String) {
        self.exit = exit
        self.message = message
    }

    init(_ error: SessionStoreError) {
        let exit: CLIExit = switch error {
        case .damagedWithoutBackup, .notAStore, .corruptRecord: .storeDamaged
        case .wrongEncryptionKey, .encryptionKeyRequired, .encryptionKeyChanged, .keyFile: .encryptionKey
        case .leaseHeld, .fenced: .leaseHeld
        case .invalidProxy, .backupFailed, .database, .filesystem: .failure
        }
        self.init(exit, "\(error) [\(error.code)]")
    }

    init(_ error: JobQueueError) {
        let exit: CLIExit = switch error {
        case .notFound: .notFound
        case .invalidJob: .usage
        case .claimLost, .invalidTransition, .storage, .storageInDoubt: .failure
        }
        self.init(exit, "\(error)")
    }

    init(_ error: SessionImportError) { self.init(.failure, "\(error)") }

    init(_ error: SessionExportError) {
        if case .fileExists = error { self.init(.fileExists, "\(error)") } else { self.init(.failure, "\(error)") }
    }
}
