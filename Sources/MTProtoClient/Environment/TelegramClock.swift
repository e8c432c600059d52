import MTProto

/// Where the client's time comes from: timestamps for msg_ids and deadlines, and the sleeps of
/// timeouts and reconnect backoff. Tests inject a manual clock and advance it; nothing in the
/// client reads the system clock directly.
public protocol TelegramClock: Sendable {
    func now() -> UnixTime
    /// Suspends for `seconds` of this clock's time; throws `CancellationError` when the task is cancelled.
    func sleep(for seconds: Double) async throws
}

/// The wall clock and `Task.sleep`.
public struct SystemClock: TelegramClock {
    public init() {}

    public func now() -> UnixTime {
        UnixTime(seconds: Double(ContinuousClock.now.durationSinceReference))
    }

    public func sleep(for seconds: Double) async throws {
        try await Task.sleep(for: .seconds(max(0, seconds)))
    }
}

extension Duration {
    fileprivate var secondsValue: Double {
        let parts = components
        return Double(parts.seconds) + Double(parts.attoseconds) / 1e18
    }
}

extension ContinuousClock.Instant {
    /// Maps the monotonic clock onto Unix time once per process, so deadlines never jump when the
    /// wall clock is adjusted, while msg_ids still carry Unix seconds.
    fileprivate var durationSinceReference: Double {
        WallClockAnchor.unixAtAnchor + WallClockAnchor.anchor.duration(to: self).secondsValue
    }
}

private enum WallClockAnchor {
    static let anchor = ContinuousClock.now
    static let unixAtAnchor: Double = {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return Double(spec.tv_sec) + Double(spec.tv_nsec) / 1e9
    }()
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
