import Logging
import OperatorHTTP
import Synchronization
import Testing

@Suite struct PhoneMaskingLogHandlerTests {
    final class Lines: Sendable {
        let all = Mutex<[String]>([])
    }

    struct Capturing: LogHandler {
        let lines: Lines
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }

        func log(event: LogEvent) {
            let fields = metadata.merging(event.metadata ?? [:]) { $1 }.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
            lines.all.withLock { $0.append(([event.message.description] + fields).joined(separator: " ")) }
        }
    }

    /// An error text quotes the account it is about; a phone-named account must not reach the log
    /// through it, whichever field carries it. Longer numbers (a msg_id) and addresses stay.
    @Test func phoneNumbersAreMaskedWhereverALogLineCarriesThem() {
        let lines = Lines()
        var logger = Logger(label: "test") { _ in PhoneMaskingLogHandler(Capturing(lines: lines)) }
        logger[metadataKey: "account"] = "+15550001"
        logger.error("the store could not read the account +15550001", metadata: [
            "error": "store error (read the account +15550001): disk I/O error",
            "peers": .array(["+44 7700 900123", "alice"]),
            "nested": .dictionary(["who": "+15550002 (bob)"]),
            "msg_id": "7304985713094443012",
            "dc": "149.154.167.50:443",
            "retry-in": "14.123456789012393",
            "address-space-bytes": "123456796",
        ])
        let line = lines.all.withLock { $0.first } ?? ""
        #expect(line.hasPrefix("the store could not read the account +••••••01 "), "\(line)")
        #expect(line.contains("account=+••••••01"), "\(line)")
        #expect(line.contains("error=store error (read the account +••••••01): disk I/O error"), "\(line)")
        #expect(line.contains("+••••••••••23") && line.contains("alice"), "\(line)")
        #expect(line.contains("\"who\": \"+••••••02 (bob)\""), "\(line)")
        #expect(line.contains("msg_id=7304985713094443012") && line.contains("dc=149.154.167.50:443"), "\(line)")
        #expect(line.contains("retry-in=14.123456789012393") && line.contains("address-space-bytes=123456796"), "\(line)")
        #expect(!line.contains("1555000"), "\(line)")
    }
}
