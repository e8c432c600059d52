import Testing
@testable import TestDC

@Suite struct FaultEngineTests {
    let sendCode = FaultCall(dc: 1, method: "auth.sendCode", account: nil, phone: "15550001")

    @Test func matchesOnDCMethodAccountAndPhone() throws {
        var engine = FaultEngine()
        try engine.add(FaultRule(match: FaultMatch(dc: 2, method: "auth.sendCode"), effect: .floodWait(10)))
        try engine.add(FaultRule(match: FaultMatch(phone: "+1 555 0001"), effect: .rpcError(400, "PHONE_NUMBER_INVALID")))
        #expect(engine.decide(sendCode, now: 0).outcome == .rpcError(code: 400, message: "PHONE_NUMBER_INVALID"))
        var onDC2 = sendCode
        onDC2.dc = 2
        #expect(engine.decide(onDC2, now: 0).outcome == .rpcError(code: 420, message: "FLOOD_WAIT_10"))
        #expect(engine.decide(FaultCall(dc: 1, method: "help.getConfig", account: 7), now: 0).outcome == .proceed)
    }

    @Test func skipAndCountBoundWhenARuleFires() throws {
        var engine = FaultEngine()
        let rule = try engine.add(FaultRule(match: FaultMatch(method: "auth.sendCode", skip: 1, count: 2), effect: .floodWait(5)))
        let outcomes = (0..<5).map { _ in engine.decide(sendCode, now: 0).outcome }
        #expect(outcomes == [.proceed, .rpcError(code: 420, message: "FLOOD_WAIT_5"), .rpcError(code: 420, message: "FLOOD_WAIT_5"), .proceed, .proceed])
        #expect(engine.firedCount(rule: rule.id) == 2)
    }

    @Test func escalatingFloodWaitGrowsWithinTheWindowAndResetsAfterIt() throws {
        var engine = FaultEngine()
        try engine.add(FaultRule(
            match: FaultMatch(method: "auth.sendCode"),
            effect: .floodWait(60, escalation: FaultEffect.Escalation(windowSeconds: 3600, factor: 4, maxSeconds: 7200))))
        let waits = [0.0, 10, 20, 30, 40].map { engine.decide(sendCode, now: $0).outcome }
        #expect(waits == [60, 240, 960, 3840, 7200].map { .rpcError(code: 420, message: "FLOOD_WAIT_\($0)") })
        #expect(engine.decide(sendCode, now: 10_000).outcome == .rpcError(code: 420, message: "FLOOD_WAIT_60"))
    }

    @Test func escalationIsPerAccount() throws {
        var engine = FaultEngine()
        try engine.add(FaultRule(match: FaultMatch(), effect: .floodWait(2, escalation: FaultEffect.Escalation(windowSeconds: 60, factor: 2, maxSeconds: 100))))
        #expect(engine.decide(FaultCall(dc: 1, method: "m", account: 1), now: 0).outcome == .rpcError(code: 420, message: "FLOOD_WAIT_2"))
        #expect(engine.decide(FaultCall(dc: 1, method: "m", account: 1), now: 1).outcome == .rpcError(code: 420, message: "FLOOD_WAIT_4"))
        #expect(engine.decide(FaultCall(dc: 1, method: "m", account: 2), now: 2).outcome == .rpcError(code: 420, message: "FLOOD_WAIT_2"))
    }

    @Test func delaysAddUpAndTheFirstOtherEffectWins() throws {
        var engine = FaultEngine()
        try engine.add(FaultRule(match: FaultMatch(), effect: .delay(milliseconds: 100)))
        try engine.add(FaultRule(match: FaultMatch(), effect: .migrate(.phone, to: 2)))
        try engine.add(FaultRule(match: FaultMatch(), effect: .delay(milliseconds: 50)))
        try engine.add(FaultRule(match: FaultMatch(), effect: .transportError(429)))
        let decision = engine.decide(sendCode, now: 0)
        #expect(decision.delayMilliseconds == 150)
        #expect(decision.outcome == .rpcError(code: 303, message: "PHONE_MIGRATE_2"))
    }

    @Test func everyKindMapsToWhatTelegramSends() throws {
        let expected: [(FaultEffect, FaultDecision.Outcome)] = [
            (FaultEffect(kind: .slowmodeWait, seconds: 7), .rpcError(code: 420, message: "SLOWMODE_WAIT_7")),
            (FaultEffect(kind: .floodPremiumWait, seconds: 3), .rpcError(code: 420, message: "FLOOD_PREMIUM_WAIT_3")),
            (.migrate(.user, to: 3), .rpcError(code: 303, message: "USER_MIGRATE_3")),
            (.migrate(.network, to: 2), .rpcError(code: 303, message: "NETWORK_MIGRATE_2")),
            (.migrate(.file, to: 1), .rpcError(code: 303, message: "FILE_MIGRATE_1")),
            (FaultEffect(kind: .internalError), .rpcError(code: 500, message: "INTERNAL")),
            (.transportError(503), .transportError(code: 503)),
            (.dropBeforeAnswer, .dropBeforeAnswer),
            (.dropAfterAnswer, .dropAfterAnswer),
            (.swallowAnswer, .swallowAnswer),
            (FaultEffect(kind: .badServerSalt), .badServerSalt),
            (FaultEffect(kind: .authKeyUnregistered), .revokeAuthorization(message: "AUTH_KEY_UNREGISTERED")),
            (FaultEffect(kind: .sessionRevoked), .revokeAuthorization(message: "SESSION_REVOKED")),
            (FaultEffect(kind: .userDeactivated), .rpcError(code: 401, message: "USER_DEACTIVATED")),
            (FaultEffect(kind: .authKeyDuplicated), .dropAuthKey(message: "AUTH_KEY_DUPLICATED")),
        ]
        for (effect, outcome) in expected {
            var engine = FaultEngine()
            try engine.add(FaultRule(match: FaultMatch(), effect: effect))
            #expect(engine.decide(sendCode, now: 0).outcome == outcome, "\(effect.kind)")
        }
    }

    @Test func rulesMissingAFieldAreRefusedWithAHint() {
        var engine = FaultEngine()
        #expect(throws: FaultError.missingField(kind: "migrate", field: "migrateKind (PHONE, USER, NETWORK or FILE)")) {
            try engine.add(FaultRule(match: FaultMatch(), effect: FaultEffect(kind: .migrate, dc: 2)))
        }
        #expect(throws: FaultError.self) { try engine.add(FaultRule(match: FaultMatch(), effect: FaultEffect(kind: .floodWait))) }
        #expect(engine.rules.isEmpty)
    }

    @Test func clearByKindAndRemoveByID() throws {
        var engine = FaultEngine()
        let flood = try engine.add(FaultRule(match: FaultMatch(), effect: .floodWait(1)))
        try engine.add(FaultRule(match: FaultMatch(), effect: .delay(milliseconds: 1)))
        engine.clear(kind: .delay)
        #expect(engine.rules.map(\.id) == [flood.id])
        try engine.remove(id: flood.id)
        #expect(engine.rules.isEmpty)
        #expect(throws: FaultError.unknownRule(id: flood.id)) { try engine.remove(id: flood.id) }
    }

    @Test func clockOffsetIsPerDC() {
        var engine = FaultEngine()
        engine.setClockOffset(120, dc: 2)
        #expect(engine.clockOffset(dc: 2) == 120)
        #expect(engine.clockOffset(dc: 1) == 0)
        engine.setClockOffset(0, dc: 2)
        #expect(engine.clockOffsets.isEmpty)
    }
}
