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

    /// A process in another PID namespace of this host (a container given the host's name: host
    /// networking, a fixed hostname) cannot see the holder's pid, and must not take that for death.
    /// Before, it took a live holder's lease at once (an outside audit: all four accounts within
    /// 2 s), both processes connected with one key, and the test DC (as Telegram) destroyed it:
    /// AUTH_KEY_DUPLICATED, a new login by code for every account.
    @Test(.enabled(if: Self.canMakePIDNamespaces, "needs unshare(1) and the right to make a PID namespace (root)"),
          arguments: StoreEngine.allCases)
    func aProcessInAnotherPIDNamespaceLeavesALiveHoldersLeaseAlone(_ engine: StoreEngine) async throws {
        try await EngineStore.with(engine) { place in
            let quiet = Logger(label: "testdc") { _ in SwiftLogNoOpLogHandler() }
            let cluster = try await TestDCServer.start(TestDCConfiguration(dcCount: 2, controlEnabled: false, detectsDuplicateKeys: true, logger: quiet))
            let clusterFile = try Self.describe(cluster)
            defer { try? FileManager.default.removeItem(atPath: clusterFile) }
            let holder = try ChildProcess(["hold", place.location, clusterFile])
            let holding = await holder.nextLine() ?? "no output"
            #expect(holding.hasPrefix("holding token=1 user=1001"), "\(holding)")

            let contained = try ChildProcess(["try", place.location, clusterFile], under: ["/usr/bin/unshare", "--pid", "--fork", "--mount-proc"])
            let refused = await contained.nextLine() ?? "no output"
            #expect(await contained.waitForExit() == 3, "\(refused)")
            #expect(refused.hasPrefix("held pid=\(holder.pid) token=1 "), "\(refused)")
            await holder.kill()
            try await cluster.shutdown()
        }
    }

    static let canMakePIDNamespaces: Bool = {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/unshare") else { return false }
        let probe = Process()
        probe.executableURL = URL(fileURLWithPath: "/usr/bin/unshare")
        probe.arguments = ["--pid", "--fork", "--mount-proc", "/bin/true"]
        probe.standardError = FileHandle.nullDevice
        guard (try? probe.run()) != nil else { return false }
        probe.waitUntilExit()
        return probe.terminationStatus == 0
    }()

    /// The cluster's DCs and keys in the file SessionStoreProbe reads.
    static func describe(_ cluster: RunningTestDC) throws -> String {
        let clusterFile = TemporaryDirectory("cluster").path + ".json"
        let description: [String: Any] = [
            "dcs": cluster.table.dcs.map { ["id": Int($0.id), "host": $0.host, "port": $0.port] as [String: Any] },
            "publicKeyPEMs": Array(cluster.publicKeyPEMs.values),
        ]
        try JSONSerialization.data(withJSONObject: description).write(to: URL(fileURLWithPath: clusterFile))
        return clusterFile
    }

    private func run(_ place: EngineStore) async throws {
        let quiet = Logger(label: "testdc") { _ in SwiftLogNoOpLogHandler() }
        let cluster = try await TestDCServer.start(TestDCConfiguration(dcCount: 2, controlEnabled: false, detectsDuplicateKeys: true, logger: quiet))
        let clusterFile = try Self.describe(cluster)
        defer { try? FileManager.default.removeItem(atPath: clusterFile) }
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
