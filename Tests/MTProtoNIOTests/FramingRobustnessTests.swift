import NIOCore
import Testing

@testable import MTProtoNIO
import SeededRandom

/// Garbage from the network never traps: every framing and the detector, in both roles, either
/// returns frames, asks for more bytes or throws a typed error, on seeded random streams.
@Suite struct FramingRobustnessTests {
    /// A fixed seed gives the same streams on every run.
    typealias SeededGenerator = SplitMix64

    static func garbage(_ generator: inout SeededGenerator) -> ByteBuffer {
        let count = Int.random(in: 0...64, using: &generator)
        var buffer = ByteBufferAllocator().buffer(capacity: count)
        for _ in 0..<count {
            // Bias towards bytes that are meaningful in headers, so the interesting branches run.
            let byte: UInt8 =
                switch Int.random(in: 0..<4, using: &generator) {
                case 0: [0x00, 0x01, 0x04, 0x7f, 0x80, 0xef, 0xee, 0xdd, 0xff].randomElement(using: &generator) ?? 0
                default: UInt8.random(in: 0...255, using: &generator)
                }
            buffer.writeInteger(byte)
        }
        return buffer
    }

    @Test(arguments: TransportKind.allCases)
    func randomStreamsYieldFramesOrTypedErrors(kind: TransportKind) {
        var generator = SeededGenerator(seed: 0x7467_736d)
        let limits = TransportLimits(maximumFrameLength: 256)
        var outcomes: [String: Int] = [:]
        for _ in 0..<1_500 {
            for role in [TransportRole.client, .server] {
                var framing = TransportFraming(kind: kind, role: role, limits: limits)
                var stream = Self.garbage(&generator)
                do {
                    while try framing.decode(from: &stream) != nil { outcomes["frame", default: 0] += 1 }
                    outcomes["needs more", default: 0] += 1
                } catch {
                    outcomes["\(error)".prefix(30).description, default: 0] += 1
                }
            }
        }
        #expect(outcomes["needs more", default: 0] > 0)
        #expect(outcomes.count > 2, "several outcomes were reached: \(outcomes.keys.sorted())")
    }

    @Test func randomFirstBytesAreDetectedOrRejected() {
        var generator = SeededGenerator(seed: 42)
        var detected: Set<TransportKind> = []
        var rejected = 0
        for _ in 0..<3_000 {
            var detector = TransportDetector()
            var stream = Self.garbage(&generator)
            do {
                if let kind = try detector.detect(from: &stream) { detected.insert(kind) }
            } catch {
                rejected += 1
            }
        }
        // Random words almost never spell a 4-byte tag or a zero seq_no; those paths have their own tests.
        #expect(detected.contains(.abridged))
        #expect(rejected > 0)
    }
}
