import Testing
@testable import MTProto

/// The client session's msg_id table and the cheap hash behind it (and behind request numbers).
@Suite struct MessageIDTableTests {
    @Test func storesChangesAndRemovesByMessageID() {
        var table = MessageIDTable<String>()
        #expect(table.isEmpty)
        table[100] = "a"
        table[104] = "b"
        table[104]? += "c"
        #expect(table[100] == "a" && table[104] == "bc" && table[108] == nil)
        #expect(table.count == 2)
        #expect(table.removeValue(forKey: 100) == "a")
        #expect(table.removeValue(forKey: 100) == nil)
        table[112] = "d"
        table.removeAll { id, value in id == 112 || value == "x" }
        #expect(Array(table).map(\.key) == [104] && table.count == 1)
    }

    @Test func iteratesEveryEntryOnce() {
        var table = MessageIDTable<Int>()
        for index in 0..<500 { table[Int64(index) * 4] = index }
        let seen = Array(table)
        #expect(seen.count == 500)
        #expect(Set(seen.map(\.key)) == Set((0..<500).map { Int64($0) * 4 }))
        #expect(seen.allSatisfy { $0.key == Int64($0.value) * 4 })
    }

    /// msg_ids are multiples of 4 whose high half is the time: a hash that kept that shape would
    /// pile them into a few buckets. Over 1,024 consecutive ones, the low 10 bits of the mix hit
    /// about as many buckets as random values would (1,024 x (1 - 1/e) = 647).
    @Test func consecutiveMessageIDsSpreadOverTheBuckets() {
        let base: Int64 = 1_800_000_000 << 32
        for seed in [0, 1, -7, Int.max] {
            let buckets = Set((0..<1024).map { OwnIdentifierHash.mix(UInt64(base + Int64($0) * 4), seed: seed) & 1023 })
            #expect(buckets.count > 580, "seed \(seed): \(buckets.count) buckets of 1,024")
        }
    }

    @Test func equalRequestIDsHashEqually() {
        var set: Set<RequestID> = []
        for number in 0..<1000 { set.insert(RequestID(rawValue: UInt64(number % 250))) }
        #expect(set.count == 250)
        #expect(RequestID(rawValue: 7).hashValue == RequestID(rawValue: 7).hashValue)
    }
}
