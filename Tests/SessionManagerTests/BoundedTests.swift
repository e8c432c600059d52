import SessionManager
import Testing

/// `withBound`: whichever of the operation's end, its bound, the caller's cancellation and an
/// outside end comes first ends the wait.
@Suite struct BoundedTests {
    /// An operation that ends only when cancelled.
    static func forever() async throws -> Int {
        try await Task.sleep(for: .seconds(3600))
        return 0
    }

    @Test func anOperationThatEndsInTimeGivesItsAnswer() async throws {
        #expect(try await withBound(seconds: 60, "adding") { 40 + 2 } == 42)
    }

    @Test func anOperationPastItsBoundIsGivenUpAndSaidInTenthsOfASecond() async throws {
        do {
            _ = try await withBound(seconds: 0.04321, "renewing the lease") { try await Self.forever() }
            Issue.record("the bound did not end the wait")
        } catch let bound as BoundExceeded {
            #expect(bound.seconds == 0.04321)
            #expect(bound.description == "renewing the lease: no answer within 0.0 s")
            #expect(BoundExceeded(what: "renewing the lease", seconds: 9.935802459716797).description
                == "renewing the lease: no answer within 9.9 s")
        }
    }

    @Test func theCallersCancellationEndsTheWaitOnlyWhenCancellable() async throws {
        let cancellable = Task { try await withBound(seconds: nil, "waiting") { try await Self.forever() } }
        cancellable.cancel()
        await #expect(throws: CancellationError.self) { try await cancellable.value }

        let uncancellable = Task { try await withBound(seconds: 0.05, "closing", cancellable: false) { try await Self.forever() } }
        uncancellable.cancel()
        await #expect(throws: BoundExceeded.self) { try await uncancellable.value }
    }

    @Test func anOutsideEventEndsTheWaitWithItsError() async throws {
        struct ConnectionClosed: Error {}
        await #expect(throws: ConnectionClosed.self) {
            try await withBound(seconds: nil, "a query", endedBy: { end in end(ConnectionClosed()) }) { try await Self.forever() }
        }
    }
}
