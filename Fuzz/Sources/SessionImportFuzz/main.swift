import Foundation
import FuzzSupport
import MTProtoClient
import MTProtoCrypto
import SessionManager

// Feeds the session importers what a user could hand them. The first byte picks a mode:
//   0, 1  the rest as the text of a Telethon / Pyrogram string session (length, version, base64 checks)
//   2, 3  the rest as the packed bytes of a Telethon / Pyrogram string, encoded as that library
//         does, so the length and base64 checks pass and the field checks are reached
//   4     the rest as a small program building a table snapshot (any tables, columns, storage
//         classes, ragged rows, and the peer caches' tables): the file importers' row parsing,
//         with no SQLite in the way
//   5     the rest as a whole file given to SQLite and then to the importers
// Properties: no trap; every error has a description; whatever imports has a 256-byte key, a
// positive DC and a real port, every imported peer a positive id and a lower-case username, and a
// decoded string re-encodes to one that decodes the same.

struct Input {
    let bytes: [UInt8]
    var offset = 0

    mutating func byte() -> UInt8 {
        guard offset < bytes.count else { return 0 }
        defer { offset += 1 }
        return bytes[offset]
    }

    mutating func take(_ count: Int) -> [UInt8] { (0..<count).map { _ in byte() } }

    mutating func pick<T>(_ choices: [T]) -> T { choices[Int(byte()) % choices.count] }
}

func check(_ session: PortableSession) {
    precondition(session.authKey.bytes.count == 256, "an imported key is 256 bytes")
    precondition(session.dc >= 1, "an imported DC is positive")
    if let address = session.address {
        precondition((1...65535).contains(address.port) && !address.host.isEmpty, "an imported address is usable")
    }
    precondition(session.unreadablePeerRows >= 0, "a count of rows left out")
    for peer in session.peers {
        precondition(peer.id > 0, "an imported peer has a positive id")
        precondition(peer.kind != .chat || peer.accessHash == nil, "a basic chat has no access hash")
        if let username = peer.username { precondition(!username.isEmpty && username == username.lowercased(), "usernames are kept lower-cased") }
    }
}

func checkError(_ error: any Error) {
    precondition(!"\(error)".isEmpty, "every error says what happened")
}

func telethonString(_ text: String) {
    do {
        let session = try TelethonStringSession.decode(text)
        check(session)
        let again = try TelethonStringSession.decode(try TelethonStringSession.encode(session))
        precondition(again == session, "Telethon string round trip")
    } catch {
        checkError(error)
    }
}

func pyrogramString(_ text: String) {
    do {
        var session = try PyrogramStringSession.decode(text)
        check(session)
        session.apiID = session.apiID ?? 0
        let again = try PyrogramStringSession.decode(try PyrogramStringSession.encode(session))
        precondition(again == session, "Pyrogram string round trip")
    } catch {
        checkError(error)
    }
}

func urlSafe(_ bytes: [UInt8], padded: Bool) -> String {
    var text = Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
    if !padded { text = text.replacingOccurrences(of: "=", with: "") }
    return text
}

let tableNames = ["version", "sessions", "entities", "peers", "sent_files", "notes"]
let columnNames = ["dc_id", "server_address", "port", "auth_key", "takeout_id", "tmp_auth_key", "api_id", "test_mode",
                   "date", "user_id", "is_bot", "version", "number", "id", "hash", "username"]
let texts = ["149.154.167.51", "2001:67c:4e8:f002::a", "", " ", "localhost", "8", "\u{0}", "é", "user", "bot", "group", "channel",
             "supergroup", "Bob_1"]
let peerTableNames = ["entities", "peers"]
let peerColumnNames = ["id", "hash", "access_hash", "type", "username", "date", "last_update_on", "phone", "name"]

func value(_ input: inout Input) -> SessionFileValue {
    switch input.byte() % 7 {
    case 0: return .null
    case 1: return .integer(Int64(Int8(bitPattern: input.byte())))
    case 2: return .integer(input.take(8).reduce(0) { $0 << 8 | Int64($1) })
    case 3: return .real(Double(Int8(bitPattern: input.byte())) / 2)
    case 4: return .text(input.pick(texts))
    case 5: return .blob(input.take(input.pick([0, 1, 32, 247, 248, 255, 256, 257])))
    default: return .blob(input.take(256))
    }
}

func snapshot(_ input: inout Input) -> SessionFileSnapshot {
    var names: Set<String> = []
    var tables: [String: SessionFileTable] = [:]
    for _ in 0..<Int(input.byte() % 5) {
        let name = input.pick(tableNames)
        names.insert(name)
        let columns = (0..<Int(input.byte() % 11)).map { _ in input.pick(columnNames) }
        // Rows may be shorter or longer than the column list: the parser must not trust either.
        let rows = (0..<Int(input.byte() % 3)).map { _ in (0..<Int(input.byte() % 12)).map { _ in value(&input) } }
        tables[name] = SessionFileTable(columns: columns, rows: rows)
    }
    var peerTables: [String: SessionFileTable] = [:]
    var peerRowCounts: [String: Int] = [:]
    for _ in 0..<Int(input.byte() % 3) {
        let name = input.pick(peerTableNames)
        let columns = (0..<Int(input.byte() % 8)).map { _ in input.pick(peerColumnNames) }
        let rows = (0..<Int(input.byte() % 6)).map { _ in (0..<Int(input.byte() % 9)).map { _ in value(&input) } }
        peerTables[name] = SessionFileTable(columns: columns, rows: rows)
        // The file's count may disagree with the rows read (a damaged file, a concurrent write).
        peerRowCounts[name] = Int(input.byte()) - 64
    }
    return SessionFileSnapshot(tableNames: names, tables: tables, peerTables: peerTables, peerRowCounts: peerRowCounts)
}

func parseAll(_ snapshot: SessionFileSnapshot) {
    // Called one by one: an array of typed-throws function references crashes Swift 6.3.1's SILGen.
    do { check(try TelethonSessionFile.parse(snapshot)) } catch { checkError(error) }
    do { check(try PyrogramSessionFile.parse(snapshot)) } catch { checkError(error) }
    do { check(try ForeignSession.parse(snapshot, path: "fuzz").session) } catch { checkError(error) }
}

let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("session-import-fuzz-\(getpid()).session").path

runFuzzer { raw in
    var input = Input(bytes: Array(raw))
    let mode = input.byte() % 6
    let rest = Array(raw.dropFirst())
    switch mode {
    case 0: telethonString(String(decoding: rest, as: UTF8.self))
    case 1: pyrogramString(String(decoding: rest, as: UTF8.self))
    case 2: telethonString("1" + urlSafe(rest, padded: true))
    case 3: pyrogramString(urlSafe(rest, padded: false))
    case 4: parseAll(snapshot(&input))
    default:
        _ = FileManager.default.createFile(atPath: scratch, contents: Data(rest))
        do { check(try ForeignSession.readFile(path: scratch).session) } catch { checkError(error) }
        do { check(try TelethonSessionFile.read(path: scratch)) } catch { checkError(error) }
        do { check(try PyrogramSessionFile.read(path: scratch)) } catch { checkError(error) }
    }
}
