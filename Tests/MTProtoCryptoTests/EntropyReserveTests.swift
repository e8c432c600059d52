import Testing
@testable import MTProtoCrypto

/// `SystemEntropy` hands small requests out of a per-thread reserve: each byte must go out once,
/// to one caller, whichever copy of the source or thread asks. (A repeated 16-byte draw has odds
/// 2^-128 with a working generator, so these checks do not flake.)
@Suite("EntropyReserve")
struct EntropyReserveTests {
    @Test func copiesOfTheSourceNeverShareBytes() {
        var first = SystemEntropy()
        var second = first
        let a = (0..<600).map { _ in first.bytes(16) }
        let b = (0..<600).map { _ in second.bytes(16) }
        // 1,200 draws of 16 bytes cross the 4 KiB reserve's refill several times.
        #expect(Set(a + b).count == 1_200)
    }

    @Test func drawsOfEverySizeUpToTheLimitAreFresh() {
        var entropy = SystemEntropy()
        var seen = Set<[UInt8]>()
        for size in 16...EntropyReserve.largestServed {
            #expect(seen.insert(entropy.bytes(size)).inserted)
        }
    }

    @Test func threadsNeverShareBytes() async {
        let draws = await withTaskGroup(of: [[UInt8]].self) { group in
            for _ in 0..<8 {
                group.addTask {
                    var entropy = SystemEntropy()
                    return (0..<300).map { _ in entropy.bytes(16) }
                }
            }
            var all: [[UInt8]] = []
            for await part in group { all += part }
            return all
        }
        #expect(Set(draws).count == 2_400)
    }
}
