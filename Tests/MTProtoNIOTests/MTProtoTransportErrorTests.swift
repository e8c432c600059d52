import Testing

@testable import MTProtoNIO

private let everyCase: [MTProtoTransportError] = [
    .frameTooLong(transport: .intermediate, length: 99_999_996, maximum: 16_777_216),
    .zeroLength(transport: .abridged),
    .lengthNotMultipleOfFour(transport: .intermediate, length: 6),
    .fullFrameTooShort(length: 8),
    .checksumMismatch(sequenceNumber: 3, expected: 0xabcd, received: 0x1234),
    .unexpectedSequenceNumber(expected: 1, received: 2),
    .truncatedFrame(transport: .full, bufferedBytes: 7),
    .truncatedFrame(transport: nil, bufferedBytes: 3),
    .unrecognizedTransport,
    .httpTransportNotSupported,
    .tlsTransportNotSupported,
]

@Suite struct MTProtoTransportErrorTests {
    @Test(arguments: everyCase)
    func descriptionSaysWhatWhyAndWhatToDo(error: MTProtoTransportError) {
        let text = error.description
        #expect(text.count > 80, "a sentence, not a code: \(text)")
        #expect(text.contains("closed") || text.contains("dropped"), "says what happens to the connection: \(text)")
    }

    @Test func descriptionsCarryTheNumbers() {
        #expect(MTProtoTransportError.frameTooLong(transport: .full, length: 2048, maximum: 1024).description.contains("2048"))
        #expect(MTProtoTransportError.checksumMismatch(sequenceNumber: 3, expected: 0xabcd, received: 0x1234).description.contains("0x1234"))
        #expect(MTProtoTransportError.unexpectedSequenceNumber(expected: 1, received: 2).description.contains("seq_no 2"))
    }
}
