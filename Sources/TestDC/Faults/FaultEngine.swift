/// What the DC does to one call, in order: wait, then either answer normally or fail in one way.
public struct FaultDecision: Sendable, Equatable {
    /// Hold the answer this long first.
    public var delayMilliseconds: Int = 0
    public var outcome: Outcome = .proceed
    /// The rules that fired, for the control endpoint's counters.
    public var firedRuleIDs: [Int] = []

    public enum Outcome: Sendable, Equatable {
        case proceed
        case rpcError(code: Int32, message: String)
        case transportError(code: Int32)
        case dropBeforeAnswer
        case dropAfterAnswer
        case swallowAnswer
        case badServerSalt
        /// Answer the error and forget the key's authorization (AUTH_KEY_UNREGISTERED, SESSION_REVOKED).
        case revokeAuthorization(message: String)
        /// Answer the error and drop the auth key itself.
        case dropAuthKey(message: String)
    }
}

/// The fault rules of a test DC and their counters. A pure value: `decide` takes the call and the
/// time and returns what to do; nothing here reads a clock.
public struct FaultEngine: Sendable, Equatable {
    public private(set) var rules: [FaultRule] = []
    /// Seconds added to the DC's clock (server time skew), per DC; a missing DC is 0.
    public private(set) var clockOffsets: [Int32: Int] = [:]
    private var nextID = 1
    /// How many matching calls each rule has seen.
    private var seen: [Int: Int] = [:]
    /// How many times each rule has fired.
    private var fired: [Int: Int] = [:]
    /// Times (seconds) of escalating hits, per rule and account/phone.
    private var escalationHits: [String: [Double]] = [:]
    /// On: every call `decide` sees is kept in `calls`, with its time and fate (a test that checks
    /// what clients sent when, e.g. nothing during a flood wait). Off by default: it only grows.
    public var recordsCalls = false
    /// Whether `decide` looks at a call's account and phone at all: with no rules and no call log,
    /// the DC need not find them.
    var readsCalls: Bool { recordsCalls || !rules.isEmpty }
    public private(set) var calls: [RecordedCall] = []

    public struct RecordedCall: Sendable, Equatable {
        public var call: FaultCall
        /// The DC's time of the call, seconds.
        public var at: Double
        public var outcome: FaultDecision.Outcome
        /// The client's session and message id, when the caller knows them: a request the client
        /// sent again (same session and msg_id, e.g. after a reconnect) shows as the same pair.
        public var sessionID: Int64?
        public var messageID: Int64?
        /// The DC's clock offset when the call came (`at` includes it): `at - clockOffset` is the
        /// real time, comparable across clock jumps and with the clients' own records.
        public var clockOffset: Int = 0
        /// What tells this call apart from other calls of its method, for the methods a test
        /// follows one by one (`DCState.callSubject`): messages.sendMessage's random_id,
        /// contacts.resolveUsername's username. A test counts how often one job's call reached the DC.
        public var subject: String?
    }

    public init() {}

    /// Adds a rule and returns it with its id.
    @discardableResult
    public mutating func add(_ rule: FaultRule) throws(FaultError) -> FaultRule {
        try rule.effect.validate()
        var rule = rule
        rule.id = nextID
        nextID += 1
        rules.append(rule)
        return rule
    }

    public mutating func remove(id: Int) throws(FaultError) {
        guard let index = rules.firstIndex(where: { $0.id == id }) else { throw .unknownRule(id: id) }
        rules.remove(at: index)
        seen[id] = nil
        fired[id] = nil
        escalationHits = escalationHits.filter { !$0.key.hasPrefix("\(id)/") }
    }

    /// Removes every rule of one kind, or all rules when `kind` is nil.
    public mutating func clear(kind: FaultEffect.Kind? = nil) {
        let removed = rules.filter { kind == nil || $0.effect.kind == kind }.map(\.id)
        for id in removed { try? remove(id: id) }
    }

    public mutating func setClockOffset(_ seconds: Int, dc: Int32) {
        clockOffsets[dc] = seconds == 0 ? nil : seconds
    }

    public func clockOffset(dc: Int32) -> Int { clockOffsets[dc] ?? 0 }

    public func firedCount(rule id: Int) -> Int { fired[id] ?? 0 }

