import MTProto
import TLSchema
import TestDC
import Testing
import class MTProtoClient.TelegramClient
@testable import MTProtoClient

@Suite struct MessagingEndToEndTests {
    @Test func sendAMessageThenReadItBackWithGetHistory() async throws {
        let cluster = try await Cluster.start()
        let client = cluster.client()
        _ = try await cluster.logIn(client, phone: alice.phone)
        let bobPeer = Api.InputPeer.inputPeerUser(.init(userId: bob.id, accessHash: bob.accessHash))
        let text = "hello from the end-to-end test"
        let sent = try await client.invoke(Api.functions.messages.SendMessage(peer: bobPeer, message: text, randomId: 42))
        guard case .updateShortSentMessage = sent else {
            Issue.record("unexpected sendMessage answer \(sent)")
            return
        }
        let history = try await client.invoke(Api.functions.messages.GetHistory(
            peer: bobPeer, offsetId: 0, offsetDate: 0, addOffset: 0, limit: 100, maxId: 0, minId: 0, hash: 0))
        let texts: [String]
        switch history {
        case .messages(let value): texts = value.messages.compactMap(Self.text)
        case .messagesSlice(let value): texts = value.messages.compactMap(Self.text)
        default: texts = []
        }
        #expect(texts.contains(text))
        await client.close()
        await cluster.shutdown()
    }

    /// A 3,000-character message is over the session's gzip threshold: it goes out gzip_packed and
    /// the server stores the inflated text.
    @Test func aLargeRequestGoesOutGzippedAndArrivesIntact() async throws {
        let cluster = try await Cluster.start()
        let client = cluster.client()
        _ = try await cluster.logIn(client, phone: alice.phone)
        let bobPeer = Api.InputPeer.inputPeerUser(.init(userId: bob.id, accessHash: bob.accessHash))
        let text = String(repeating: "compressible text ", count: 166)
        _ = try await client.invoke(Api.functions.messages.SendMessage(peer: bobPeer, message: text, randomId: 7))
        let history = try await client.invoke(Api.functions.messages.GetHistory(
            peer: bobPeer, offsetId: 0, offsetDate: 0, addOffset: 0, limit: 10, maxId: 0, minId: 0, hash: 0))
        guard case .messages(let value) = history else {
            Issue.record("unexpected history \(history)")
            return
        }
        #expect(value.messages.compactMap(Self.text).contains(text))
        await client.close()
        await cluster.shutdown()
    }

    @Test func manyRequestsInFlightOnOneConnection() async throws {
        let cluster = try await Cluster.start()
        let client = cluster.client()
        try await client.connect()
        let answers = try await withThrowingTaskGroup(of: Int32.self) { group in
            for _ in 0..<64 {
                group.addTask {
                    switch try await client.invoke(Api.functions.help.GetNearestDc()) {
                    case .nearestDc(let value): value.thisDc
                    }
                }
            }
            var all: [Int32] = []
            for try await answer in group { all.append(answer) }
            return all
        }
        #expect(answers.count == 64 && answers.allSatisfy { $0 == 1 })
        await client.close()
        await cluster.shutdown()
    }

    @Test func callsAfterCloseFailWithClosed() async throws {
        let cluster = try await Cluster.start()
        let client = cluster.client()
        try await client.connect()
        await client.close()
        await #expect {
            _ = try await client.invoke(Api.functions.help.GetNearestDc())
        } throws: { error in
            guard case TelegramError.closed = error else { return false }
            return true
        }
        await cluster.shutdown()
    }

    static func text(_ message: Api.Message) -> String? {
        if case .message(let value) = message { return value.message }
        return nil
    }
}
