import Logging
import OperatorHTTP

/// The log handler of every `tgsm` command: standard error, with the `account` metadata masked
/// where it looks like a phone number. Account names are chosen by people, and some name their
/// accounts by their numbers; the logs promise never to hold one (docs/CLI.md), as /health, the
/// metrics and the alerts already mask them (`Redaction`).
struct AccountMaskingLogHandler: LogHandler {
    private var inner: StreamLogHandler

    init(_ inner: StreamLogHandler) { self.inner = inner }

    var logLevel: Logger.Level {
        get { inner.logLevel }
        set { inner.logLevel = newValue }
    }

    var metadata: Logger.Metadata {
        get { inner.metadata }
        set { inner.metadata = Self.masked(newValue) }
    }

    var metadataProvider: Logger.MetadataProvider? {
        get { inner.metadataProvider }
        set { inner.metadataProvider = newValue }
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { inner[metadataKey: key] }
        set { inner[metadataKey: key] = key == "account" ? newValue.map(Self.masked) : newValue }
    }

    func log(event: LogEvent) {
        var event = event
        event.metadata = event.metadata.map(Self.masked)
        inner.log(event: event)
    }

    private static func masked(_ metadata: Logger.Metadata) -> Logger.Metadata {
        guard let account = metadata["account"] else { return metadata }
        var copy = metadata
        copy["account"] = masked(account)
        return copy
    }

    private static func masked(_ value: Logger.Metadata.Value) -> Logger.Metadata.Value {
        guard case .string(let text) = value, Redaction.containsPhoneLike(text) else {
            if case .stringConvertible(let convertible) = value, Redaction.containsPhoneLike(convertible.description) {
                return .string(Redaction.masked(convertible.description))
            }
            return value
        }
        return .string(Redaction.masked(text))
    }
}
