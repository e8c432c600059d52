/// The live connections, also indexed by auth key: the duplicate-key check runs on every request
/// and must not scan every connection of the cluster (1,000 clients made it a tenth of a request).
struct ConnectionTable {
    private struct KeyRef: Hashable {
        var dc: Int32
        var keyID: Int64
    }

    private(set) var byID: [Int: LiveConnection] = [:]
    private var byKey: [KeyRef: Set<Int>] = [:]

    mutating func insert(_ connection: LiveConnection) {
        byID[connection.id] = connection
        index(connection)
    }

    mutating func remove(_ id: Int) {
        guard let old = byID.removeValue(forKey: id) else { return }
        unindex(old)
    }

    mutating func update(_ id: Int, _ change: (inout LiveConnection) -> Void) {
        guard var entry = byID[id] else { return }
        let before = entry
        change(&entry)
        byID[id] = entry
        if before.dc != entry.dc || before.authKeyID != entry.authKeyID {
            unindex(before)
            index(entry)
        }
    }

    /// Whether a live connection that used this key last satisfies `predicate`. Asked on every
    /// request, so it builds no list: it looks at the key's connections (one or two) one by one.
    func containsConnection(dc: Int32, keyID: Int64, where predicate: (LiveConnection) -> Bool) -> Bool {
        guard let ids = byKey[KeyRef(dc: dc, keyID: keyID)] else { return false }
        return ids.contains { id in byID[id].map(predicate) ?? false }
    }

    private mutating func index(_ connection: LiveConnection) {
        guard let keyID = connection.authKeyID else { return }
        byKey[KeyRef(dc: connection.dc, keyID: keyID), default: []].insert(connection.id)
    }

    private mutating func unindex(_ connection: LiveConnection) {
        guard let keyID = connection.authKeyID else { return }
        let key = KeyRef(dc: connection.dc, keyID: keyID)
        byKey[key]?.remove(connection.id)
        if byKey[key]?.isEmpty == true { byKey.removeValue(forKey: key) }
    }
}
