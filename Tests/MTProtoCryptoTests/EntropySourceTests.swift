import Testing
import MTProtoCrypto

@Suite("EntropySource")
struct EntropySourceTests {
    @Test("system entropy fills every byte, whatever the size", arguments: [0, 1, 7, 8, 9, 255, 256, 257, 4096, 1_000_003])
    func systemEntropyFillsEveryByte(count: Int) {
        var entropy = SystemEntropy()
        // A byte left unwritten stays 0 in every draw; a written one is 0 in all 8 draws with odds 2^-64.
        let draws = (0..<8).map { _ in entropy.bytes(count) }
        #expect(draws.allSatisfy { $0.count == count })
        let everWritten = (0..<count).allSatisfy { index in draws.contains { $0[index] != 0 } }
        #expect(everWritten)
        if count >= 8 { #expect(draws[0] != draws[1]) }
    }

    @Test func bytesDrawsFromFillInOrder() {
        var replay = ReplayEntropy([1, 2, 3, 4, 5])
        #expect(replay.bytes(2) == [1, 2])
        #expect(replay.bytes(3) == [3, 4, 5])
        #expect(replay.bytes(0) == [])
    }
}
