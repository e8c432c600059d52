import Foundation
import MTProtoCrypto
import StoreTestSupport
import Testing
@testable import TestDC

/// `authkeys.json`: a save that fails is logged once and tried again, not dropped; the file holds
/// the keys once the path is free again.
@Suite struct AuthKeyStoreTests {
    private func key(_ seed: UInt8) throws -> AuthKey {
        try AuthKey([UInt8](repeating: seed, count: 256))
    }

    /// A directory where the file goes: every save fails, as on a full disk or a wrong mount.
    @Test func aFailedSaveIsLoggedOnceAndTheKeysWrittenAtTheNextTry() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("authkeys-\(UUID().uuidString)")
        let url = directory.appendingPathComponent("authkeys.json")
        try FileManager.default.createDirectory(at: url.appendingPathComponent("occupied"), withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let log = LogCapture()
        var state = DCState.forTests()
        state.authKeyStore = AuthKeyStore(url: url, logger: log.logger)

        state.registerAuthKey(try key(1), dc: 2)
        state.saveAuthKeysIfChanged()
        state.registerAuthKey(try key(2), dc: 2)
        state.saveAuthKeysIfChanged()               // within the retry interval: not tried
        state.saveAuthKeysIfChanged(force: true)    // tried, fails again: not logged again
        #expect(state.authSaveFailure != nil)
        let errors = log.all.filter { $0.level == .error }
        #expect(errors.count == 1, "\(log.messages)")
        #expect(errors.first?.message.hasPrefix("auth keys not saved") == true && errors.first?.metadata["path"] == url.path)

        try FileManager.default.removeItem(at: url)
        state.saveAuthKeysIfChanged(force: true)    // what a stopping DC does
        #expect(state.authSaveFailure == nil && state.savedAuthVersion == state.authVersion)
        let saved = try #require(state.authKeyStore).load()
        #expect(saved.count == 2, "both keys, the one whose save failed included")
        #expect(log.all.contains { $0.level == .notice && $0.message == "auth keys saved again" })
        let mode = try FileManager.default.attributesOfItem(atPath: url.path)[.posixPermissions] as? Int
        #expect(mode == 0o600)
    }
}
