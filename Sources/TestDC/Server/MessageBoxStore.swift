import Foundation
import MTProtoCrypto
import TL
import TLSchema

/// `boxes.json` in the state directory: every account's message box (private messages, pts, seq,
/// the update log getDifference reads) and every channel's posts, pts and log. Without it a restart
/// of the DC would reset pts while clients keep theirs, which Telegram never does: a client that
/// resumes from a stored state must find the DC where it left it.
///
/// Written at most once per `minimumInterval` of real time while boxes change, and always on
/// shutdown (`RunningTestDC.shutdown`): a killed DC may lose the last second of messages, a stopped
/// one loses nothing. Message texts are test data, not secrets; the file is 0600 anyway.
struct MessageBoxStore: Sendable {
    let url: URL
    var minimumInterval: Duration = .seconds(1)

    struct Snapshot: Codable, Equatable {
        var format = 1
        var users: [UserBox] = []
        var channels: [ChannelBox] = []
    }

    struct UserBox: Codable, Equatable {
        var id: Int64
        var pts: Int32?
        var seq: Int32?
        var messages: [PrivateMessage]
        var updates: [StoredUpdate]
    }

    struct ChannelBox: Codable, Equatable {
        var id: Int64
        var pts: Int32?
        var messages: [World.Message]
        var updates: [StoredUpdate]
    }

    /// A logged update; the update itself as its TL serialization, hex.
    struct StoredUpdate: Codable, Equatable {
        var pts: Int32
        var ptsCount: Int32
        var date: Int32
        var update: String
    }

    func load() throws -> Snapshot? {
        guard FileManager.default.fileExists(atPath: url.path) else { return nil }
        let snapshot: Snapshot
        do {
            snapshot = try JSONDecoder().decode(Snapshot.self, from: Data(contentsOf: url))
        } catch {
            throw TestDCError.stateDirectory(path: url.deletingLastPathComponent().path, reason: "\(url.lastPathComponent) is unreadable (\(error)); delete it to start with the world's initial messages")
        }
        guard snapshot.format == 1 else {
            throw TestDCError.stateDirectory(path: url.deletingLastPathComponent().path, reason: "\(url.lastPathComponent) has format \(snapshot.format), this test DC reads format 1; delete it to start with the world's initial messages")
        }
        return snapshot
    }

    /// Replaces the file in one rename, so a crash mid-write leaves the previous snapshot.
    func save(_ snapshot: Snapshot) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        guard let data = try? encoder.encode(snapshot) else { return }
        let temporary = url.appendingPathExtension("tmp")
        _ = FileManager.default.createFile(atPath: temporary.path, contents: data, attributes: [.posixPermissions: 0o600])
        _ = rename(temporary.path, url.path)
    }
}

extension DCState {
    var boxesSnapshot: MessageBoxStore.Snapshot {
        func stored(_ log: [LoggedUpdate]?) -> [MessageBoxStore.StoredUpdate] {
            (log ?? []).map { .init(pts: $0.pts, ptsCount: $0.ptsCount, date: $0.date, update: Hex.encode($0.update.serialized())) }
        }
        let userIDs = Set(privateBoxes.keys).union(userPts.keys).union(userSeq.keys).union(userUpdateLogs.keys).sorted()
        let channelIDs = Set(channelPts.keys).union(channelUpdateLogs.keys).sorted()
        return MessageBoxStore.Snapshot(
            users: userIDs.map { id in
                .init(id: id, pts: userPts[id], seq: userSeq[id], messages: privateBoxes[id] ?? [], updates: stored(userUpdateLogs[id]))
            },
            channels: channelIDs.compactMap { id in
                guard let channel = world.channels.first(where: { $0.id == id }) else { return nil }
                return .init(id: id, pts: channelPts[id], messages: channel.messages, updates: stored(channelUpdateLogs[id]))
            })
    }

    /// Restores saved boxes. Accounts and channels the world no longer has are skipped; an update
    /// that no longer decodes (a schema change) drops that log, so getDifference answers
    /// differenceTooLong-style from the messages instead of replaying garbage.
    mutating func restore(_ snapshot: MessageBoxStore.Snapshot) {
        func logged(_ stored: [MessageBoxStore.StoredUpdate]) -> [LoggedUpdate]? {
            var log: [LoggedUpdate] = []
            for entry in stored {
                guard let bytes = Hex.decode(entry.update), let update = try? Api.Update(serialized: bytes) else { return nil }
                log.append(LoggedUpdate(pts: entry.pts, ptsCount: entry.ptsCount, date: entry.date, update: update))
            }
            return log
        }
        for box in snapshot.users where user(id: box.id) != nil {
            userPts[box.id] = box.pts
            userSeq[box.id] = box.seq
            privateBoxes[box.id] = box.messages.isEmpty ? nil : box.messages
            userUpdateLogs[box.id] = logged(box.updates)
        }
        for box in snapshot.channels {
            guard let index = world.channels.firstIndex(where: { $0.id == box.id }) else { continue }
            world.channels[index].messages = box.messages
            channelPts[box.id] = box.pts
            channelUpdateLogs[box.id] = logged(box.updates)
        }
        savedBoxesVersion = boxesVersion
    }

    /// Writes `boxes.json` when boxes changed since the last save and either `force` is set or
    /// the store's interval passed since then.
    mutating func saveBoxesIfChanged(force: Bool = false) {
        guard let store = boxStore, boxesVersion != savedBoxesVersion else { return }
        let now = ContinuousClock.now
        if !force, let last = lastBoxesSave, last.duration(to: now) < store.minimumInterval { return }
        store.save(boxesSnapshot)
        savedBoxesVersion = boxesVersion
        lastBoxesSave = now
    }
}
