import Logging
import PostgresNIO

extension PostgresDatabase {
    /// Keeps one pooled connection LISTENing on `channel` until the returned task is cancelled,
    /// handing each notification's payload to `received`; returns once the first LISTEN is in
    /// place, or failed (then whoever relies on it polls until a later attempt succeeds).
    ///
    /// A LISTEN that is lost (the server or the link went away) is set up again after a second;
    /// `relistened` runs at each LISTEN after the first, since notifications sent while it was
    /// down were missed. `lost` names, for the warning, what is late until it is back.
    func keepListening(
        on channel: String, logger: Logger, lost: String, relistened: @escaping @Sendable () -> Void = {},
        received: @escaping @Sendable (String) -> Void
    ) async -> Task<Void, Never> {
        let (ready, readyContinuation) = AsyncStream<Void>.makeStream()
        let client = self.client
        let task = Task {
            var announced = false
            var listenedBefore = false
            while !Task.isCancelled {
                do {
                    try await client.withConnection { connection in
                        try await connection.listen(on: channel) { notifications in
                            if listenedBefore { relistened() }
                            listenedBefore = true
                            if !announced {
                                announced = true
                                readyContinuation.finish()
                            }
                            for try await notification in notifications { received(notification.payload) }
                        }
                    }
                } catch {
                    if Task.isCancelled { break }
                    logger.warning("LISTEN on \(channel) failed; \(lost) until it is back", metadata: ["error": "\(PostgresDatabase.describe(error))"])
                }
                if !announced {
                    announced = true
                    readyContinuation.finish()
                }
                // Reconnect pacing on the wall clock: this is I/O recovery, not the callers' timing.
                try? await Task.sleep(for: .seconds(1))
            }
            readyContinuation.finish()
        }
        for await _ in ready {}
        return task
    }
}
