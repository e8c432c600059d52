import Foundation
import Logging
import MTProtoCrypto

/// `authkeys.json` in the state directory: every DC's auth keys and the account each is logged in
/// as, so clients keep their keys and logins across restarts of the test DC. Holds secrets: the file
/// is written with mode 0600 and its content never reaches a log.
struct AuthKeyStore: Sendable {
    let url: URL
    /// Says when a save fails (never what the file holds).
    let logger: Logger

    struct Entry: Codable, Equatable {
        var dc: Int32
        /// The 256-byte key, hex.
        var key: String
        var userID: Int64?
    }

    func load() throws -> [Entry] {
        guard FileManager.default.fileExists(atPath: url.path) else { return [] }
        do {
            return try JSONDecoder().decode([Entry].self, from: Data(contentsOf: url))
        } catch {
            throw TestDCError.stateDirectory(path: url.deletingLastPathComponent().path, reason: "\(url.lastPathComponent) is unreadable (\(error)); delete it to start without saved keys")
        }
    }

    /// Writes the file; nil when it worked, else why not.
    func save(_ entries: [Entry]) -> String? {
        do {
            try write(entries)
            return nil
        } catch {
            return "\(error)"
        }
    }

    /// Replaces the file in one rename, so a crash mid-write leaves the previous keys (written in
    /// place, a truncated file made every client of the DC log in again after a restart).
    private func write(_ entries: [Entry]) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let data = try encoder.encode(entries)
        let temporary = url.appendingPathExtension("tmp")
        // Created empty and 0600 before the secret goes in.
        try? FileManager.default.removeItem(at: temporary)
        guard FileManager.default.createFile(atPath: temporary.path, contents: nil, attributes: [.posixPermissions: 0o600]) else {
            throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: temporary.path])
        }
        do {
            let handle = try FileHandle(forWritingTo: temporary)
            defer { try? handle.close() }
            try handle.write(contentsOf: data)
            try handle.synchronize()
        } catch {
            try? FileManager.default.removeItem(at: temporary)
            throw error
        }
        guard rename(temporary.path, url.path) == 0 else {
            let reason = String(cString: strerror(errno))
            try? FileManager.default.removeItem(at: temporary)
            throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: url.path, NSLocalizedDescriptionKey: "rename: \(reason)"])
        }
    }

}

extension DCState {
    /// The keys and logins as the store keeps them (dropped keys are left out).
    var storedAuthKeys: [AuthKeyStore.Entry] {
        authKeys.filter { !droppedKeys.contains($0.key) }
            .sorted { ($0.key.dc, $0.key.keyID) < ($1.key.dc, $1.key.keyID) }
            .map { AuthKeyStore.Entry(dc: $0.key.dc, key: Hex.encode($0.value.bytes), userID: authorizations[$0.key]) }
    }

    /// Restores saved keys; entries that are malformed or name an account the world lacks lose only that part.
    mutating func restore(_ entries: [AuthKeyStore.Entry]) {
        for entry in entries {
            guard let bytes = Hex.decode(entry.key), let key = try? AuthKey(bytes) else { continue }
            registerAuthKey(key, dc: entry.dc)
            if let userID = entry.userID, user(id: userID) != nil {
                bind(CallContext(dc: entry.dc, authKeyID: key.id), to: userID)
            }
        }
    }

    /// Writes the store when keys or logins changed since the last save. A failed save costs
    /// clients a new key after a restart of the DC: it is logged (once, until a save works again)
    /// and tried again on the next change at least `authSaveRetryInterval` later, or at shutdown
    /// (`force`), not on every request meanwhile (each would try the disk under the DC's lock).
    mutating func saveAuthKeysIfChanged(force: Bool = false) {
        guard let store = authKeyStore, authVersion != savedAuthVersion else { return }
        let now = ContinuousClock.now
        if !force, authSaveFailure != nil, let last = lastAuthSaveAttempt, last.duration(to: now) < Self.authSaveRetryInterval { return }
        lastAuthSaveAttempt = now
        if let failure = store.save(storedAuthKeys) {
            if authSaveFailure == nil {
                store.logger.error("auth keys not saved: after a restart of the test DC, clients with keys made since the last save need a new key and login; tried again on the next change and at shutdown",
                                   metadata: ["path": "\(store.url.path)", "reason": "\(failure)"])
            }
            authSaveFailure = failure
            return
        }
        if authSaveFailure != nil { store.logger.notice("auth keys saved again", metadata: ["path": "\(store.url.path)"]) }
        authSaveFailure = nil
        savedAuthVersion = authVersion
    }

    static let authSaveRetryInterval: Duration = .seconds(1)
}
