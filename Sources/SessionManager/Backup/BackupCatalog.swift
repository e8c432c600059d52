import Foundation
import GRDB
import MTProto

/// The backups in a store's backup directory. Each backup `NAME.sqlite` has a sidecar
/// `NAME.sqlite.json` with its SHA-256, size and commit counter: the catalog is read from the
/// files, not from the store, because it is needed exactly when the store is unreadable.
struct BackupCatalog {
    struct Sidecar: Codable {
        var file: String
        var createdAt: Double
        var size: Int64
        var sha256: String
        var commitSequence: Int64
        var reason: String

        var record: BackupRecord {
            BackupRecord(file: file, createdAt: UnixTime(seconds: createdAt), size: size, sha256: sha256,
                         commitSequence: commitSequence, reason: BackupRecord.Reason(rawValue: reason) ?? .manual)
        }
    }

    let directory: String

    /// Every readable sidecar whose backup file exists, newest first.
    func entries() -> [Sidecar] {
        FileSystem.list(directory)
            .filter { $0.hasSuffix(".sqlite.json") }
            .compactMap { name -> Sidecar? in
                guard let data = FileSystem.readFile(directory + "/" + name),
                      let sidecar = try? JSONDecoder().decode(Sidecar.self, from: data),
                      sidecar.file + ".json" == name,
                      FileSystem.exists(directory + "/" + sidecar.file)
                else { return nil }
                return sidecar
            }
            .sorted { ($0.commitSequence, $0.createdAt) > ($1.commitSequence, $1.createdAt) }
    }

    func path(_ sidecar: Sidecar) -> String { directory + "/" + sidecar.file }

    /// What verifying a backup found.
    enum Check: Equatable {
        case good
        /// The backup itself is not usable: set aside, never tried again.
        case bad(String)
        /// It could not be verified here and now (no space for the copy, a read-only directory, a
        /// lock): nothing is known against it, so it stays where it is for a later try.
        case unverifiable(String)

        /// Why it cannot be used now; nil when good.
        var problem: String? {
            switch self {
            case .good: nil
            case .bad(let reason): reason
            case .unverifiable(let reason): "it could not be verified now: \(reason)"
            }
        }
    }

    /// Copies the backup to `destination` and verifies the copy (checksum, integrity_check, format,
    /// row checks), so what is verified is exactly what gets restored. A copy that cannot be made or
    /// checked (a full disk: the reason an operator restores at all, often) says nothing against the
    /// backup: before, it was set aside as bad, and a full disk cost every backup.
    func check(_ sidecar: Sidecar, copyTo destination: String, busyTimeout: Double) -> Check {
        let source = path(sidecar)
        guard FileSystem.size(source) == sidecar.size else { return .bad("its size differs from its sidecar") }
        do { try FileSystem.copy(source, destination) } catch {
            return .unverifiable("it cannot be copied to \((destination as NSString).deletingLastPathComponent) to be checked (\(error)); "
                + "free disk space there, or make it writable")
        }
        guard FileSystem.sha256Hex(destination) == sidecar.sha256 else {
            // The copy, not the backup, may be what is short (a disk that filled during it).
            guard FileSystem.sha256Hex(source) == sidecar.sha256 else { return .bad("its SHA-256 differs from its sidecar") }
            return .unverifiable("its copy came out different from it (a disk that filled during the copy?); free disk space and try again")
        }
        switch StoreInspector.inspect(destination, busyTimeout: busyTimeout) {
        case .good: return .good
        case .unreachable(let reason): return .unverifiable("its copy could not be read to be checked (\(reason))")
        default: return .bad("it fails the store checks")
        }
    }

    /// `check`'s problem: why the backup cannot be used now, or nil when it can.
    func verifiedCopy(_ sidecar: Sidecar, to destination: String, busyTimeout: Double) -> String? {
        check(sidecar, copyTo: destination, busyTimeout: busyTimeout).problem
    }

    /// Renames a backup that failed verification so it is never tried again, but kept for a person to look at.
    func quarantine(_ sidecar: Sidecar) {
        try? FileSystem.moveFile(path(sidecar), path(sidecar) + ".bad")
        try? FileSystem.moveFile(path(sidecar) + ".json", path(sidecar) + ".json.bad")
    }

    /// Removes all but the newest `keep` backups.
    @discardableResult
    func prune(keep: Int, now: UnixTime) -> [String] {
        let doomed = entries().dropFirst(keep).filter { entry in
            !(entry.reason == BackupRecord.Reason.beforeRemoval.rawValue && now.seconds - entry.createdAt < BackupRecord.removalBackupDays * 86_400)
        }
        for sidecar in doomed {
            FileSystem.removeFile(path(sidecar))
            FileSystem.removeFile(path(sidecar) + ".json")
        }
        return doomed.map(\.file)
    }
}
