import Logging
import OperatorHTTP
import StoreTestSupport
import Testing

@Suite struct PhoneMaskingLogHandlerTests {
    /// An error text quotes the account it is about; a phone-named account must not reach the log
    /// through it, whichever field carries it. Longer numbers (a msg_id), addresses and fields that
    /// hold one plain number stay.
    @Test func phoneNumbersAreMaskedWhereverALogLineCarriesThem() throws {
        let capture = LogCapture()
        var logger = Logger(label: "test") { _ in PhoneMaskingLogHandler(capture.handler) }
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
        let event = try #require(capture.all.first)
        #expect(event.message == "the store could not read the account +••••••01#c06e")
        #expect(event.metadata["account"] == "+••••••01#c06e")
        #expect(event.metadata["error"] == "store error (read the account +••••••01#c06e): disk I/O error")
        #expect(event.metadata["peers"] == #"["+••••••••••23#218f", "alice"]"#)
        #expect(event.metadata["nested"] == #"["who": "+••••••02#656d (bob)"]"#)
        #expect(event.metadata["msg_id"] == "7304985713094443012" && event.metadata["dc"] == "149.154.167.50:443")
        #expect(event.metadata["retry-in"] == "14.123456789012393" && event.metadata["address-space-bytes"] == "123456796")
        #expect(!"\(event)".contains("1555000"))
    }

    /// A notice Telegram sent is several lines, and text from data can hold escapes: each entry
    /// stays one line, and nothing in it is obeyed by the terminal or the journal showing it.
    @Test func everyEntryStaysOneLineWithItsControlCharactersShown() throws {
        let capture = LogCapture()
        let logger = Logger(label: "test") { _ in PhoneMaskingLogHandler(capture.handler) }
        logger.warning("Telegram sent this account a service notification", metadata: [
            "message": "New login.\n\nDevice: Desktop\r\nLocation: \u{1B}]0;pwned\u{07}\u{1B}[2Jhere\tthere\u{9B}",
            "peers": .array(["a\nb"]),
        ])
        let event = try #require(capture.all.first)
        #expect(event.metadata["message"] == "New login.\\n\\nDevice: Desktop\\r\\nLocation: ^[]0;pwned^G^[[2Jhere\tthere\u{FFFD}")
        #expect(event.metadata["peers"] == #"["a\\nb"]"#)
        #expect(!"\(event)".unicodeScalars.contains { $0.value == 0x0A || $0.value == 0x0D || $0.value == 0x1B })
    }
}
