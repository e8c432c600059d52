import MTProto
import SessionManager
import Testing

@Suite struct FloodWaitTests {
    @Test func activeUntilItsUntilTime() {
        let wait = FloodWait(account: "alice", method: "messages.sendMessage", kind: .floodWait,
                             recordedAt: UnixTime(seconds: 100), until: UnixTime(seconds: 160))
        #expect(wait.isActive(at: UnixTime(seconds: 159.9)))
        #expect(!wait.isActive(at: UnixTime(seconds: 160)))
    }
}
