import MTProto

/// What the client does with a `*_MIGRATE_X` answer, decided without IO so it can be tested alone.
public enum MigrationDecision: Sendable, Hashable {
    /// The account lives on `dc`: make it the home DC and repeat the request there.
    case switchHome(to: Int)
    /// Repeat this request on `dc`, carrying the authorization over with
    /// auth.exportAuthorization / auth.importAuthorization first if `dc` has none yet.
    case reinvoke(on: Int, importAuthorization: Bool)
    /// Not a migration (or one this client must not follow): hand the error to the caller.
    case surface
}

public enum MigrationPolicy {
    /// Before a login, PHONE_, NETWORK_ and USER_MIGRATE mean "this account lives elsewhere": the
    /// home DC moves (there is no authorization to carry). Once logged in, the home DC keeps the
    /// authorization, so any migration re-invokes on the named DC with an imported authorization;
    /// FILE_ and STATS_MIGRATE never move home.
    public static func decide(_ error: RPCError, isAuthorized: Bool, currentDC: Int, homeDC: Int) -> MigrationDecision {
        guard error.code == 303, case .migrate(let kind, let dc) = error.advice, dc > 0, dc != currentDC else {
            return .surface
        }
        switch kind {
        case .phone, .network, .user:
            if !isAuthorized { return .switchHome(to: dc) }
            return .reinvoke(on: dc, importAuthorization: dc != homeDC)
        case .file, .stats, .other:
            return .reinvoke(on: dc, importAuthorization: isAuthorized && dc != homeDC)
        }
    }
}
