/// Which pending requests a connection sends again when the server starts a new session under
/// them (new_session_created naming them, or a seq_no reset), or says it knows nothing of them
/// (msgs_state_info status 1): their answer is lost and they may or may not have run. Repeating is
/// right only for requests that do the same thing twice; the others fail with
/// `TelegramError.inDoubt(reason: .sessionChanged)` (or `.forgottenByServer`) so the caller
/// decides. A request the server reports as never received is always resent: it cannot have run.
public struct ResendPolicy: Sendable {
    /// Decides by the method's TL name (e.g. `"messages.getHistory"`).
    public let isSafeToRepeat: @Sendable (String) -> Bool

    public init(isSafeToRepeat: @escaping @Sendable (String) -> Bool) {
        self.isSafeToRepeat = isSafeToRepeat
    }

    /// Reads only: methods whose name starts with get, search, check or resolve (help.getConfig,
    /// messages.getHistory, contacts.resolveUsername...). The default.
    public static let readsOnly = ResendPolicy { method in
        let name = method.split(separator: ".").last.map(String.init) ?? method
        return ["get", "search", "check", "resolve"].contains { name.hasPrefix($0) }
    }

    /// Never repeats: every request caught by a new session fails in doubt.
    public static let never = ResendPolicy { _ in false }

    /// Repeats everything (what the client did before this policy existed): only for callers whose
    /// requests are all idempotent.
    public static let always = ResendPolicy { _ in true }
}
