import Testing

@testable import TL
import SeededRandom

/// `UTF8Validation` decides which bytes become a `String` unchecked, so it must accept nothing the
/// standard library would refuse, and refuse nothing it accepts. Millions of comparisons: one test
/// at a time, each yielding its thread often, or the suite's seconds of CPU on both cores stall
/// other suites' PostgreSQL transactions past the server's idle-in-transaction limit (it did).
@Suite(.serialized) struct UTF8ValidationTests {
    private func ours(_ bytes: [UInt8]) -> Bool { bytes.withUnsafeBytes { UTF8Validation.isValid($0) } }
    private func standard(_ bytes: [UInt8]) -> Bool { String(validating: bytes, as: UTF8.self) != nil }

    @Test func everySequenceOfOneOrTwoBytesAndEveryThreeByteScalarFormIsJudgedAsTheStandardLibraryJudgesIt() async {
        var disagreements: [[UInt8]] = []
        for first in 0...255 {
            await Task.yield()
            let one = [UInt8(first)]
            if ours(one) != standard(one) { disagreements.append(one) }
            for second in 0...255 {
                let two = [UInt8(first), UInt8(second)]
                if ours(two) != standard(two) { disagreements.append(two) }
                // Three bytes: every third byte after a 3-byte scalar's lead and a continuation
                // byte; the edges of the ranges after the rest (already refused, or covered by the
                // 2- and 4-byte cases).
                guard first >= 0x80 else { continue }
                let thirds = (0xE0...0xEF).contains(first) && (0x80...0xBF).contains(second)
                    ? Array(0...255) : [0x00, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xFF]
                for third in thirds {
                    let three = [UInt8(first), UInt8(second), UInt8(third)]
                    if ours(three) != standard(three) { disagreements.append(three) }
                }
            }
        }
        #expect(disagreements.isEmpty, "\(disagreements.prefix(10))")
    }

    /// Four bytes: every second byte after the leads of 4-byte scalars (F0-F4) and the edges after
    /// the other leads, with third and fourth bytes at each edge of the continuation range and just
    /// outside it.
    @Test func fourByteSequencesAtEveryLeadAndEdgeAreJudgedAsTheStandardLibraryJudgesThem() async {
        let edges: [UInt8] = [0x00, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xF4, 0xFF]
        var disagreements: [[UInt8]] = []
        for first in 0xC0...0xFF {
            for second in (0xF0...0xF4).contains(first) ? Array(0...255) : edges.map(Int.init) {
                if second % 64 == 0 { await Task.yield() }
                for third in edges {
                    for fourth in edges {
                        let four = [UInt8(first), UInt8(second), third, fourth]
                        if ours(four) != standard(four) { disagreements.append(four) }
                    }
                }
            }
        }
        #expect(disagreements.isEmpty, "\(disagreements.prefix(10))")
    }

    /// Longer text through the ASCII fast path: a bad or truncated byte at every offset, before,
    /// inside and after runs of 8.
    @Test func aBadByteAnywhereInLongerTextIsFound() throws {
        let text = Array("plain ascii text, then кириллица 漢字 and 😀 at the end".utf8)
        #expect(ours(text) && standard(text))
        for offset in text.indices {
            for bad: UInt8 in [0x80, 0xC0, 0xFF, 0xED] {
                var broken = text
                broken[offset] = bad
                #expect(ours(broken) == standard(broken), "byte \(bad) at \(offset)")
            }
            let truncated = Array(text[..<offset])
            #expect(ours(truncated) == standard(truncated), "cut at \(offset)")
        }
        #expect(ours([]))
    }

    @Test func randomBytesAreJudgedAsTheStandardLibraryJudgesThem() async {
        var generator = SplitMix64(seed: 0x7465_7874)
        for round in 0..<20_000 {
            if round % 500 == 0 { await Task.yield() }
            let count = Int(generator.next() % 40)
            // Mostly bytes of well-formed text's ranges, so that valid samples occur too.
            let bytes = (0..<count).map { _ -> UInt8 in
                let roll = generator.next()
                switch roll % 4 {
                case 0: return UInt8(truncatingIfNeeded: roll >> 8) & 0x7F
                case 1: return 0x80 | UInt8(truncatingIfNeeded: roll >> 8) & 0x3F
                case 2: return 0xC2 + UInt8(truncatingIfNeeded: roll >> 8) % 0x33
                default: return UInt8(truncatingIfNeeded: roll >> 8)
                }
            }
            #expect(ours(bytes) == standard(bytes), "\(bytes)")
        }
    }

    /// Decoding keeps its promise either way: valid text as it was, a stray byte as U+FFFD.
    @Test func readStringKeepsValidTextAndRepairsABrokenOne() throws {
        for (bytes, expected) in [(Array("Привет, 世界 😀".utf8), "Привет, 世界 😀"), ([0x61, 0xFF, 0x62], "a\u{FFFD}b"), ([0x61, 0xE2, 0x82], "a\u{FFFD}")] {
            var writer = TLWriter()
            writer.writeBytes(bytes)
            var reader = TLReader(writer.bytes)
            #expect(try reader.readString() == expected)
        }
    }
}
