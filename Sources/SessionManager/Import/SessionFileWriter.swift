import Foundation
import GRDB

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Creates a new SQLite session file for a Python library without ever exposing a half-written
/// one or replacing an existing file by accident: the database is built in a private temporary
/// file (mode 0600) next to the target, then linked to the target name, which fails atomically if
/// the name is taken (or, with `overwrite`, renamed over it).
enum SessionFileWriter {
    static func create(
        at path: String, overwrite: Bool, populate: (Database) throws -> Void
    ) throws(SessionExportError) {
        if !overwrite, FileManager.default.fileExists(atPath: path) { throw .fileExists(path: path) }
        let url = URL(fileURLWithPath: path)
        let directory = url.deletingLastPathComponent().path
        let temporary = url.deletingLastPathComponent()
            .appendingPathComponent(".\(url.lastPathComponent).\(UInt64.random(in: 0...UInt64.max)).tmp").path
        defer {
            unlink(temporary)
            unlink(temporary + "-journal")
        }
        // The empty file is created with owner-only permissions before SQLite opens it; SQLite gives
        // its journal the database's permissions.
        let descriptor = open(temporary, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw .writeFailed(path: path, reason: String(cString: strerror(errno))) }
        close(descriptor)
        do {
            var configuration = Configuration()
            configuration.label = "session-export"
            let queue = try DatabaseQueue(path: temporary, configuration: configuration)
            try queue.write(populate)
            try queue.close()
        } catch {
            throw .writeFailed(path: path, reason: "\(error)")
        }
        if overwrite {
            guard rename(temporary, path) == 0 else { throw .writeFailed(path: path, reason: String(cString: strerror(errno))) }
        } else {
            guard link(temporary, path) == 0 else {
                if errno == EEXIST { throw .fileExists(path: path) }
                throw .writeFailed(path: path, reason: String(cString: strerror(errno)))
            }
        }
        // The new name must survive a crash as well as the contents SQLite already synced.
        let directoryDescriptor = open(directory.isEmpty ? "." : directory, O_RDONLY | O_CLOEXEC)
        if directoryDescriptor >= 0 {
            _ = fsync(directoryDescriptor)
            close(directoryDescriptor)
        }
    }
}
