#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Crypto
import Foundation

/// The few file operations the store needs with exact modes and durability: the store's directory
/// is 0700 and every file 0600 (they hold auth keys), and a rename is only durable once the
/// directory itself is fsynced.
package enum FileSystem {
    package static func exists(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0
    }

    /// The file's size, or nil when it does not exist.
    static func size(_ path: String) -> Int64? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        return Int64(info.st_size)
    }

    /// Which file `path` names now (device and inode): a file renamed over it is another one.
    static func identity(_ path: String) -> FileIdentity? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        return FileIdentity(device: UInt64(info.st_dev), inode: UInt64(info.st_ino))
    }

    /// The other processes holding a POSIX lock on any of `paths`, from Linux's /proc/locks: SQLite
    /// holds one on a database and its `-shm` for as long as it has it open, so this says who uses a
    /// store without opening it (opening and closing a file here would drop this process's own
    /// SQLite locks on it). Empty where /proc/locks cannot be read.
    package static func otherProcessesLocking(_ paths: [String]) -> [Int32] {
        Array(Set(otherProcessesLocks(paths).map(\.pid))).sorted()
    }

    /// A POSIX lock another process holds, as /proc/locks lists it.
    struct HeldLock: Hashable {
        var pid: Int32
        var inode: UInt64
        var isWrite: Bool
        var start: UInt64
        var end: UInt64?
    }

    /// The locks other processes hold on any of `paths` (waiters left out); empty where /proc/locks
    /// cannot be read.
    static func otherProcessesLocks(_ paths: [String]) -> [HeldLock] {
        let inodes = Set(paths.compactMap { identity($0)?.inode })
        guard !inodes.isEmpty, let text = try? String(contentsOfFile: "/proc/locks", encoding: .utf8) else { return [] }
        let me = getpid()
        var locks: [HeldLock] = []
        for line in text.split(separator: "\n") where !line.contains("->") {
            // "1: POSIX  ADVISORY  READ 9794 fe:00:16377187 128 128" (the end is EOF for a lock to the file's end).
            let fields = line.split(separator: " ")
            guard fields.count >= 8, let pid = Int32(fields[4]), pid != me, let inode = fields[5].split(separator: ":").last.flatMap({ UInt64($0) }),
                  inodes.contains(inode), let start = UInt64(fields[6]) else { continue }
            locks.append(HeldLock(pid: pid, inode: inode, isWrite: fields[3] == "WRITE", start: start, end: UInt64(fields[7])))
        }
        return locks
    }

    /// Whether process `pid` still exists (a signal 0 reaches it, or would without permission).
    package static func processIsAlive(_ pid: Int32) -> Bool {
        kill(pid, 0) == 0 || errno == EPERM
    }

    /// A process's name (/proc/PID/comm), for messages; nil when unknown.
    static func processName(_ pid: Int32) -> String? {
        (try? String(contentsOfFile: "/proc/\(pid)/comm", encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    static func mode(_ path: String) -> mode_t? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        return info.st_mode & 0o777
    }

    static func ensureDirectory(_ path: String) throws(SessionStoreError) {
        if mkdir(path, 0o700) != 0 {
            var code = errno
            if code == ENOENT {
                // The first run on a fresh machine or container: the default place's parents
                // (~/.local/share) may not exist yet. Made 0700, as XDG asks of its data home.
                try makeMissingParents(of: path)
                code = mkdir(path, 0o700) == 0 ? EEXIST : errno
            }
            guard code == EEXIST else { throw .filesystem(path: path, operation: "create the directory", reason: String(cString: strerror(code))) }
        }
        // Already 0700 needs no chmod (which a read-only filesystem refuses even then).
        guard mode(path) == 0o700 || chmod(path, 0o700) == 0 else {
            throw .filesystem(path: path, operation: "restrict to mode 0700", reason: String(cString: strerror(errno)))
        }
    }

    /// Creates the directories above `path` that do not exist (0700), leaving existing ones as they are.
    private static func makeMissingParents(of path: String) throws(SessionStoreError) {
        let parent = (path as NSString).deletingLastPathComponent
        guard !parent.isEmpty, parent != path, !exists(parent) else { return }
        try makeMissingParents(of: parent)
        if mkdir(parent, 0o700) != 0, errno != EEXIST {
            throw .filesystem(path: parent, operation: "create the directory", reason: String(cString: strerror(errno)))
        }
    }

    /// Creates an empty 0600 file if none exists, so SQLite (which gives its -wal and -shm the
    /// database file's mode) never creates anything readable by others.
    package static func createPrivateFile(_ path: String) throws(SessionStoreError) {
        let fd = open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw .filesystem(path: path, operation: "create", reason: String(cString: strerror(errno))) }
        close(fd)
        guard chmod(path, 0o600) == 0 else {
            throw .filesystem(path: path, operation: "restrict to mode 0600", reason: String(cString: strerror(errno)))
        }
    }

    package static func syncFile(_ path: String) {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return }
        _ = fsync(fd)
        close(fd)
    }

    package static func moveFile(_ from: String, _ to: String) throws(SessionStoreError) {
        guard rename(from, to) == 0 else {
            throw .filesystem(path: from, operation: "rename to \(to)", reason: String(cString: strerror(errno)))
        }
    }

    package static func removeFile(_ path: String) {
        unlink(path)
    }

    package static func copy(_ from: String, _ to: String) throws(SessionStoreError) {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: from)) } catch {
            throw .filesystem(path: from, operation: "read", reason: error.localizedDescription)
        }
        try writeFile(data, to: to)
    }

    /// Writes a 0600 file and fsyncs it.
    static func writeFile(_ data: Data, to path: String) throws(SessionStoreError) {
        let fd = open(path, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw .filesystem(path: path, operation: "create", reason: String(cString: strerror(errno))) }
        defer { close(fd) }
        let written = data.withUnsafeBytes { raw -> Int in
            guard let base = raw.baseAddress else { return 0 }
            var offset = 0
            while offset < raw.count {
                let n = write(fd, base + offset, raw.count - offset)
                if n <= 0 { return offset }
                offset += n
            }
            return offset
        }
        guard written == data.count, fsync(fd) == 0 else {
            throw .filesystem(path: path, operation: "write", reason: String(cString: strerror(errno)))
        }
    }

    static func readFile(_ path: String) -> Data? {
        try? Data(contentsOf: URL(fileURLWithPath: path))
    }

    static func sha256Hex(_ path: String) -> String? {
        guard let data = readFile(path) else { return nil }
        return SHA256.hash(data: data).map { String(format: "%02x", $0) }.joined()
    }

    static func list(_ directory: String) -> [String] {
        (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
    }
}

/// A file as the filesystem knows it, whatever its name.
struct FileIdentity: Sendable, Hashable {
    var device: UInt64
    var inode: UInt64
}
