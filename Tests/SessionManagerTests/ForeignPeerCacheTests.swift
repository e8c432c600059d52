import Foundation
import MTProto
import MTProtoClient
@testable import SessionManager
import Testing

/// Telethon's and Pyrogram's peer caches read into `PeerRecord`s and written back. The libraries
/// themselves write and read them in `PythonSessionInteropTests`; here, the rules on rows no library
/// writes (damage, hand edits) and the round trips through every schema.
@Suite struct ForeignPeerCacheTests {
    @Test func markedIDsFollowTheBotAPIsRanges() {
        #expect(MarkedPeerID.peer(1002)! == (.user, 1002))
        #expect(MarkedPeerID.peer(-4001)! == (.chat, 4001))
        #expect(MarkedPeerID.peer(-999_999_999_999)! == (.chat, 999_999_999_999))
        #expect(MarkedPeerID.peer(-1_000_000_002_001)! == (.channel, 2001))
        #expect(MarkedPeerID.peer(0) == nil)
        #expect(MarkedPeerID.peer(-1_000_000_000_000) == nil, "channel 0")
        #expect(MarkedPeerID.peer(.min) == nil)
        for (kind, id) in [(PeerRecord.Kind.user, Int64(7_000_000_000)), (.chat, 4001), (.channel, 1_234_567_890_123)] {
            let marked = MarkedPeerID.marked(kind: kind, id: id)
            #expect(marked.flatMap(MarkedPeerID.peer).map { $0.kind == kind && $0.id == id } == true, "\(kind) \(id)")
        }
        #expect(MarkedPeerID.marked(kind: .chat, id: 1_000_000_000_000) == nil, "would read back as a channel")
        #expect(MarkedPeerID.marked(kind: .channel, id: .max) == nil)
        #expect(MarkedPeerID.marked(kind: .user, id: 0) == nil)
    }

