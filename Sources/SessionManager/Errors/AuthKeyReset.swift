import MTProtoClient

/// What was done about an auth key the DC rejected (AUTH_KEY_DUPLICATED, transport -404).
public enum AuthKeyResetOutcome: Sendable, Hashable {
    /// Nothing was tried (the error was classified after the fact, without the guard).
    case notAttempted
    /// The key was dropped from the store: the next connection to that DC creates a new one. Only
    /// done where no login is lost: a DC other than the home DC (its authorization is imported
    /// again from the home DC) or a key that was not logged in.
    case dropped(dc: Int)
    /// The key was kept: dropping it would log the account out, which needs a person (a code).
    case keptLoggedInHomeKey(dc: Int)
    /// Dropping was safe but the store failed.
    case dropFailed(dc: Int, reason: String)

    public var dropped: Bool {
        if case .dropped = self { return true }
        return false
    }

    public var summary: String {
        switch self {
        case .notAttempted: "the key was left as it is"
        case .dropped(let dc): "the key of DC \(dc) was dropped because it held no login; a new key is created on the next connection"
        case .keptLoggedInHomeKey(let dc): "the key of home DC \(dc) was kept: it held the login, so a new key means a new login by a person"
        case .dropFailed(let dc, let reason): "dropping the key of DC \(dc) failed (\(reason))"
        }
    }
}

/// Decides whether dropping a rejected key is safe and does it on the session storage.
public struct AuthKeyReset: Sendable {
    public let storage: any SessionStorage

    public init(storage: any SessionStorage) {
        self.storage = storage
    }

    /// Safe means: no login is lost. The home DC's key, once logged in, is the login itself.
    public static func isSafeToDrop(_ state: SessionState, dc: Int) -> Bool {
        guard let entry = state.dcs[dc], entry.authKey != nil else { return true }
        return dc != state.homeDC || !entry.isAuthorized
    }

    /// Drops the key of `dc` if that is safe; says what it did.
    public func reset(dc: Int?) async -> AuthKeyResetOutcome {
        do {
            guard var state = try await storage.load() else { return .notAttempted }
            let target = dc ?? state.homeDC
            guard Self.isSafeToDrop(state, dc: target) else { return .keptLoggedInHomeKey(dc: target) }
            state.dcs[target] = nil
            try await storage.save(state)
            return .dropped(dc: target)
        } catch {
            return .dropFailed(dc: dc ?? 0, reason: "\(error)")
        }
    }
}
