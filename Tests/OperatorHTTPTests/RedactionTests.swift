import OperatorHTTP
import Testing

@Suite struct RedactionTests {
    @Test func phoneNumbersAreMaskedToTheirLastTwoDigitsAndATagWhateverTheSeparators() {
        #expect(Redaction.masked("+79991234567") == "+•••••••••67#6d58")
        #expect(Redaction.masked("+7 999 123-45-67") == "+•••••••••67#6d58", "one number, one tag, however it is written")
        #expect(Redaction.masked("call (999) 123.45.67 now") == "call ••••••••67#62bc now")
        #expect(Redaction.masked("USERNAME_INVALID for +447700900123.") == "USERNAME_INVALID for +••••••••••23#218f.")
        // Two accounts named by numbers that end alike stay two (before: "+••••••03" both, one
        // metric series, one dashboard name).
        #expect(Redaction.masked("+1 555 0003") == "+••••••03#b4d0" && Redaction.masked("+1 555 0103") == "+••••••03#591e")
        #expect(Redaction.masked(Redaction.masked("+79991234567")) == "+•••••••••67#6d58", "masking twice changes nothing")
    }

    @Test func shortNumbersAndNamesStay() {
        #expect(Redaction.masked("alice") == "alice")
        #expect(Redaction.masked("FLOOD_WAIT_1800 on messages.sendMessage") == "FLOOD_WAIT_1800 on messages.sendMessage")
        #expect(Redaction.masked("job 42 attempt 3/5 TGSM-RATE-001") == "job 42 attempt 3/5 TGSM-RATE-001")
        #expect(!Redaction.containsPhoneLike("dc 2, 443"))
        #expect(Redaction.containsPhoneLike("+1 555 0100 123"))
    }
}

extension RedactionTests {
    @Test func datesAreNotPhoneNumbers() {
        #expect(Redaction.masked("since 2027-01-15T08:00:00Z") == "since 2027-01-15T08:00:00Z")
    }

    /// Points in time as `UnixTime` prints them stay whatever their fraction: an audit found one
    /// flood wait's `until=unix 1796520800.28` masked and another's `unix 1796520800.2823546` not.
    @Test func unixTimesAreNotPhoneNumbers() {
        for text in ["until=unix 1796520800.28", "until=unix 1796520800.2823546", "until=unix 1796520800", "at 1796520800.5"] {
            #expect(Redaction.logLine(text) == text)
            #expect(Redaction.masked(text) == text)
        }
        #expect(Redaction.masked("call 1796520800").hasPrefix("call ••••••••00#"), "ten digits alone may be a number")
    }
}

extension RedactionTests {
    @Test func addressesAreNotPhoneNumbers() {
        #expect(Redaction.masked("DC 2 at 149.154.167.50:443") == "DC 2 at 149.154.167.50:443")
        #expect(Redaction.masked("DC 1 127.0.0.1:34817, DC 2 127.0.0.1:35265") == "DC 1 127.0.0.1:34817, DC 2 127.0.0.1:35265")
        #expect(Redaction.masked("call 555.123.4567") == "call ••••••••67#2eae")
        #expect(Redaction.logLine("retry in 14.123456789012393 s") == "retry in 14.123456789012393 s")
    }

    /// Log lines keep what is longer than any phone number (a msg_id, an auth key id) whole.
    @Test func logLinesKeepRunsLongerThanAnyPhoneNumber() {
        #expect(Redaction.logLine("msg_id 7304985713094443012 for +15550001") == "msg_id 7304985713094443012 for +••••••01#c06e")
        #expect(Redaction.masked("msg_id 7304985713094443012") == "msg_id •••••••••••••••••12#c152")
    }
}
