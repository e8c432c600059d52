import Logging
import MTProto
import MTProtoCrypto
import Synchronization
import Testing
@testable import MTProtoClient

/// The client's saves reach the storage in the order the state changed: the last state stored is
/// the newest, however the storage interleaves two saves from different tasks.
@Suite struct SessionSaveOrderTests {
    /// Holds the first save until released; records every state saved, in order.
    actor GatedStorage: SessionStorage {
        private(set) var saved: [SessionState] = []
        private var gate: CheckedContinuation<Void, Never>?
        private var holdFirst = true
        private var firstArrived: [CheckedContinuation<Void, Never>] = []

        func load() async throws -> SessionState? { nil }

        func save(_ state: SessionState) async throws {
            if holdFirst {
                holdFirst = false
                for waiter in firstArrived { waiter.resume() }
                firstArrived = []
                await withCheckedContinuation { gate = $0 }
            }
            saved.append(state)
        }

        func waitForFirst() async {
            if !holdFirst { return }
            await withCheckedContinuation { firstArrived.append($0) }
        }

        func release() {
            gate?.resume()
            gate = nil
        }
    }

    @Test func aLaterStateIsNeverOverwrittenByAnEarlierOne() async throws {
        let storage = GatedStorage()
        let configuration = TelegramClientConfiguration(apiID: 1, apiHash: "test", serverKeys: [InMemoryDC.rsaKey.publicKey])
        let client = TelegramClient(configuration: configuration, storage: storage, logger: Logger(label: "test") { _ in SwiftLogNoOpLogHandler() })
        let first = UpdatesState(pts: 1, qts: 0, seq: 0, date: 1)
        let second = UpdatesState(pts: 2, qts: 0, seq: 0, date: 2)
        // The first save is held inside the storage; meanwhile the state changes and is saved again.
        let earlier = Task { await client.saveUpdatesState(first) }
        await storage.waitForFirst()
        let later = Task { await client.saveUpdatesState(second) }
        // Give the later save every chance to overtake (it must wait for its turn instead).
        for _ in 0..<100 { await Task.yield() }
        await storage.release()
        await earlier.value
        await later.value
        let saved = await storage.saved
        #expect(saved.last?.updates == second, "the newest state is the one stored: \(saved.map { $0.updates?.pts ?? -1 })")
        await client.close()
    }
}
