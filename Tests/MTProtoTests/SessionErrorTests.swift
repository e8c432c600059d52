import Testing
import MTProtoCrypto
@testable import MTProto

@Suite struct SessionErrorTests {
    static let all: [SessionError] = [
        .undecryptable(.messageKeyMismatch),
        .undecryptable(.authKeyIDMismatch(expected: 1, received: 2)),
        .wrongSession(received: 1, expected: 2),
        .wrongMessageIDParity(messageID: 6),
        .duplicateMessage(messageID: 5),
        .messageIDTooOld(messageID: 5),
        .messageTimeOutOfWindow(messageID: 5, secondsFromNow: -400),
        .nestedContainer(messageID: 5),
        .invalidContainer(messageID: 5, reason: "truncated"),
        .malformedMessage(reason: "rpc_error: truncated"),
        .gzip(.outputTooLarge(limit: 100)),
        .gzip(.corrupt(zlibCode: -3)),
        .gzip(.truncated),
    ]

    @Test func errorsSayWhatHappenedAndWhatToDo() {
        for error in Self.all {
            let text = error.description
            #expect(text.count > 40, "\(text)")
            #expect(text.contains(error.isFatal ? "reconnect" : "stays usable"), "\(text)")
        }
        #expect(Self.all.filter(\.isFatal).count == 2, "only undecryptable packets end the connection")
    }

    @Test func descriptionsNeverShowKeyMaterial() {
        let key = Fixtures.authKey()
        let keyHex = key.bytes.prefix(8).map { String($0, radix: 16) }.joined()
        var client = ClientSession(authKey: key, sessionID: 1, serverSalt: 2, entropy: SeededEntropy(seed: 1))
        _ = client.enqueue(request: Fixtures.request(1))
        let server = ServerSession(
            authKey: key, salts: ServerSaltSchedule(initialSalt: 2, validSince: Fixtures.start, seed: Array(repeating: 0xEE, count: 32)),
            entropy: SeededEntropy(seed: 2))
        var dumped = ""
        dump(client, to: &dumped)
        dump(server, to: &dumped)
        dump(server.salts, to: &dumped)
        for text in [client.description, server.description, server.salts.description, String(reflecting: server), dumped] {
            #expect(!text.contains(keyHex))
            #expect(!text.contains("238"), "the salt seed")
        }
        #expect(client.description.contains("pending requests: 1"))
    }
}
