#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import MTProto

/// The fencing token of a lease: it grows by one at every change of owner, so a write carrying an
/// older token is recognisably from a previous owner.
public struct LeaseToken: Sendable, Hashable, Comparable, CustomStringConvertible {
    public let rawValue: Int64

    public init(_ rawValue: Int64) { self.rawValue = rawValue }

    public static func < (lhs: LeaseToken, rhs: LeaseToken) -> Bool { lhs.rawValue < rhs.rawValue }
    public var description: String { "\(rawValue)" }
}

/// Who holds a lease: a process on a host.
public struct LeaseHolder: Sendable, Hashable, CustomStringConvertible {
    public var host: String
    public var pid: Int32

    public init(host: String, pid: Int32) {
        self.host = host
        self.pid = pid
    }

    /// This process. Its host is the host name and, where Linux tells them, a digest of the boot and
    /// the PID namespace ("vm~1a2b3c4d"): a pid means something only within one namespace of one
    /// boot, and containers on one machine (host networking, a fixed hostname) or two machines of
    /// one name share the host name. Before, a process in another PID namespace found a live
    /// holder's pid missing, took it for dead and took its accounts over: both connected with one
    /// key, and Telegram destroyed it.
    public static func current() -> LeaseHolder {
        LeaseHolder(host: thisHost, pid: getpid())
    }

    /// This boot's and PID namespace's digest, read once.
    private static let pidSpace = pidSpaceInstance()

    /// The host as this process names holders: see `current()`.
    static let thisHost: String = pidSpace.map { hostName() + "~" + $0 } ?? hostName()

    /// Whether a dead pid can be told here: only with the boot and PID namespace known (`thisHost`
    /// then carries them), never on the host name alone.
    static var canTellDeadPIDs: Bool { pidSpace != nil }

    /// 8 hex digits of the boot id and the PID namespace's inode, or nil where /proc lacks them.
    static func pidSpaceInstance() -> String? {
        guard let boot = try? String(contentsOfFile: "/proc/sys/kernel/random/boot_id", encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines), !boot.isEmpty else { return nil }
        var buffer = [CChar](repeating: 0, count: 128)
        let count = readlink("/proc/self/ns/pid", &buffer, buffer.count - 1)
        guard count > 0 else { return nil }
        let namespace = String(decoding: buffer.prefix(count).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        // FNV-1a: a stable short name, not a secret (the boot id is not one either).
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in (boot + "/" + namespace).utf8 {
            hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01b3
        }
        return String(format: "%08x", UInt32(truncatingIfNeeded: hash ^ (hash >> 32)))
    }

    public var description: String { "pid \(pid) on \(host)" }

    /// Whether this holder is known dead: it ran on this host, in this boot and PID namespace, and
    /// its pid no longer exists. A holder elsewhere (another host, container or boot, or one named
    /// by the host name alone, as before namespaces were told) is never known dead: its heartbeat
    /// expiry decides. A pid reused by another process reads as alive: both errors wait for the
    /// expiry, which is the safe side.
    public static func isDeadOnThisHost(_ holder: LeaseHolder) -> Bool {
        guard canTellDeadPIDs, holder.host == thisHost, holder.pid > 0 else { return false }
        if kill(holder.pid, 0) == 0 { return isZombie(holder.pid) }
        return errno == ESRCH
    }

    /// A process that ended but that its parent has not reaped yet (`kill(pid, 0)` still succeeds):
    /// it holds nothing any more. Linux says so in /proc/PID/stat ("PID (name) Z ..."); elsewhere
    /// it reads as alive, the safe side.
    static func isZombie(_ pid: Int32) -> Bool {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let nameEnd = stat.lastIndex(of: ")") else { return false }
        return stat[stat.index(after: nameEnd)...].trimmingCharacters(in: .whitespaces).hasPrefix("Z")
    }

    static func hostName() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count - 1) == 0 else { return "localhost" }
        let bytes = buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// The right to run one account's connections. Taken before any connection, renewed by a
/// heartbeat, and carried (as its token) by every write the owner makes.
public struct Lease: Sendable, Hashable, CustomStringConvertible {
    public var account: AccountID
    public var holder: LeaseHolder
    public var startedAt: UnixTime
    public var heartbeatAt: UnixTime
    public var expiresAt: UnixTime
    public var token: LeaseToken

    public init(account: AccountID, holder: LeaseHolder, startedAt: UnixTime, heartbeatAt: UnixTime, expiresAt: UnixTime, token: LeaseToken) {
        self.account = account
        self.holder = holder
        self.startedAt = startedAt
        self.heartbeatAt = heartbeatAt
        self.expiresAt = expiresAt
        self.token = token
    }

    public func isExpired(at now: UnixTime) -> Bool { now >= expiresAt }

    public var description: String {
        "lease of \(account) held by \(holder) since \(startedAt), heartbeat \(heartbeatAt), expires \(expiresAt), token \(token)"
    }
}
