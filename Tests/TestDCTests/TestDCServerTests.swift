import Foundation
import MTProtoCrypto
import Testing
@testable import TestDC

/// The cluster started in-process on ephemeral loopback ports.
@Suite struct TestDCServerTests {
    /// By default every DC serves one RSA key, as production does.
    @Test func everyDCSharesOneKeyByDefault() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("testdc-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let running = try await TestDCServer.start(TestDCConfiguration(basePort: 0, dcCount: 3, controlEnabled: false, stateDirectory: directory))
        try await running.shutdown()
        #expect(Set(running.table.dcs.map(\.fingerprint)).count == 1)
        #expect(running.table.dcs.count == 3)
        #expect(!FileManager.default.fileExists(atPath: directory.appendingPathComponent("dc2.key.pem").path))
    }

    @Test func startsEveryDCWithItsOwnKeyAndWritesTheTable() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("testdc-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        var configuration = TestDCConfiguration(basePort: 0, dcCount: 2, stateDirectory: directory)
        configuration.keyPerDC = true
        let running = try await TestDCServer.start(configuration)
        let table = running.table
        try await running.shutdown()
        #expect(table.dcs.map(\.id) == [1, 2])
        #expect(Set(table.dcs.map(\.port)).count == 2 && !table.dcs.contains { $0.port == 0 })
        #expect(Set(table.dcs.map(\.fingerprint)).count == 2)
        #expect(table.control?.port ?? 0 > 0)
        let written = try JSONDecoder().decode(ClusterTable.self, from: Data(contentsOf: directory.appendingPathComponent("dcs.json")))
        #expect(written == table)
        let pem = try String(contentsOf: directory.appendingPathComponent("dc1.pub.pem"), encoding: .utf8)
        #expect(pem.hasPrefix("-----BEGIN RSA PUBLIC KEY-----"))
        #expect(running.core.withState { $0.dcs.sorted { $0.key < $1.key }.map(\.value.port) } == table.dcs.map(\.port))

        // A second start reuses the persisted keys.
        var restarted = TestDCConfiguration(basePort: 0, dcCount: 2, controlEnabled: false, stateDirectory: directory)
        restarted.keyPerDC = true
        let again = try await TestDCServer.start(restarted)
        try await again.shutdown()
        #expect(again.table.dcs.map(\.fingerprint) == table.dcs.map(\.fingerprint))
        #expect(again.table.control == nil)
    }

    @Test func authKeysAndLoginsSurviveARestart() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("testdc-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let key = try AuthKeyFixture.make()
        let other = try AuthKey(Array(key.bytes.reversed()))
        let first = try await TestDCServer.start(TestDCConfiguration(basePort: 0, dcCount: 2, controlEnabled: false, stateDirectory: directory))
        first.core.withState { state in
            state.registerAuthKey(key, dc: 2)
            state.bind(CallContext(dc: 2, authKeyID: key.id), to: 1003)
            state.registerAuthKey(other, dc: 1)
            state.dropAuthKey(dc: 1, keyID: other.id)
        }
        try await first.shutdown()
        let file = directory.appendingPathComponent("authkeys.json")
        let mode = try FileManager.default.attributesOfItem(atPath: file.path)[.posixPermissions] as? Int
        #expect(mode == 0o600)

        let second = try await TestDCServer.start(TestDCConfiguration(basePort: 0, dcCount: 2, controlEnabled: false, stateDirectory: directory))
        try await second.shutdown()
        let restored = second.core.withState { state in
            (state.authKeyIDs(dc: 2), state.authKeyIDs(dc: 1), state.userID(for: CallContext(dc: 2, authKeyID: key.id)), state.authKey(id: key.id, dc: 2))
        }
        #expect(restored.0 == [key.id])
        #expect(restored.1.isEmpty)
        #expect(restored.2 == 1003)
        #expect(restored.3 == key)
    }

    @Test func aCorruptKeyFileIsAnErrorThatSaysWhatToDo() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("testdc-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try Data("not json".utf8).write(to: directory.appendingPathComponent("authkeys.json"))
        let error = await #expect(throws: TestDCError.self) {
            try await TestDCServer.start(TestDCConfiguration(basePort: 0, dcCount: 1, controlEnabled: false, stateDirectory: directory))
        }
        #expect(error?.description.contains("delete it") == true)
    }
}
