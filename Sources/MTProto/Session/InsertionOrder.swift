/// The keys of a bounded table in the order they were added, so the oldest entry goes without a
/// scan of the table (a `keys.min()` per answer cost the test DC a few percent of its time once its
/// tables were full). Keys the table dropped meanwhile (acknowledged messages) are skipped when met
/// and compacted away, so the order holds at most about twice the table's entries.
struct InsertionOrder {
    private var keys: [Int64] = []
    private var head = 0

    /// Records `key`, just added to `table`, as the newest.
    mutating func append<Value>(_ key: Int64, in table: [Int64: Value]) {
        keys.append(key)
        if keys.count - head > 2 * table.count + 64 {
            keys = keys[head...].filter { table[$0] != nil }
            head = 0
        }
    }

    /// Removes and returns the oldest key still in `table` (the caller removes it from the table).
    mutating func popOldest<Value>(in table: [Int64: Value]) -> Int64? {
        defer {
            if head > 64, head * 2 > keys.count {
                keys.removeFirst(head)
                head = 0
            }
        }
        while head < keys.count {
            let key = keys[head]
            head += 1
            if table[key] != nil { return key }
        }
        return nil
    }

    /// Keys held, stale ones included (for the bound's tests).
    var heldCount: Int { keys.count - head }

    mutating func removeAll() {
        keys.removeAll(keepingCapacity: true)
        head = 0
    }
}
