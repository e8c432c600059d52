import Testing
import MTProtoCrypto

@Suite("Constant-time comparison")
struct ConstantTimeTests {
    @Test func equalAndUnequal() {
        #expect(ConstantTime.equals([1, 2, 3], [1, 2, 3]))
        #expect(!ConstantTime.equals([1, 2, 3], [1, 2, 4]))
        #expect(!ConstantTime.equals([9, 2, 3], [1, 2, 3]))
        #expect(!ConstantTime.equals([1, 2, 3], [1, 2]))
        #expect(ConstantTime.equals([], []))
    }

    @Test func rawBuffers() {
        let a: [UInt8] = [5, 6, 7], b: [UInt8] = [5, 6, 7], c: [UInt8] = [5, 6, 8]
        a.withUnsafeBytes { left in
            b.withUnsafeBytes { #expect(ConstantTime.equals(left, $0)) }
            c.withUnsafeBytes { #expect(!ConstantTime.equals(left, $0)) }
        }
    }
}
