import Logging
import Synchronization

/// Keeps every log event, so a test can assert what an operator would read: the message and the
/// fields, the handler's own (`logger[metadataKey:]`) merged with the event's. One for every test
/// target (the session manager's, the workers', the operator views'), which each kept a copy.
public final class LogCapture: Sendable {
    public struct Event: Sendable {
        public var level: Logger.Level
        public var message: String
        public var metadata: [String: String]
    }

    private let events = Mutex<[Event]>([])

    public init() {}

    public var all: [Event] { events.withLock { $0 } }

    /// Each event as one line: "level message key=value …", the fields sorted by key.
    public var messages: [String] {
        all.map { event in
            let fields = event.metadata.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
            return "\(event.level) \(event.message) \(fields)"
        }
    }

    public var logger: Logger { Logger(label: "capture") { _ in self.handler } }

    public var handler: Handler { Handler(capture: self) }

    public struct Handler: LogHandler {
        let capture: LogCapture
        public var metadata: Logger.Metadata = [:]
        public var logLevel: Logger.Level = .trace

        public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }

        public func log(event: LogEvent) {
            let fields = metadata.merging(event.metadata ?? [:]) { $1 }.mapValues { "\($0)" }
            capture.events.withLock { $0.append(Event(level: event.level, message: "\(event.message)", metadata: fields)) }
        }
    }
}
