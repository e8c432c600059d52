import Logging

/// The log handler of every `tgsm` command (around standard error's): anything that looks like a phone
/// number masked (`Redaction.logLine`) in the message and in every metadata value, and every control
/// character shown rather than written (`InertText.logValue`): a notice Telegram sent is several
/// lines, and each entry stays one. Account names
/// are chosen by people and some name their accounts by their numbers; error texts quote the
/// account they are about, and the logs promise never to hold a phone number (docs/CLI.md), as
/// /health, the metrics and the alerts already mask them.
public struct PhoneMaskingLogHandler<Inner: LogHandler>: LogHandler {
    private var inner: Inner

    public init(_ inner: Inner) { self.inner = inner }

    public var logLevel: Logger.Level {
        get { inner.logLevel }
        set { inner.logLevel = newValue }
    }

    public var metadata: Logger.Metadata {
        get { inner.metadata }
        set { inner.metadata = Self.masked(newValue) }
    }

    public var metadataProvider: Logger.MetadataProvider? {
        get { inner.metadataProvider }
        set { inner.metadataProvider = newValue }
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { inner[metadataKey: key] }
        set { inner[metadataKey: key] = newValue.map(Self.masked) }
    }

    public func log(event: LogEvent) {
        var event = event
        event.message = "\(InertText.logValue(Redaction.logLine(event.message.description)))"
        event.metadata = event.metadata.map(Self.masked)
        inner.log(event: event)
    }

    private static func masked(_ metadata: Logger.Metadata) -> Logger.Metadata {
        var copy = metadata
        for (key, value) in metadata {
            // A field that holds one number (a size, a delay, a count) is not a phone number; the
            // account is masked whatever it looks like.
            if key != "account", case .stringConvertible(let number) = value, number is any Numeric { continue }
            if key != "account", case .string(let text) = value, isNumber(text) { continue }
            copy[key] = masked(value)
        }
        return copy
    }

    private static func isNumber(_ text: String) -> Bool {
        !text.isEmpty && text.allSatisfy { $0.isASCII && ($0.isNumber || $0 == "." || $0 == "-" || $0 == "e") } && Double(text) != nil
    }

    private static func masked(_ value: Logger.Metadata.Value) -> Logger.Metadata.Value {
        switch value {
        case .string(let text): .string(InertText.logValue(Redaction.logLine(text)))
        case .stringConvertible(let convertible): .string(InertText.logValue(Redaction.logLine(convertible.description)))
        case .array(let values): .array(values.map(masked))
        case .dictionary(let metadata): .dictionary(masked(metadata))
        }
    }
}
