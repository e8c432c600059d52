import Foundation
import Testing
@testable import TestDC

/// The cluster started in-process on ephemeral loopback ports.
@Suite struct TestDCServerTests {
    @Test func startsEveryDCWithItsOwnKeyAndWritesTheTable() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("testdc-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let running = try await TestDCServer.start(TestDCConfiguration(basePort: 0, dcCount: 2, stateDirectory: directory))
        let table = running.table
        try await running.shutdown()
        #expect(table.dcs.map(\.id) == [1, 2])
        #expect(Set(table.dcs.map(\.port)).count == 2 && !table.dcs.contains { $0.port == 0 })
        #expect(Set(table.dcs.map(\.fingerprint)).count == 2)
        #expect(table.control?.port ?? 0 > 0)
        let written = try JSONDecoder().decode(DCTable.self, from: Data(contentsOf: directory.appendingPathComponent("dcs.json")))
        #expect(written == table)
        let pem = try String(contentsOf: directory.appendingPathComponent("dc1.pub.pem"), encoding: .utf8)
        #expect(pem.hasPrefix("-----BEGIN RSA PUBLIC KEY-----"))
        #expect(running.core.withState { $0.dcs.map(\.port) } == table.dcs.map(\.port))

        // A second start reuses the persisted keys.
        let again = try await TestDCServer.start(TestDCConfiguration(basePort: 0, dcCount: 2, controlEnabled: false, stateDirectory: directory))
        try await again.shutdown()
        #expect(again.table.dcs.map(\.fingerprint) == table.dcs.map(\.fingerprint))
        #expect(again.table.control == nil)
    }
}
