import Foundation
import Logging
import MTProto
import MTProtoCrypto
import SessionManager
import StoreTestSupport
import TestDC
import Testing

/// Two real OS processes on one account against the test DC (which answers AUTH_KEY_DUPLICATED
/// when one key is live on two sessions): the second is refused by the lease before it connects;
/// once the first is killed, the next takes over with the stored key and no new login. On both
/// engines: on PostgreSQL the processes share one database, as processes on several hosts would.
@Suite struct TwoProcessLeaseTests {
    @Test(arguments: StoreEngine.allCases) func theSecondProcessIsRefusedAndTheNextTakesOverWithoutDuplicateKeys(_ engine: StoreEngine) async throws {
        try await EngineStore.with(engine) { place in
            try await run(place)
        }
    }

    private func run(_ place: EngineStore) async throws {
        let quiet = Logger(label: "testdc") { _ in SwiftLogNoOpLogHandler() }
        let cluster = try await TestDCServer.start(TestDCConfiguration(dcCount: 2, controlEnabled: false, detectsDuplicateKeys: true, logger: quiet))
        let dir = TemporaryDirectory("lease")
        defer { dir.remove() }
        try FileManager.default.createDirectory(atPath: dir.path, withIntermediateDirectories: true)
        let clusterFile = dir.path + "-cluster.json"
        defer { try? FileManager.default.removeItem(atPath: clusterFile) }
        let description: [String: Any] = [
            "dcs": cluster.table.dcs.map { ["id": Int($0.id), "host": $0.host, "port": $0.port] as [String: Any] },
            "publicKeyPEMs": Array(cluster.publicKeyPEMs.values),
        ]
        try JSONSerialization.data(withJSONObject: description).write(to: URL(fileURLWithPath: clusterFile))
        let storeDir = place.location

        let holder = try ChildProcess(["hold", storeDir, clusterFile])
        let holding = await holder.nextLine() ?? "no output"
        #expect(holding.hasPrefix("holding token=1 user=1001"), "\(holding)")

        let second = try ChildProcess(["try", storeDir, clusterFile])
        let refused = await second.nextLine() ?? "no output"
        #expect(await second.waitForExit() == 3, "\(refused)")
        #expect(refused == "held pid=\(holder.pid) token=1 code=store.lease_held")

        await holder.kill()
        let next = try ChildProcess(["try", storeDir, clusterFile])
        let ran = await next.nextLine() ?? "no output"
        #expect(await next.waitForExit() == 0, "\(ran)")
        // Token 2: a takeover; keyExchanges=0: the stored key was reused, no new login.
        #expect(ran == "ok token=2 user=1001 keyExchanges=0")
        #expect(!holding.contains("duplicated") && !refused.contains("duplicated") && !ran.contains("duplicated"))

        let store = try await place.open()
        #expect(try await store.currentLease(account: "probe") == nil, "the last owner released its lease")
        #expect(try await store.loadSession(account: "probe")?.isAuthorized == true)
        #expect(try await store.identity(account: "probe") != nil)
        try await store.shutDown()
        try await cluster.shutdown()
    }
}
