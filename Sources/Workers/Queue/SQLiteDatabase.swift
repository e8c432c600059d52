import Foundation
import GRDB

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Opening a SQLite file for the queue when no session store shares one with it.
public enum SQLiteDatabase {
    /// Opens (creating it 0600 if needed) a SQLite file in WAL mode with a busy timeout, so that
    /// several processes may claim from it: a writer waiting for another's lock waits up to
    /// `busyTimeout` seconds instead of failing at once.
    public static func open(path: String, busyTimeout: Double = 10) throws(JobQueueError) -> DatabasePool {
        // Created by us first, so the file (and the -wal/-shm files SQLite derives from its mode)
        // is private before any job payload lands in it: payloads may hold message texts.
        let descriptor = systemOpen(path, O_CREAT | O_RDWR | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else {
            let reason = String(cString: strerror(errno))
            throw .storage("cannot create or open \(path): \(reason); check that the folder exists and is writable")
        }
        close(descriptor)
        var configuration = Configuration()
        configuration.busyMode = .timeout(busyTimeout)
        configuration.foreignKeysEnabled = true
        // Processes opening a new file at the same moment each turn it to WAL, which needs the file
        // to themselves: the busy timeout does not cover that step, so the slower one is told
        // "database is locked" and tries again shortly (two `tgsm run` started together).
        var tries = 0
        while true {
            do {
                return try DatabasePool(path: path, configuration: configuration)
            } catch let error as DatabaseError where (error.resultCode == .SQLITE_BUSY || error.resultCode == .SQLITE_LOCKED) && tries < 100 {
                tries += 1
                usleep(20_000)
            } catch let error as DatabaseError where [.SQLITE_NOTADB, .SQLITE_CORRUPT].contains(error.resultCode.primaryResultCode) {
                throw .unreadable(path: path, reason: "\(error)")
            } catch {
                throw .storage("cannot open \(path) as SQLite (\(error))")
            }
        }
    }
}

private func systemOpen(_ path: String, _ flags: Int32, _ mode: mode_t) -> Int32 {
    open(path, flags, mode)
}
