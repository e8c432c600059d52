import MTProto
@testable import OperatorHTTP
import Testing

/// A store that cannot be read is said once after the hold-off, and its return once: before, a
/// PostgreSQL server down for a minute (every lease lost with it) was never said.
@Suite struct StoreOutageAlarmTests {
    @Test func anOutageLongerThanTheHoldOffIsSaidOnceAndItsEndOnce() {
        var alarm = StoreOutageAlarm(holdOff: 20, host: "db-client-1")
        let t0 = UnixTime(seconds: 1_800_000_000)
        #expect(alarm.observe(failure: nil, at: t0) == nil)
        // A blip shorter than the hold-off: nothing, before or after.
        #expect(alarm.observe(failure: "no connection", at: t0 + 10) == nil)
        #expect(alarm.observe(failure: nil, at: t0 + 20) == nil)
        // An outage: said once it lasted the hold-off, then not again.
        #expect(alarm.observe(failure: "no connection to the PostgreSQL server could be made", at: t0 + 30) == nil)
        let down = alarm.observe(failure: "no connection to the PostgreSQL server could be made", at: t0 + 50)
        #expect(down?.event == .storeUnreachable && down?.severity == .critical && down?.host == "db-client-1", "\(String(describing: down))")
        #expect(down?.summary.contains("since 2027-01-15T08:00:30Z") == true && down?.summary.contains("PostgreSQL server") == true)
        #expect(down?.steps.joined().contains("takes them back by itself") == true)
        #expect(alarm.observe(failure: "still", at: t0 + 60) == nil && alarm.observe(failure: "still", at: t0 + 600) == nil)
        let back = alarm.observe(failure: nil, at: t0 + 95)
        #expect(back?.event == .storeRecovered && back?.summary.contains("after 1m05s") == true, "\(String(describing: back))")
        #expect(alarm.observe(failure: nil, at: t0 + 100) == nil)
    }
}
