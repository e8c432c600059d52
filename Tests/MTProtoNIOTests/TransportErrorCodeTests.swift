import Testing

@testable import MTProtoNIO

@Suite struct TransportErrorCodeTests {
    @Test func knownCodesMatchTheSpec() {
        #expect(TransportErrorCode.authKeyNotFound.rawValue == -404)
        #expect(TransportErrorCode.transportFlood.rawValue == -429)
        #expect(TransportErrorCode.invalidDC.rawValue == -444)
        #expect(TransportErrorCode.forbidden.code == 403)
    }

    @Test func descriptionsNameTheCodeTheCauseAndTheRemedy() {
        #expect(TransportErrorCode.authKeyNotFound.description.contains("-404"))
        #expect(TransportErrorCode.authKeyNotFound.description.contains("new one"))
        #expect(TransportErrorCode.transportFlood.description.contains("wait"))
        #expect(TransportErrorCode.invalidDC.description.contains("DC id"))
        let unknown = TransportErrorCode(rawValue: -503)
        #expect(unknown.description.contains("-503"))
        #expect(unknown.description.contains("does not list"))
    }
}
