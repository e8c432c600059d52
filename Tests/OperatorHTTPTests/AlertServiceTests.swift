import MTProto
@testable import OperatorHTTP
import SessionManager
import Testing

/// What the alert service sends of what its tracker makes.
@Suite struct AlertServiceTests {
    /// An account that changed hands (its holder marked it and let it go; a standby took it and
    /// checked it again) is one incident: the alert another process just sent is not sent again.
    /// Before, a cluster said "bob needs a person" twice within a second.
    @Test func anAlertAnotherProcessJustSentIsLeftOut() {
        let now = ISOTime.string(UnixTime(seconds: 1_800_000_000))
        let needs = Alert(event: .accountNeedsAttention, severity: .critical, account: "bob", at: now, host: "h", summary: "bob needs a person",
                          steps: [], codes: ["marked_revoked"], memoryKeys: ["account:bob:marked_revoked"])
        let recovered = Alert(event: .accountRecovered, severity: .info, account: "carol", at: now, host: "h", summary: "carol is ready again",
                              steps: [], codes: [], memoryKeys: ["recovered:carol"])
        let unkeyed = Alert(event: .accountRecovered, severity: .info, account: nil, at: now, host: "h", summary: "x", steps: [], codes: [])
        let kept = AlertService.leavingOut([needs, recovered, unkeyed], saidAlready: ["account:bob:marked_revoked", "flood:alice:x"])
        #expect(kept.map(\.summary) == ["carol is ready again", "x"])
        #expect(AlertService.leavingOut([needs], saidAlready: []).count == 1)
    }
}
