import MTProto

/// Where the client's time comes from: timestamps for msg_ids and deadlines, and the sleeps of
/// timeouts and reconnect backoff. Tests inject a manual clock and advance it; nothing in the
/// client reads the system clock directly.
public protocol TelegramClock: Sendable {
    func now() -> UnixTime
    /// Suspends for `seconds` of this clock's time; throws `CancellationError` when the task is cancelled.
    func sleep(for seconds: Double) async throws
}

/// Unix time that never jumps (the wall clock read once per process, then the monotonic clock)
/// and `Task.sleep`: for what one process times for itself (msg_ids, timeouts, reconnect backoff,
/// pings), where a step of the wall clock must not fire or stall a deadline. Instants written to a
/// store or compared with another process's take `WallClock`.
public struct SystemClock: TelegramClock {
    public init() {}

    public func now() -> UnixTime {
        UnixTime(seconds: Double(ContinuousClock.now.durationSinceReference))
    }

    public func sleep(for seconds: Double) async throws {
        try await Task.sleep(for: .seconds(max(0, seconds)))
    }
}

/// The wall clock read on every call, and `Task.sleep`: for instants other processes read or
/// wrote (lease expiries, jobs' run times, flood waits, rate buckets, backups), which are only
/// comparable when every process reads the same clock. A process started before NTP stepped the
/// clock (a VM resumed, a container booted with a wrong clock) follows the step; `SystemClock`
/// would keep the old offset for its whole life, and its leases would look expired to the others.
public struct WallClock: TelegramClock {
    private let read: @Sendable () -> Double

    public init() {
        self.read = WallClockAnchor.realtime
    }

    /// A clock reading `realtime` (Unix seconds): tests step it as NTP would.
    public init(realtime: @escaping @Sendable () -> Double) {
        self.read = realtime
    }

    public func now() -> UnixTime { UnixTime(seconds: read()) }

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
    static let unixAtAnchor: Double = realtime()

    @Sendable static func realtime() -> Double {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return Double(spec.tv_sec) + Double(spec.tv_nsec) / 1e9
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
