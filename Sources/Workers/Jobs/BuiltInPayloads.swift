import Foundation

/// The built-in kinds' payloads, checked when a job is enqueued: a payload the worker cannot
/// decode (a `send` without `text`) was accepted and only dead-lettered when it ran.
public enum BuiltInPayloads {
    /// Why `payload` is not one the built-in `kind` runs (the field and what is wrong), nil when
    /// it is, or when the kind is not a built-in one with a payload.
    public static func problem(kind: JobKind, payload: Data) -> String? {
        func problem<Payload: Decodable>(decoding type: Payload.Type, _ check: (Payload) -> String? = { _ in nil }) -> String? {
            do {
                return check(try JSONDecoder().decode(Payload.self, from: payload))
            } catch {
                return JobContext.describe(error)
            }
        }
        switch kind {
        // The worker refuses an empty text as well.
        case SendJob.kind: return problem(decoding: SendJob.Payload.self) { $0.text.isEmpty ? "`text` is empty" : nil }
        case HistoryJob.kind: return problem(decoding: HistoryJob.Payload.self)
        case ResolveJob.kind: return problem(decoding: ResolveJob.Payload.self)
        default: return nil
        }
    }
}
