import MTProto
@testable import OperatorHTTP
import Testing

/// A store that cannot be read, or workers that cannot claim, said once after the hold-off, and
/// the return once: before, a PostgreSQL server down for a minute (every lease lost with it) was
/// never said, and a damaged queue file was only a log line.
@Suite struct OutageAlarmTests {
    @Test func anOutageLongerThanTheHoldOffIsSaidOnceAndItsEndOnce() {
        var alarm = StoreOutageAlarm.make(holdOff: 20, host: "db-client-1")
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

    /// A look at a store that hangs fails only at its bound: the outage counts from the look's
    /// start. Before, from its end, so the hold-off ran a look's length late (an audit's 50 s
    /// PostgreSQL outage, looks ending after 30 s, was never said).
    @Test func theOutageCountsFromTheStartOfTheFirstLookThatFailed() {
        var alarm = StoreOutageAlarm.make(holdOff: 5, host: "h")
        let t0 = UnixTime(seconds: 1_800_000_000)
        #expect(alarm.observe(failure: nil, at: t0) == nil)
        // A look from t0 + 2 that hung to its 10 s bound: the store has been out of reach since t0 + 2.
        let down = alarm.observe(failure: "reading the store for alerts: no answer within 10.0 s", since: t0 + 2, at: t0 + 12)
        #expect(down?.event == .storeUnreachable && down?.summary.contains("since 2027-01-15T08:00:02Z") == true, "\(String(describing: down))")
        let back = alarm.observe(failure: nil, at: t0 + 52)
        #expect(back?.summary.contains("after 50s") == true, "\(String(describing: back))")
    }

    /// The workers' claims failing (`WorkerPool.claimFailure`): the same course, in the queue's words.
    @Test func workersThatCannotClaimAreSaidAfterTheHoldOffAndTheirReturnOnce() {
        var alarm = QueueFailureAlarm.make(holdOff: 60, host: "worker-1")
        let t0 = UnixTime(seconds: 1_800_000_000)
        let failure = "the job queue's file /srv/tgsm/jobs.sqlite is damaged (database disk image is malformed): run `tgsm jobs salvage`"
        #expect(alarm.observe(failure: failure, at: t0) == nil && alarm.observe(failure: failure, at: t0 + 30) == nil)
        let down = alarm.observe(failure: failure, at: t0 + 60)
        #expect(down?.event == .queueFailing && down?.severity == .critical && down?.codes == ["queue_failing"], "\(String(describing: down))")
        #expect(down?.summary.hasPrefix("the workers cannot claim jobs since 2027-01-15T08:00:00Z") == true && down?.summary.contains("tgsm jobs salvage") == true)
        #expect(alarm.observe(failure: failure, at: t0 + 3600) == nil)
        let back = alarm.observe(failure: nil, at: t0 + 3660)
        #expect(back?.event == .queueRecovered && back?.summary == "the workers claim jobs again, after 1h01m00s they could not", "\(String(describing: back))")
    }
}
