import Foundation
import GRDB
import MTProto

/// The peer caches of Telethon (`entities`) and Pyrogram (`peers`, and kurigram's `usernames`),
/// read into `PeerRecord`s and written back from them. Both key peers by their marked id
/// (`MarkedPeerID`) and stamp each row with the time they last saw it, which becomes `seenAt`, so an
/// imported row never outranks what the store saw later.
///
/// A row that cannot be read (a damaged or hand-edited file) is left out and counted; the session
/// itself imports whatever its peer cache holds.
enum ForeignPeerCache {
    /// Telethon's entities (row 0 is the own user id, not a peer). Basic chats are stored with hash
    /// 0, users and channels with their access hash; the username is already lower-cased.
    static func telethonPeers(_ snapshot: SessionFileSnapshot) -> (peers: [PeerRecord], leftOut: Int) {
        guard let table = snapshot.peerTables["entities"] else { return ([], 0) }
        var peers: [PeerRecord] = []
        var unreadable = 0
        for row in table.rows {
            guard case .integer(let marked)? = table.value("id", in: row), let (kind, id) = MarkedPeerID.peer(marked),
                  case .integer(let hash)? = table.value("hash", in: row)
            else {
                unreadable += 1
                continue
            }
            peers.append(PeerRecord(
                kind: kind, id: id, accessHash: kind == .chat || hash == 0 ? nil : hash,
                username: username(table.value("username", in: row)), seenAt: seenAt(table.value("date", in: row))
            ))
        }
        return (peers, unreadable + leftOutBeyondLimit(snapshot, "entities", read: table.rows.count))
    }

    /// Pyrogram's peers: `type` is "user", "bot", "group", "channel" or "supergroup" and must agree
    /// with the marked id's range.
    static func pyrogramPeers(_ snapshot: SessionFileSnapshot) -> (peers: [PeerRecord], leftOut: Int) {
        guard let table = snapshot.peerTables["peers"] else { return ([], 0) }
        var peers: [PeerRecord] = []
        var unreadable = 0
        for row in table.rows {
            guard case .integer(let marked)? = table.value("id", in: row), let (kind, id) = MarkedPeerID.peer(marked),
                  case .text(let type)? = table.value("type", in: row), pyrogramKind(type) == kind
            else {
                unreadable += 1
                continue
            }
            var hash: Int64?
            switch table.value("access_hash", in: row) {
            case .integer(let value)?: hash = kind == .chat || value == 0 ? nil : value
            case .null?, nil: hash = nil
            default:
                unreadable += 1
                continue
            }
            peers.append(PeerRecord(
                kind: kind, id: id, accessHash: hash, username: username(table.value("username", in: row)),
                seenAt: seenAt(table.value("last_update_on", in: row))
            ))
        }
        return (peers, unreadable + leftOutBeyondLimit(snapshot, "peers", read: table.rows.count))
    }

    static func pyrogramKind(_ type: String) -> PeerRecord.Kind? {
        switch type {
        case "user", "bot": .user
        case "group": .chat
        case "channel", "supergroup": .channel
        default: nil
        }
    }

    /// What each library can use: a user or channel needs its access hash (neither library keeps a
    /// row without one), a basic chat needs none.
    static func exportable(_ peers: [PeerRecord]) -> [(marked: Int64, peer: PeerRecord)] {
        peers.compactMap { peer in
            guard peer.kind == .chat || peer.accessHash != nil, let marked = MarkedPeerID.marked(kind: peer.kind, id: peer.id) else { return nil }
            return (marked, peer)
        }
    }

    /// Rows as Telethon's `process_entities` writes them: (id, hash, username, phone, name, date).
    static func writeTelethon(_ peers: [PeerRecord], _ db: Database) throws {
        let insert = try db.makeStatement(sql: "INSERT OR REPLACE INTO entities VALUES (?, ?, ?, NULL, NULL, ?)")
        for (marked, peer) in exportable(peers) {
            try insert.execute(arguments: [marked, peer.accessHash ?? 0, peer.username, unixSeconds(peer.seenAt)])
        }
    }

    /// Rows as Pyrogram's `update_peers` writes them; version 7 (kurigram) keeps the username in
    /// `usernames`. A user is written as "user" (tgsm keeps no bot flag per peer; Pyrogram addresses
    /// both alike) and a channel as "channel" (a supergroup is addressed as one).
    static func writePyrogram(_ peers: [PeerRecord], _ db: Database, usernamesTable: Bool) throws {
        let insert = try db.makeStatement(sql: usernamesTable
            ? "INSERT OR REPLACE INTO peers (id, access_hash, type, phone_number, last_update_on) VALUES (?, ?, ?, NULL, ?)"
            : "INSERT OR REPLACE INTO peers (id, access_hash, type, username, phone_number, last_update_on) VALUES (?, ?, ?, ?, NULL, ?)")
        let insertUsername = usernamesTable ? try db.makeStatement(sql: "INSERT INTO usernames (id, username) VALUES (?, ?)") : nil
        for (marked, peer) in exportable(peers) {
            let type = switch peer.kind {
            case .user: "user"
            case .chat: "group"
            case .channel: "channel"
            }
            let seen = unixSeconds(peer.seenAt)
            if let insertUsername {
                try insert.execute(arguments: [marked, peer.accessHash ?? 0, type, seen])
                if let username = peer.username { try insertUsername.execute(arguments: [marked, username]) }
            } else {
                try insert.execute(arguments: [marked, peer.accessHash ?? 0, type, peer.username, seen])
            }
        }
    }

    /// A username as Telegram allows them (letters, digits, underscores; up to 32, collectible
    /// ones from 4); anything else is damage and is dropped, keeping the peer.
    private static func username(_ value: SessionFileValue?) -> String? {
        guard case .text(let text)? = value, (1...64).contains(text.utf8.count),
              text.utf8.allSatisfy({ $0 == UInt8(ascii: "_") || (0x30...0x39).contains($0) || (0x41...0x5A).contains($0) || (0x61...0x7A).contains($0) })
        else { return nil }
        return text
    }

    /// Unix seconds; missing (Telethon before its schema had `date`), unreadable or past the year
    /// 9999 counts as long ago, so the store's own sightings always win.
    private static func seenAt(_ value: SessionFileValue?) -> UnixTime {
        switch value {
        case .integer(let seconds)? where seconds > 0 && seconds <= latestSeconds: UnixTime(seconds: Double(seconds))
        case .real(let seconds)? where seconds > 0 && seconds <= Double(latestSeconds): UnixTime(seconds: seconds)
        default: UnixTime(seconds: 0)
        }
    }

    /// 9999-12-31T23:59:59Z: no time stamp beyond it is read or written.
    static let latestSeconds: Int64 = 253_402_300_799

    /// A record's time as the libraries store it: whole Unix seconds, within 0 and `latestSeconds`.
    static func unixSeconds(_ time: UnixTime) -> Int64 {
        let seconds = time.seconds.rounded(.down)
        guard seconds.isFinite, seconds > 0 else { return 0 }
        return seconds >= Double(latestSeconds) ? latestSeconds : Int64(seconds)
    }

    private static func leftOutBeyondLimit(_ snapshot: SessionFileSnapshot, _ table: String, read: Int) -> Int {
        max(0, (snapshot.peerRowCounts[table] ?? read) - read)
    }
}
