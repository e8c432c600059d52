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
    /// An account is marked revoked/unauthorized/duplicated/deactivated, or its mark cannot be read (`check`).
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
        // The file is fine; the account waits for a person, as `tgsm check` says (exit 8).
        case .corruptRecord where error.unreadableAccountStatus != nil: .accountMarked
        case .damagedWithoutBackup, .notAStore, .corruptRecord: .storeDamaged
        case .wrongEncryptionKey, .encryptionKeyRequired, .encryptionKeyChanged, .keyFile, .newKeyRequired: .encryptionKey
        case .leaseHeld, .fenced: .leaseHeld
        case .invalidProxy, .backupFailed, .database, .filesystem, .salvageRefused: .failure
        }
        self.init(exit, "\(error) [\(error.code)]")
    }

    init(_ error: JobQueueError) {
        let exit: CLIExit = switch error {
        case .notFound: .notFound
        case .invalidJob: .usage
        case .claimLost, .invalidTransition, .storage, .storageInDoubt, .salvageRefused: .failure
        case .unreadable: .storeDamaged
        }
        self.init(exit, "\(error)")
    }

    init(_ error: SessionImportError) { self.init(.failure, "\(error)") }

    /// An error of a store read through the engine-neutral protocols, which throw untyped: both
    /// engines throw `SessionStoreError`, anything else is said as it is.
    init(storeError error: any Error) {
        if let error = error as? SessionStoreError { self.init(error) } else { self.init(.failure, "\(error)") }
    }

    /// In the command's own words: the library's texts name its parameters, not the flags.
    init(_ error: SessionExportError) {
        switch error {
        case .fileExists(let path):
            self.init(.fileExists, "\(path) already exists; nothing was written. Choose another path, or pass --force to replace it.")
        case .noAddress(let dc, let format):
            self.init(.usage, "a \(format) stores the address of DC \(dc), and none is known for it: pass --address HOST:PORT (the DC's IP address and port).")
        case .addressNotIPLiteral(let host):
            self.init(.usage, "a Telethon string session stores the DC's address as IP bytes, and \"\(host)\" is a host name: pass --address with the DC's IP address and port.")
        case .missingField(let format, "user_id", _):
            self.init(.failure, "a \(format) needs the account's user id, and this session does not say it yet (a Telethon string session "
                + "does not carry one): run the account once (`tgsm run`, or `tgsm recover --account NAME`, which checks its session) so it learns it, then export.")
        default:
            self.init(.failure, "\(error)")
        }
    }
}

/// What to do about a lease held in a cluster of `tgsm run --standby` processes: stopping the holder
/// only hands the account to a standby within seconds (an audit retried `session remove` 40 times
/// in 4 s after the SIGTERM and found it held again each time).
enum ClusterAdvice {
    static let handOver = "With `tgsm run --standby` processes on the store, stopping the holder hands the account to one of them: "
        + "restart every process with --account naming only the other accounts (or stop them all) first."
}
