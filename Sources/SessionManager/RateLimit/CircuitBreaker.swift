import MTProto

/// The breaker of one (account, operation), as a value: closed while Telegram accepts the calls,
/// open after `floodsToOpen` flood waits within `window` (calls refused until the cool-down ends),
/// half-open after it (one probe call; success closes, a flood reopens with a doubled cool-down).
public struct CircuitBreaker: Sendable, Hashable {
    public struct Policy: Sendable, Hashable {
        public var floodsToOpen: Int
        /// Seconds within which the floods must fall to count together.
        public var window: Double
        /// The first cool-down, doubled at each reopening without a success in between.
        public var baseCooldown: Double
        public var maximumCooldown: Double

        public init(floodsToOpen: Int = 3, window: Double = 600, baseCooldown: Double = 300, maximumCooldown: Double = 6 * 3600) {
            precondition(floodsToOpen >= 1 && window > 0 && baseCooldown > 0 && maximumCooldown >= baseCooldown, "a breaker needs positive thresholds")
            self.floodsToOpen = floodsToOpen
            self.window = window
            self.baseCooldown = baseCooldown
            self.maximumCooldown = maximumCooldown
        }
    }

    public enum State: Sendable, Hashable {
        case closed
        case open(until: UnixTime)
        /// The cool-down ended and one probe is out.
        case halfOpen
    }

    public enum Admission: Sendable, Hashable {
        case allow
        /// The one probe call after a cool-down.
        case probe
        case refuse(until: UnixTime, floods: Int)
    }

    /// What a recorded outcome changed, for metrics and warnings.
    public enum Transition: Sendable, Hashable {
        case none
        case opened(until: UnixTime, floods: Int)
        case closed
    }

    public let policy: Policy
    public private(set) var state: State = .closed
    /// Times of the recent floods, oldest first.
    public private(set) var floods: [UnixTime] = []
    /// Openings since the last success: the cool-down's exponent.
    public private(set) var openings = 0
    /// When the breaker last opened: a clock stepped back before it moves the cool-down's end
    /// back as far, instead of keeping the account refused for the length of the step.
    private var openedAt: UnixTime?

    public init(policy: Policy = Policy()) {
        self.policy = policy
    }

    public mutating func admit(now: UnixTime) -> Admission {
        switch state {
        case .closed:
            return .allow
        case .open(var until):
            if let openedAt, now < openedAt {
                until = UnixTime(seconds: until.seconds - (openedAt.seconds - now.seconds))
                state = .open(until: until)
                self.openedAt = now
            }
            if now < until { return .refuse(until: until, floods: floods.count) }
            state = .halfOpen
            return .probe
        case .halfOpen:
            // The probe is still out: the others wait for its verdict.
            return .refuse(until: now + 1, floods: floods.count)
        }
    }

    /// A FLOOD_WAIT/FLOOD_PREMIUM_WAIT answer to this operation, ending at `waitUntil`.
    public mutating func recordFlood(now: UnixTime, waitUntil: UnixTime) -> Transition {
        floods = floods.filter { now - $0 < policy.window } + [now]
        let wasProbe = state == .halfOpen
        guard wasProbe || floods.count >= policy.floodsToOpen else { return .none }
        openings += 1
        var cooldown = policy.baseCooldown
        for _ in 1..<openings { cooldown = min(policy.maximumCooldown, cooldown * 2) }
        let until = max(waitUntil, now + cooldown)
        state = .open(until: until)
        openedAt = now
        return .opened(until: until, floods: floods.count)
    }

    /// A call that went through.
    public mutating func recordSuccess() -> Transition {
        let wasOpen = state != .closed || openings > 0
        state = .closed
        floods.removeAll()
        openings = 0
        return wasOpen ? .closed : .none
    }

    /// A probe that ended neither in success nor in a flood (a network error): let another probe go.
    public mutating func releaseProbe(now: UnixTime) {
        if state == .halfOpen {
            state = .open(until: now)
            openedAt = now
        }
    }
}