    /// Decides the fate of `call` at time `now` (seconds). Delays add up; the first rule with another
    /// effect wins; exhausted rules (count reached) stop matching.
    public mutating func decide(_ call: FaultCall, now: Double, sessionID: Int64? = nil, messageID: Int64? = nil,
                                subject: String? = nil) -> FaultDecision {
        var decision = FaultDecision()
        for rule in rules where rule.effect.kind != .dropUpdates && rule.match.matches(call) {
            let seenBefore = seen[rule.id] ?? 0
            seen[rule.id] = seenBefore + 1
            if seenBefore < (rule.match.skip ?? 0) { continue }
            let firedBefore = fired[rule.id] ?? 0
            if let count = rule.match.count, firedBefore >= count { continue }
            if rule.effect.kind == .delay {
                decision.delayMilliseconds = min(decision.delayMilliseconds + (rule.effect.milliseconds ?? 0), FaultEffect.maxDelayMilliseconds)
                fired[rule.id] = firedBefore + 1
                decision.firedRuleIDs.append(rule.id)
                continue
            }
            guard decision.outcome == .proceed else { continue }
            decision.outcome = outcome(of: rule, call: call, now: now)
            fired[rule.id] = firedBefore + 1
            decision.firedRuleIDs.append(rule.id)
        }
        if recordsCalls {
            calls.append(RecordedCall(call: call, at: now, outcome: decision.outcome, sessionID: sessionID, messageID: messageID,
                                      clockOffset: clockOffset(dc: call.dc), subject: subject))
        }
        return decision
    }

    /// Whether a push of `call.method` (an update's name) to `call.account` is dropped; only
    /// `dropUpdates` rules apply to pushes, and they count like the others (skip, count).
    public mutating func dropsPush(_ call: FaultCall) -> Bool {
        var dropped = false
        for rule in rules where rule.effect.kind == .dropUpdates && rule.match.matches(call) {
            let seenBefore = seen[rule.id] ?? 0
            seen[rule.id] = seenBefore + 1
            if seenBefore < (rule.match.skip ?? 0) { continue }
            let firedBefore = fired[rule.id] ?? 0
            if let count = rule.match.count, firedBefore >= count { continue }
            fired[rule.id] = firedBefore + 1
            dropped = true
        }
        return dropped
    }

    private mutating func outcome(of rule: FaultRule, call: FaultCall, now: Double) -> FaultDecision.Outcome {
        let effect = rule.effect
        switch effect.kind {
        case .floodWait:
            return .rpcError(code: 420, message: "FLOOD_WAIT_\(floodSeconds(rule, call: call, now: now))")
        case .slowmodeWait:
            return .rpcError(code: 420, message: "SLOWMODE_WAIT_\(effect.seconds ?? 0)")
        case .floodPremiumWait:
            return .rpcError(code: 420, message: "FLOOD_PREMIUM_WAIT_\(effect.seconds ?? 0)")
        case .migrate:
            return .rpcError(code: 303, message: "\((effect.migrateKind ?? .phone).rawValue)_MIGRATE_\(effect.dc ?? 1)")
        case .internalError:
            return .rpcError(code: 500, message: effect.message ?? "INTERNAL")
        case .rpcError:
            return .rpcError(code: effect.code ?? 400, message: effect.message ?? "BAD_REQUEST")
        case .transportError:
            return .transportError(code: effect.code ?? 404)
        case .dropBeforeAnswer:
            return .dropBeforeAnswer
        case .dropAfterAnswer:
            return .dropAfterAnswer
        case .swallowAnswer:
            return .swallowAnswer
        case .badServerSalt:
            return .badServerSalt
        case .authKeyUnregistered:
            return .revokeAuthorization(message: "AUTH_KEY_UNREGISTERED")
        case .sessionRevoked:
            return .revokeAuthorization(message: "SESSION_REVOKED")
        case .userDeactivated:
            return .rpcError(code: 401, message: "USER_DEACTIVATED")
        case .authKeyDuplicated:
            return .dropAuthKey(message: "AUTH_KEY_DUPLICATED")
        case .delay, .dropUpdates:
            return .proceed
        }
    }

    private mutating func floodSeconds(_ rule: FaultRule, call: FaultCall, now: Double) -> Int {
        let base = rule.effect.seconds ?? 0
        guard let escalation = rule.effect.escalation else { return base }
        let key = "\(rule.id)/\(call.account.map(String.init) ?? call.phone ?? "-")"
        var hits = (escalationHits[key] ?? []).filter { now - $0 < Double(escalation.windowSeconds) }
        hits.append(now)
        escalationHits[key] = hits
        var seconds = base
        for _ in 1..<hits.count {
            seconds = seconds.multipliedReportingOverflow(by: escalation.factor).partialValue
            if seconds >= escalation.maxSeconds || seconds < 0 { return escalation.maxSeconds }
        }
        return min(seconds, escalation.maxSeconds)
    }
}
