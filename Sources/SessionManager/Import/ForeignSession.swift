import Foundation

/// Imports a session file or string without being told which library wrote it. The formats do not
/// overlap: the files differ in their tables and columns, the strings in their lengths (Telethon 353
/// or 369 starting with "1"; Pyrogram 351, 356 or 362).
public enum ForeignSession {
    /// Reads a Telethon or Pyrogram session file, opened read-only.
    public static func readFile(path: String) throws(SessionImportError) -> (format: PortableSessionFormat, session: PortableSession) {
        try parse(try SessionFileSnapshot.read(path: path), path: path)
    }

    public static func parse(
        _ snapshot: SessionFileSnapshot, path: String
    ) throws(SessionImportError) -> (format: PortableSessionFormat, session: PortableSession) {
        switch fileFormat(of: snapshot) {
        case .telethonFile?: return (.telethonFile, try TelethonSessionFile.parse(snapshot))
        case .pyrogramFile?: return (.pyrogramFile, try PyrogramSessionFile.parse(snapshot))
        default: throw .notASessionFile(path: path, tables: snapshot.tableNames.sorted())
        }
    }

    /// Which library's file this is, by the columns of its `sessions` table first (they are what the
    /// import reads), then by the tables only one library creates.
    public static func fileFormat(of snapshot: SessionFileSnapshot) -> PortableSessionFormat? {
        let columns = Set(snapshot.tables["sessions"]?.columns ?? [])
        if !columns.isDisjoint(with: ["user_id", "is_bot", "api_id", "test_mode"]) { return .pyrogramFile }
        if !columns.isDisjoint(with: ["takeout_id", "tmp_auth_key"]) { return .telethonFile }
        if snapshot.tableNames.contains("peers") { return .pyrogramFile }
        if snapshot.tableNames.contains("entities") || snapshot.tableNames.contains("sent_files") { return .telethonFile }
        return nil
    }

    /// Decodes a Telethon or Pyrogram string session.
    public static func decodeString(_ string: String) throws(SessionImportError) -> (format: PortableSessionFormat, session: PortableSession) {
        // As pasted: wrapped across lines by a terminal or an editor, or still in the quotes of the
        // Python source it was printed for. No string session holds a space or a quote.
        var text = String(string.filter { !$0.isWhitespace && !$0.isNewline })
        if text.count >= 2, let first = text.first, first == text.last, first == "\"" || first == "'" {
            text = String(text.dropFirst().dropLast())
        }
        if TelethonStringSession.lengths.contains(text.count) {
            return (.telethonString, try TelethonStringSession.decode(text))
        }
        if PyrogramStringSession.lengths.contains(text.count) {
            return (.pyrogramString, try PyrogramStringSession.decode(text))
        }
        throw .unrecognizedString(length: text.count)
    }
}
