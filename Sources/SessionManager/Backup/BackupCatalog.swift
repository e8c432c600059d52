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

    /// Copies the backup to `destination` and verifies the copy (checksum, integrity_check, format,
    /// row checks), so what is verified is exactly what gets restored. Returns why it is not good, or
    /// nil when it is.
    func verifiedCopy(_ sidecar: Sidecar, to destination: String, busyTimeout: Double) -> String? {
        let source = path(sidecar)
        guard FileSystem.size(source) == sidecar.size else { return "its size differs from its sidecar" }
        do { try FileSystem.copy(source, destination) } catch { return "it cannot be copied: \(error)" }
        guard FileSystem.sha256Hex(destination) == sidecar.sha256 else { return "its SHA-256 differs from its sidecar" }
        guard case .good = StoreInspector.inspect(destination, busyTimeout: busyTimeout) else { return "it fails the store checks" }
        return nil
    }

    /// Renames a backup that failed verification so it is never tried again, but kept for a person to look at.
    func quarantine(_ sidecar: Sidecar) {
        try? FileSystem.moveFile(path(sidecar), path(sidecar) + ".bad")
        try? FileSystem.moveFile(path(sidecar) + ".json", path(sidecar) + ".json.bad")
    }

    /// Removes all but the newest `keep` backups.
    @discardableResult
    func prune(keep: Int) -> [String] {
        let doomed = entries().dropFirst(keep)
        for sidecar in doomed {
            FileSystem.removeFile(path(sidecar))
            FileSystem.removeFile(path(sidecar) + ".json")
        }
        return doomed.map(\.file)
    }
}
