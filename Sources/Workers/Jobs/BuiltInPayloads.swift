import Foundation

/// The built-in kinds' payloads, checked when a job is enqueued: a payload the worker cannot
/// decode (a `send` without `text`) was accepted and only dead-lettered when it ran.
public enum BuiltInPayloads {
    /// Why `payload` is not one the built-in `kind` runs (the field and what is wrong), nil when
    /// it is, or when the kind is not a built-in one with a payload.
    public static func problem(kind: JobKind, payload: Data) -> String? {
        func problem<Payload: Decodable>(decoding type: Payload.Type) -> String? {
            do {
                _ = try JSONDecoder().decode(Payload.self, from: payload)
                return nil
            } catch {
                return JobContext.describe(error)
            }
        }
        switch kind {
        case SendJob.kind:
            if let problem = problem(decoding: SendJob.Payload.self) { return problem }
            // The worker refuses an empty text as well.
            return (try? JSONDecoder().decode(SendJob.Payload.self, from: payload))?.text.isEmpty == true ? "`text` is empty" : nil
        case HistoryJob.kind: return problem(decoding: HistoryJob.Payload.self)
        case ResolveJob.kind: return problem(decoding: ResolveJob.Payload.self)
        default: return nil
        }
    }
}
