import Foundation
import Logging
import Synchronization
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
///
/// The DC's lock only copies what the snapshot is made of (`BoxesCapture`: copy-on-write, no
/// element copied); the snapshot, its JSON and the file are made by `writer` on a thread of its
/// own. Made under the lock, a save held every connection of the DC while it ran: 20-80 ms once a
/// second by the end of a 30-day soak (400 KB of boxes, debug build, 2026-12-06), 10.5 s of the
/// lock in a 117 s run, growing with the boxes.
struct MessageBoxStore: Sendable {
    let url: URL
    var minimumInterval: Duration = .seconds(1)
    let writer: MessageBoxWriter

    init(url: URL, logger: Logger) {
        self.url = url
        writer = MessageBoxWriter(url: url, logger: logger)
    }

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
}

/// What a boxes snapshot is made of, as the DC's state held it at `version`.
struct BoxesCapture: Sendable {
    var version: Int
    var privateBoxes: [Int64: [PrivateMessage]]
    var userPts: [Int64: Int32]
    var userSeq: [Int64: Int32]
    var userUpdateLogs: [Int64: [LoggedUpdate]]
    var channels: [World.Channel]
    var channelPts: [Int64: Int32]
    var channelUpdateLogs: [Int64: [LoggedUpdate]]

    var snapshot: MessageBoxStore.Snapshot {
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
                guard let channel = channels.first(where: { $0.id == id }) else { return nil }
                return .init(id: id, pts: channelPts[id], messages: channel.messages, updates: stored(channelUpdateLogs[id]))
            })
    }
}

/// Writes boxes snapshots on a serial queue of its own, and only the newest counts: a capture that
/// arrives while one is written replaces any still waiting, and one not newer than the last written
/// is dropped. A write that fails (a full disk, a path taken by something else) is said in the log
/// once, with the reason, and its capture is kept: the next write, or the flush at shutdown, tries
/// again, so a passing failure loses nothing.
final class MessageBoxWriter: Sendable {
    private struct State {
        var waiting: BoxesCapture?
        var draining = false
        var written = Int.min
        /// Why the last write failed, until one succeeds.
        var failure: String?
    }

    private let url: URL
    private let logger: Logger
    private let queue = DispatchQueue(label: "tgsm.testdc.boxes")
    private let state = Mutex(State())

    init(url: URL, logger: Logger) {
        self.url = url
        self.logger = logger
    }

    /// Why the last write of the file failed; nil once one succeeds.
    var failure: String? { state.withLock { $0.failure } }

    /// Queues `capture` for the file and returns at once.
    func submit(_ capture: BoxesCapture) {
        let start = state.withLock { state -> Bool in
            if let waiting = state.waiting, waiting.version >= capture.version { return false }
            state.waiting = capture
            let start = !state.draining
            state.draining = true
            return start
        }
        if start { queue.async { self.drain() } }
    }

    /// Writes `capture` (if newer than what was written) after everything queued, and returns
    /// once it is on disk, or the write failed: for a DC that stops.
    func flush(_ capture: BoxesCapture?) {
        if let capture { submit(capture) }
        queue.sync { drain() }
    }

    private func drain() {
        while let next = takeNext() {
            do {
                try write(next.snapshot)
                written(next)
            } catch {
                failed(next, reason: error.description)
                return
            }
        }
    }

    /// Replaces the file in one rename, so a crash mid-write leaves the previous snapshot.
    private func write(_ snapshot: MessageBoxStore.Snapshot) throws(WriteFailure) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let data: Data
        do { data = try encoder.encode(snapshot) } catch { throw WriteFailure(description: "encoding: \(error)") }
        let temporary = url.appendingPathExtension("tmp")
        guard FileManager.default.createFile(atPath: temporary.path, contents: data, attributes: [.posixPermissions: 0o600]) else {
            throw WriteFailure(description: "cannot create \(temporary.path) (full disk, permissions, or something else at that path)")
        }
        guard rename(temporary.path, url.path) == 0 else {
            let reason = String(cString: strerror(errno))
            try? FileManager.default.removeItem(at: temporary)
            throw WriteFailure(description: "cannot rename \(temporary.lastPathComponent) over \(url.lastPathComponent): \(reason)")
        }
    }

    private struct WriteFailure: Error, CustomStringConvertible {
        var description: String
    }

    /// The waiting capture when it is newer than the last written; nil, and the drain ends, when none is.
    private func takeNext() -> BoxesCapture? {
        state.withLock { state in
            while let waiting = state.waiting {
                state.waiting = nil
                if waiting.version > state.written { return waiting }
            }
            state.draining = false
            return nil
        }
    }

    private func written(_ capture: BoxesCapture) {
        let recovered = state.withLock { state -> Bool in
            state.written = max(state.written, capture.version)
            defer { state.failure = nil }
            return state.failure != nil
        }
        if recovered { logger.notice("message boxes saved again", metadata: ["path": "\(url.path)"]) }
    }

    /// Keeps `capture` for the next try unless a newer one is waiting, and ends this drain (the
    /// next submit or flush starts another).
    private func failed(_ capture: BoxesCapture, reason: String) {
        let first = state.withLock { state -> Bool in
            if state.waiting.map({ $0.version < capture.version }) ?? true { state.waiting = capture }
            state.draining = false
            defer { state.failure = reason }
            return state.failure == nil
        }
        guard first else { return }
        logger.error("message boxes not saved: a restart of the test DC would lose the messages and pts since the last save; kept in memory, tried again on the next change and at shutdown",
                     metadata: ["path": "\(url.path)", "reason": "\(reason)"])
    }
}

extension DCState {
    var boxesCapture: BoxesCapture {
        BoxesCapture(
            version: boxesVersion, privateBoxes: privateBoxes, userPts: userPts, userSeq: userSeq, userUpdateLogs: userUpdateLogs,
            channels: world.channels, channelPts: channelPts, channelUpdateLogs: channelUpdateLogs)
    }

    var boxesSnapshot: MessageBoxStore.Snapshot { boxesCapture.snapshot }

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

    /// The boxes to write when they changed since the last save and either `force` is set or the
    /// store's interval passed since then: the caller hands them to the store's writer once it
    /// has left the DC's lock.
    mutating func boxesToSave(force: Bool = false) -> (capture: BoxesCapture, writer: MessageBoxWriter)? {
        guard let store = boxStore, boxesVersion != savedBoxesVersion else { return nil }
        let now = ContinuousClock.now
        if !force, let last = lastBoxesSave, last.duration(to: now) < store.minimumInterval { return nil }
        savedBoxesVersion = boxesVersion
        lastBoxesSave = now
        return (boxesCapture, store.writer)
    }
}
