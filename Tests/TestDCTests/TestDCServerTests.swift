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

    /// A client resuming from its stored pts must find the DC where it left it: messages, pts,
    /// seq and the update log getDifference reads come back after a restart.
    @Test func messageBoxesSurviveARestart() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("testdc-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let configuration = TestDCConfiguration(basePort: 0, dcCount: 1, controlEnabled: false, stateDirectory: directory)
        let first = try await TestDCServer.start(configuration)
        let channel = try #require(first.core.withState { $0.world.channels.first?.id })
        for index in 1...3 { try first.core.sendPrivateMessage(from: 1002, to: 1001, text: "hello \(index)") }
        let post = try first.core.postToChannel(channel, text: "news")
        try first.core.editChannelMessage(channel, messageID: post, text: "news, edited")
        func boxes(_ dc: RunningTestDC) -> MessageBoxStore.Snapshot { dc.core.withState { $0.boxesSnapshot } }
        let before = boxes(first)
        // Every non-bot account but the author got the post and its edit pushed (seq moved).
        #expect(first.core.withState { $0.pts(user: 1001) } == 4 && before.users.count == 4 && before.channels.count == 1)
        try await first.shutdown()
        let file = directory.appendingPathComponent("boxes.json")
        let mode = try FileManager.default.attributesOfItem(atPath: file.path)[.posixPermissions] as? Int
        #expect(mode == 0o600)

        let second = try await TestDCServer.start(configuration)
        #expect(boxes(second) == before)
        #expect(second.core.withState { ($0.pts(user: 1001), $0.userSeq[1001], $0.privateBoxes[1001]?.map(\.text)) }
            == (4, 5, ["hello 1", "hello 2", "hello 3"]))
        // And it goes on from there: the next message takes the next pts and id.
        let next = try second.core.sendPrivateMessage(from: 1002, to: 1001, text: "after the restart")
        #expect(next == 4 && second.core.withState { $0.pts(user: 1001) } == 5)
        try await second.shutdown()
    }

    @Test func anUnreadableBoxFileIsAnErrorThatSaysWhatToDo() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("testdc-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try Data("{\"format\": 2}".utf8).write(to: directory.appendingPathComponent("boxes.json"))
        let error = await #expect(throws: TestDCError.self) {
            try await TestDCServer.start(TestDCConfiguration(basePort: 0, dcCount: 1, controlEnabled: false, stateDirectory: directory))
        }
        #expect(error.map { "\($0)" }?.contains("delete it") == true)
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
