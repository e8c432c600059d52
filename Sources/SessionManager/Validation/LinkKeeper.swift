import Logging
import MTProto
import MTProtoClient
import TLSchema

/// How `LinkKeeper` brings an account's link back.
public struct LinkKeeperPolicy: Sendable, Hashable {
    /// Seconds before the first try after the link dropped or a call failed for the network.
    public var firstDelay: Double
    /// The longest pause between tries (the delay doubles up to it).
    public var maximumDelay: Double
    /// Seconds each try may take.
    public var timeout: Double

    public init(firstDelay: Double = 1, maximumDelay: Double = 60, timeout: Double = 15) {
        precondition(firstDelay > 0 && maximumDelay >= firstDelay && timeout > 0, "a link keeper needs positive delays, the first no longer than the longest")
        self.firstDelay = firstDelay
        self.maximumDelay = maximumDelay
        self.timeout = timeout
    }
}

/// Keeps a running account connected. The client reconnects only when a call needs it, so an
/// account with nothing to do stayed cut off after its link dropped (a DC restart, a network
/// outage): Telegram's pushes (a request to log out, an unconfirmed login) were lost meanwhile,
/// and with no call failing its health said ready for hours. After the home link drops, or a call
/// fails for the network (a start-up with the network down), this makes a cheap call
/// (updates.getState) with backoff until one succeeds: each failure reaches the health through the
/// stack (down after a few: /health 503 and an alert after its hold-off), the success makes it
/// healthy again. A call that succeeded meanwhile (a job's) ends the tries; a terminal account
/// (logged out) is left alone.
public struct LinkKeeper: Sendable {
    public enum Trigger: Sendable, Hashable {
        /// The home link dropped at this time.
        case linkLost(UnixTime)
        /// A call failed for the network.
        case callsFailing
    }

    public let account: AccountID
    public let policy: LinkKeeperPolicy
    let invoker: any TelegramInvoking
    let health: AccountHealth
    let clock: any TelegramClock
    let logger: Logger

    public init(account: AccountID, invoker: any TelegramInvoking, health: AccountHealth, policy: LinkKeeperPolicy = LinkKeeperPolicy(),
                clock: any TelegramClock, logger: Logger) {
        self.account = account
        self.invoker = invoker
        self.health = health
        self.policy = policy
        self.clock = clock
        self.logger = logger
    }

    /// The triggers of one account: the client's home-link losses and the health's network
    /// failures, newest only (one pending trigger is as good as many). Subscribe before the first
    /// call that may fail, so its failure is not missed.
    public static func triggers(client: TelegramClient, health: AccountHealth, clock: any TelegramClock) -> AsyncStream<Trigger> {
        let (stream, continuation) = AsyncStream.makeStream(of: Trigger.self, bufferingPolicy: .bufferingNewest(1))
        client.onHomeLinkLost { continuation.yield(.linkLost(clock.now())) }
        let events = health.events()
        let watcher = Task {
            for await event in events {
                if case .failure = event.kind, health.snapshot.consecutiveFailures > 0 { continuation.yield(.callsFailing) }
            }
            continuation.finish()
        }
        continuation.onTermination = { _ in
            watcher.cancel()
            client.onHomeLinkLost(nil)
        }
        return stream
    }

    /// Serves `triggers` until cancelled.
    public func run(_ triggers: AsyncStream<Trigger>) async {
        for await trigger in triggers {
            guard !Task.isCancelled else { return }
            await reconnect(after: trigger)
        }
    }

    /// Tries until the link is back (a call succeeded), the account turned terminal, or the task
    /// was cancelled. Returns how many calls it made.
    @discardableResult
    public func reconnect(after trigger: Trigger) async -> Int {
        var delay = policy.firstDelay
        var calls = 0
        while !Task.isCancelled {
            do { try await clock.sleep(for: delay) } catch { return calls }
            let snapshot = health.snapshot
            if snapshot.state == .terminal { return calls }
            switch trigger {
            case .linkLost(let at):
                // Another call reconnected since the loss (and nothing failed after it).
                if let success = snapshot.lastSuccess, success > at, snapshot.consecutiveFailures == 0 { return calls }
            case .callsFailing:
                if snapshot.consecutiveFailures == 0 { return calls }
            }
            calls += 1
            do throws(TelegramError) {
                _ = try await invoker.invoke(Api.functions.updates.GetState(), options: InvokeOptions(timeout: policy.timeout, isIdempotent: true))
                if calls > 1 || trigger != .callsFailing {
                    logger.info("the account's connection is back", metadata: ["account": "\(account)", "tries": "\(calls)"])
                }
                return calls
            } catch {
                if calls == 1 {
                    logger.warning("the account's connection is down; trying again with backoff",
                                   metadata: ["account": "\(account)", "code": "\(error.guidance(account: account).code)"])
                }
                delay = min(policy.maximumDelay, delay * 2)
            }
        }
        return calls
    }
}
