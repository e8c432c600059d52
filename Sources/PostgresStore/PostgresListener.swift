import Logging
import PostgresNIO
import SessionManager

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
        // Bounded: a pool whose connections all hang (see `guarded`) would otherwise hold up the
        // store's or queue's opening for good; the listener goes on trying in its task.
        _ = try? await withBound(seconds: Self.operationTimeout, "PostgreSQL at \(location): LISTEN on \(channel)", cancellable: true) {
            for await _ in ready {}
        }
        return task
    }

    /// Waits for a cancelled `keepListening` task to end, at most `closeTimeout`: on a connection
    /// that no longer answers, the UNLISTEN of its ending would be waited for forever.
    static func stopListening(_ task: Task<Void, Never>?) async {
        guard let task else { return }
        _ = try? await withBound(seconds: closeTimeout, "stopping a PostgreSQL LISTEN", cancellable: false) { await task.value }
    }
}
