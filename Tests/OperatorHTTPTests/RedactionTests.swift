import OperatorHTTP
import Testing

@Suite struct RedactionTests {
    @Test func phoneNumbersAreMaskedToTheirLastTwoDigitsWhateverTheSeparators() {
        #expect(Redaction.masked("+79991234567") == "+•••••••••67")
        #expect(Redaction.masked("+7 999 123-45-67") == "+•••••••••67")
        #expect(Redaction.masked("call (999) 123.45.67 now") == "call ••••••••67 now")
        #expect(Redaction.masked("USERNAME_INVALID for +447700900123.") == "USERNAME_INVALID for +••••••••••23.")
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
}
