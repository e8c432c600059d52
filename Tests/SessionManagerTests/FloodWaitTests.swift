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

    /// The advice names what made the call: a job (lower its rate), tgsm itself (nothing to do), or
    /// a person logging in (wait; before, "lower the rate of the jobs", though no job logs in).
    @Test(arguments: [
        ("messages.sendMessage", "Lower the rate of the jobs"),
        ("updates.getState", "one of tgsm's own calls"),
        ("auth.sendCode", "a login step (`tgsm auth`)"),
    ])
    func theAdviceNamesWhoMadeTheCall(method: String, advice: String) {
        let wait = FloodWait(account: "alice", method: method, kind: .floodWait, recordedAt: UnixTime(seconds: 100), until: UnixTime(seconds: 160))
        #expect(wait.rateAdvice.contains(advice), "\(wait.rateAdvice)")
        if method.hasPrefix("auth.") { #expect(!wait.rateAdvice.contains("jobs")) }
    }
}
