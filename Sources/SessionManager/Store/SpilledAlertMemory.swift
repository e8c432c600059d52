import Foundation
import MTProto

/// An `AlertMemory` that keeps what its store does not take (stalled, locked) in a small file beside
/// it, until the store takes it: a process that ends while its store stalls (a deploy during an
/// outage) otherwise lost the alerts it had just sent, and the next process, not knowing an incident
/// was said, never said it was over ("ready again"). The file is read with the store's memory and
/// emptied into the store by the next record that succeeds. Written whole (a temporary file renamed
/// over it), mode 0600; one that cannot be read is ignored (it holds no secret, only what was said).
public struct SpilledAlertMemory: AlertMemory {
    public let base: any AlertMemory
    public let path: String
    /// Keys kept in the file at most (the newest): a store that never comes back does not grow it.
    static let limit = 1000

    public init(base: any AlertMemory, path: String) {
        self.base = base
        self.path = path
    }

    public func alertsSent(since: UnixTime) async throws(SessionStoreError) -> [String: UnixTime] {
        var sent = try await base.alertsSent(since: since)
        for (key, at) in spilled() where at >= since {
            if sent[key].map({ $0 < at }) ?? true { sent[key] = at }
        }
        return sent
    }

    public func recordAlertsSent(_ keys: [String], at: UnixTime, forgetBefore: UnixTime) async throws(SessionStoreError) {
        let waiting = spilled()
        do {
            // Oldest first, so the store keeps the latest time of a key said more than once.
            for (time, group) in Dictionary(grouping: waiting, by: \.value).sorted(by: { $0.key < $1.key }) {
                try await base.recordAlertsSent(group.map(\.key), at: time, forgetBefore: forgetBefore)
            }
            try await base.recordAlertsSent(keys, at: at, forgetBefore: forgetBefore)
        } catch {
            var kept = waiting
            for key in keys { kept[key] = at }
            spill(kept)
            throw error
        }
        if !waiting.isEmpty { try? FileManager.default.removeItem(atPath: path) }
    }

    /// What the file holds; empty when there is none or it cannot be read.
    func spilled() -> [String: UnixTime] {
        guard let data = FileManager.default.contents(atPath: path),
              let decoded = try? JSONDecoder().decode([String: Double].self, from: data) else { return [:] }
        return decoded.mapValues { UnixTime(seconds: $0) }
    }

    private func spill(_ keys: [String: UnixTime]) {
        let newest = keys.sorted { $0.value > $1.value }.prefix(Self.limit)
        let encoded = Dictionary(uniqueKeysWithValues: newest.map { ($0.key, $0.value.seconds) })
        guard let data = try? JSONEncoder().encode(encoded) else { return }
        let temporary = path + ".tmp"
        guard FileManager.default.createFile(atPath: temporary, contents: data, attributes: [.posixPermissions: 0o600]) else { return }
        _ = rename(temporary, path)
    }
}
