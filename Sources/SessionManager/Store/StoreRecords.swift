import MTProto
import MTProtoCrypto

/// A server salt valid for a window, as get_future_salts returns it.
public struct FutureSalt: Sendable, Hashable {
    public var validSince: UnixTime
    public var validUntil: UnixTime
    public var salt: Int64

    public init(validSince: UnixTime, validUntil: UnixTime, salt: Int64) {
        self.validSince = validSince
        self.validUntil = validUntil
        self.salt = salt
    }
}

/// A PFS temporary key (auth.bindTempAuthKey) and when the server forgets it.
public struct TemporaryAuthKey: Sendable, Equatable {
    public var key: AuthKey
    public var expiresAt: UnixTime

    public init(key: AuthKey, expiresAt: UnixTime) {
        self.key = key
        self.expiresAt = expiresAt
    }
}

/// The update sequence state (updates.getState / getDifference).
public struct UpdateState: Sendable, Hashable, Codable {
    public var pts: Int32
    public var qts: Int32
    public var date: Int32
    public var seq: Int32

    public init(pts: Int32, qts: Int32, date: Int32, seq: Int32) {
        self.pts = pts
        self.qts = qts
        self.date = date
        self.seq = seq
    }
}

/// A peer seen in an answer: enough to build its input peer later without asking again.
public struct PeerRecord: Sendable, Hashable {
    public enum Kind: String, Sendable, Hashable, Codable, CaseIterable {
        case user, chat, channel
    }

    public var kind: Kind
    public var id: Int64
    /// Absent for basic chats (they need none) and for "min" constructors.
    public var accessHash: Int64?
    /// Stored lower-cased: Telegram usernames are case-insensitive.
    public var username: String?
    public var seenAt: UnixTime

    public init(kind: Kind, id: Int64, accessHash: Int64?, username: String? = nil, seenAt: UnixTime) {
        self.kind = kind
        self.id = id
        self.accessHash = accessHash
        self.username = username?.lowercased()
        self.seenAt = seenAt
    }
}

/// Metadata of one verified backup of the store.
public struct BackupRecord: Sendable, Hashable {
    public enum Reason: String, Sendable, Hashable, Codable {
        case authKeyChanged = "auth-key-changed"
        /// A key was logged in (a DC's authorization, or the account's user, appeared): the
        /// backup after the key's creation holds it logged out.
        case loggedIn = "logged-in"
        case scheduled
        case manual
        case beforeMigration = "before-migration"
        /// Taken by `tgsm session remove`, which names it: kept `BackupRecord.removalBackupDays`
        /// beyond the newest generations, so the restore it offers still works after a few more
        /// logins or backups.
        case beforeRemoval = "before-removal"
        /// Taken by `tgsm recover --salvage` once the salvaged store opened: a store whose backups
        /// were lost has one again before anything else can go wrong.
        case afterSalvage = "after-salvage"
    }

    /// Days a backup taken before an account's removal is kept beyond the newest generations.
    public static let removalBackupDays = 30.0

    /// The backup's file name inside the backup directory.
    public var file: String
    public var createdAt: UnixTime
    public var size: Int64
    /// Hex SHA-256 of the file, also stored in a sidecar beside it.
    public var sha256: String
    /// The store's commit counter when the copy was taken: a higher one is newer.
    public var commitSequence: Int64
    public var reason: Reason

    public init(file: String, createdAt: UnixTime, size: Int64, sha256: String, commitSequence: Int64, reason: Reason) {
        self.file = file
        self.createdAt = createdAt
        self.size = size
        self.sha256 = sha256
        self.commitSequence = commitSequence
        self.reason = reason
    }
}