    @Test func telethonEntitiesBecomePeersAndDamagedRowsAreCounted() {
        let entities = SessionFileTable(columns: ["id", "hash", "username", "phone", "name", "date"], rows: [
            [.integer(1002), .integer(0x0B0B), .text("bob"), .integer(15550002), .text("Bob"), .integer(1_764_000_000)],
            [.integer(-1_000_000_002_001), .integer(0x2001), .text("testnews"), .null, .text("Test News"), .integer(1_764_000_100)],
            [.integer(-4001), .integer(0), .null, .null, .text("Group"), .null],
            [.integer(1003), .integer(0x0C), .text("not a username!"), .null, .null, .integer(5)],
            [.text("1004"), .integer(1), .null, .null, .null, .integer(5)],
            [.integer(0), .integer(1001), .null, .null, .null, .integer(5)],
            [.integer(1005), .null, .null, .null, .null, .integer(5)],
            // A date no clock gives (a damaged row): long ago, never a trap on the way out.
            [.integer(1006), .integer(6), .null, .null, .null, .integer(.max)],
            [.integer(1007), .integer(7), .null, .null, .null, .real(1e300)],
        ])
        let snapshot = SessionFileSnapshot(tableNames: ["entities"], tables: [:], peerTables: ["entities": entities],
                                           peerRowCounts: ["entities": 11])
        let (peers, leftOut) = ForeignPeerCache.telethonPeers(snapshot)
        #expect(peers == [
            PeerRecord(kind: .user, id: 1002, accessHash: 0x0B0B, username: "bob", seenAt: UnixTime(seconds: 1_764_000_000)),
            PeerRecord(kind: .channel, id: 2001, accessHash: 0x2001, username: "testnews", seenAt: UnixTime(seconds: 1_764_000_100)),
            PeerRecord(kind: .chat, id: 4001, accessHash: nil, seenAt: UnixTime(seconds: 0)),
            PeerRecord(kind: .user, id: 1003, accessHash: 0x0C, username: nil, seenAt: UnixTime(seconds: 5)),
            PeerRecord(kind: .user, id: 1006, accessHash: 6, seenAt: UnixTime(seconds: 0)),
            PeerRecord(kind: .user, id: 1007, accessHash: 7, seenAt: UnixTime(seconds: 0)),
        ])
        // Text for an id, id 0, a NULL hash: 3 rows; and 2 rows beyond those read.
        #expect(leftOut == 5)
    }

    @Test func pyrogramPeersMustAgreeWithTheirType() {
        let table = SessionFileTable(columns: ["id", "access_hash", "type", "username", "phone_number", "last_update_on"], rows: [
            [.integer(1002), .integer(0x0B0B), .text("bot"), .text("Bob_Bot"), .null, .integer(1_764_000_000)],
            [.integer(-1_000_000_002_001), .integer(0x2001), .text("supergroup"), .null, .null, .integer(1_764_000_001)],
            [.integer(-4001), .null, .text("group"), .null, .null, .integer(1_764_000_002)],
            [.integer(-4002), .integer(9), .text("channel"), .null, .null, .integer(1)],
            [.integer(1006), .integer(9), .text("robot"), .null, .null, .integer(1)],
            [.integer(1007), .text("9"), .text("user"), .null, .null, .integer(1)],
        ])
        let (peers, leftOut) = ForeignPeerCache.pyrogramPeers(SessionFileSnapshot(tableNames: ["peers"], tables: [:], peerTables: ["peers": table]))
        #expect(peers == [
            PeerRecord(kind: .user, id: 1002, accessHash: 0x0B0B, username: "bob_bot", seenAt: UnixTime(seconds: 1_764_000_000)),
            PeerRecord(kind: .channel, id: 2001, accessHash: 0x2001, seenAt: UnixTime(seconds: 1_764_000_001)),
            PeerRecord(kind: .chat, id: 4001, accessHash: nil, seenAt: UnixTime(seconds: 1_764_000_002)),
        ])
        #expect(leftOut == 3)
    }

    static let peers = [
        PeerRecord(kind: .user, id: 1002, accessHash: -5, username: "bob", seenAt: UnixTime(seconds: 1_764_000_300)),
        PeerRecord(kind: .channel, id: 2001, accessHash: 0x2001, username: "testnews", seenAt: UnixTime(seconds: 1_764_000_200)),
        PeerRecord(kind: .chat, id: 4001, accessHash: nil, seenAt: UnixTime(seconds: 1_764_000_100)),
    ]

    /// Every file format keeps the peers it can use; a user seen only as a `min` constructor (no
    /// hash) is left out, since neither library keeps a row it cannot address.
    @Test(arguments: ["telethon", "pyrogram-3", "pyrogram-7"]) func peersRoundTripThroughEveryFile(_ format: String) throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("foreign-peers-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let key = try #require(TestKeys.key(seed: 11))
        let unaddressable = PeerRecord(kind: .user, id: 1009, accessHash: nil, username: "min_user", seenAt: UnixTime(seconds: 1))
        // Times no library writes are written within what they read (before: a trap on the way out).
        let farOff = PeerRecord(kind: .user, id: 1010, accessHash: 10, seenAt: UnixTime(seconds: 1e300))
        let before = PeerRecord(kind: .user, id: 1011, accessHash: 11, seenAt: UnixTime(seconds: -5))
        let session = PortableSession(dc: 2, authKey: key, address: DCAddress(host: "149.154.167.51", port: 443), userID: 1001,
                                      apiID: 1, peers: Self.peers + [unaddressable, farOff, before])
        let path = folder.appendingPathComponent("out.session").path
        let read: PortableSession
        switch format {
        case "telethon":
            try TelethonSessionFile.write(session, to: path)
            read = try TelethonSessionFile.read(path: path)
        default:
            try PyrogramSessionFile.write(session, to: path, schema: format == "pyrogram-3" ? .version3 : .version7)
            read = try PyrogramSessionFile.read(path: path)
        }
        let latest = UnixTime(seconds: Double(ForeignPeerCache.latestSeconds))
        #expect(read.peers == [PeerRecord(kind: .user, id: 1010, accessHash: 10, seenAt: latest)] + Self.peers
                    + [PeerRecord(kind: .user, id: 1011, accessHash: 11, seenAt: UnixTime(seconds: 0))], "most recently seen first")
        #expect(read.unreadablePeerRows == 0)
        #expect(read.userID == 1001)
    }

    /// A damaged page in the peer cache leaves the session importable (before: the whole import
    /// failed as "damaged", although only the cache was).
    @Test func aDamagedPeerCacheLeavesTheSessionImportable() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("foreign-peers-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let key = try #require(TestKeys.key(seed: 12))
        let peers = (1...5000).map { (index: Int) -> PeerRecord in
            let number = Int64(index)
            return PeerRecord(kind: .user, id: 100_000 + number, accessHash: number, username: "user_\(index)",
                              seenAt: UnixTime(seconds: Double(1_764_000_000 + number)))
        }
        let session = PortableSession(dc: 2, authKey: key, address: DCAddress(host: "149.154.167.51", port: 443), userID: 1001, peers: peers)
        let path = folder.appendingPathComponent("damaged.session").path
        try TelethonSessionFile.write(session, to: path)
        // The entities fill the file's later pages, in id order: the last page, the newest ids',
        // is overwritten with garbage (entity 0, the own user id, is on the first of them).
        let size = try #require(try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int)
        let page = 4096
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        try handle.seek(toOffset: UInt64(size - page))
        try handle.write(contentsOf: Data(repeating: 0xFF, count: page))
        try handle.close()

        let read = try TelethonSessionFile.read(path: path)
        #expect(read.authKey == key && read.userID == 1001 && read.dc == 2)
        #expect(read.peers.count < peers.count)
        #expect(read.peerCacheError != nil || read.unreadablePeerRows > 0, "the loss is said: \(read)")
    }
}
