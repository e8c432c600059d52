import MTProto
import Testing
@testable import Workers

/// Whose move a failing claim is: a damaged queue file waits for a person (`tgsm jobs salvage`),
/// any other failure of the queue for the queue to answer again.
@Suite struct ClaimFailureTests {
    let now = UnixTime(seconds: 1_800_000_000)

    @Test func aDamagedFileIsAPersonsAndAnythingElseWaitsForTheQueue() {
        let damaged = ClaimFailure(JobQueueError.unreadable(path: "/srv/tgsm/jobs.sqlite", reason: "database disk image is malformed"), at: now)
        #expect(damaged.needsAPerson && damaged.since == now)
        #expect(damaged.error.contains("tgsm jobs salvage"), "the queue's own words, which say what to do: \(damaged.error)")
        for error: any Error in [JobQueueError.storage("connection refused"), JobQueueError.storageInDoubt("COMMIT unanswered"), CancellationError()] {
            let failure = ClaimFailure(error, at: now)
            #expect(!failure.needsAPerson, "\(error)")
        }
    }
}
