import Testing
@testable import TestDC

@Suite("ConnectionTable")
struct ConnectionTableTests {
    /// The ids of the live connections that used this key last, as the index knows them.
    private func ids(_ table: ConnectionTable, dc: Int32, keyID: Int64) -> Set<Int> {
        Set(table.byID.keys.filter { id in table.containsConnection(dc: dc, keyID: keyID) { $0.id == id } })
    }

    @Test func findsConnectionsByTheKeyTheyUseNow() {
        var table = ConnectionTable()
        table.insert(LiveConnection(id: 1, dc: 2, remote: "a"))
        table.insert(LiveConnection(id: 2, dc: 2, remote: "b"))
        table.insert(LiveConnection(id: 3, dc: 3, remote: "c"))
        #expect(ids(table, dc: 2, keyID: 77).isEmpty)

        table.update(1) { $0.authKeyID = 77; $0.sessionID = 10 }
        table.update(2) { $0.authKeyID = 77; $0.sessionID = 11 }
        table.update(3) { $0.authKeyID = 77 }
        #expect(ids(table, dc: 2, keyID: 77) == [1, 2])
        #expect(table.containsConnection(dc: 2, keyID: 77) { $0.id == 2 && $0.sessionID == 11 })
        #expect(ids(table, dc: 3, keyID: 77) == [3])

        // A connection that moves to another key leaves the old key's list.
        table.update(2) { $0.authKeyID = 88 }
        #expect(ids(table, dc: 2, keyID: 77) == [1])
        #expect(ids(table, dc: 2, keyID: 88) == [2])

        table.remove(1)
        #expect(ids(table, dc: 2, keyID: 77).isEmpty)
        #expect(table.byID.keys.sorted() == [2, 3])
    }

    /// The duplicate-key check's question, answered from the index without copying connections.
    @Test func answersWhetherAnotherConnectionOfAKeyMatches() {
        var table = ConnectionTable()
        for id in 1...3 { table.insert(LiveConnection(id: id, dc: 2, remote: "r\(id)")) }
        table.update(1) { $0.authKeyID = 77; $0.sessionID = 10 }
        table.update(2) { $0.authKeyID = 77; $0.sessionID = 11 }
        table.update(3) { $0.authKeyID = 88; $0.sessionID = 12 }

        #expect(table.containsConnection(dc: 2, keyID: 77) { $0.sessionID == 11 })
        #expect(!table.containsConnection(dc: 2, keyID: 77) { $0.sessionID == 12 })
        #expect(!table.containsConnection(dc: 3, keyID: 77) { _ in true })
        #expect(!table.containsConnection(dc: 2, keyID: 99) { _ in true })

        table.remove(2)
        #expect(!table.containsConnection(dc: 2, keyID: 77) { $0.id != 1 })
    }
}
