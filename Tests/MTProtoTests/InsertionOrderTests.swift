import Testing
@testable import MTProto

@Suite("InsertionOrder")
struct InsertionOrderTests {
    @Test func popsTheOldestKeyStillInTheTable() {
        var table: [Int64: String] = [:]
        var order = InsertionOrder()
        for key: Int64 in [5, 3, 9, 7] {
            table[key] = "\(key)"
            order.append(key, in: table)
        }
        // 5 and 3 were dropped (acknowledged): the oldest left is 9, though 7 is smaller.
        table.removeValue(forKey: 5)
        table.removeValue(forKey: 3)
        #expect(order.popOldest(in: table) == 9)
        table.removeValue(forKey: 9)
        #expect(order.popOldest(in: table) == 7)
        table.removeValue(forKey: 7)
        #expect(order.popOldest(in: table) == nil)
    }

    @Test func staysBoundedWhenTheTableDropsKeysItself() {
        var table: [Int64: Int] = [:]
        var order = InsertionOrder()
        // A client that acknowledges everything: the table never fills, nothing is ever popped.
        for key in Int64(1)...100_000 {
            table[key] = 0
            order.append(key, in: table)
            if key > 10 { table.removeValue(forKey: key - 10) }
        }
        #expect(table.count == 10)
        #expect(order.heldCount <= 2 * table.count + 64 + 1)
        #expect(order.popOldest(in: table) == 99_991)
    }

    @Test func removeAllForgetsEveryKey() {
        var table: [Int64: Int] = [1: 0, 2: 0]
        var order = InsertionOrder()
        order.append(1, in: table)
        order.append(2, in: table)
        order.removeAll()
        #expect(order.popOldest(in: table) == nil)
        table[3] = 0
        order.append(3, in: table)
        #expect(order.popOldest(in: table) == 3)
    }
}
