/// Why a session file or string of a Python library could not be imported. Each description says
/// what was found, why it cannot be used and what to do. None shows key bytes or the string itself
/// (a string session is a password).
public enum SessionImportError: Error, Equatable, Sendable, CustomStringConvertible {
    case fileNotFound(path: String)
    case unreadable(path: String, reason: String)
    case emptyFile(path: String)
    case notSQLite(path: String)
    case corrupt(path: String, reason: String)
    /// Another process holds a write lock for longer than the read waits.
    case busy(path: String)
    /// A crashed writer left a transaction that only a read-write open could roll back.
    case unfinishedWrite(path: String)
    /// A SQLite database with neither Telethon's nor Pyrogram's tables.
    case notASessionFile(path: String, tables: [String])
    case missingTable(PortableSessionFormat, table: String)
    case missingColumn(PortableSessionFormat, table: String, column: String)
    case noSessionRow(PortableSessionFormat)
    case multipleSessionRows(PortableSessionFormat, count: Int)
    case unsupportedVersion(PortableSessionFormat, found: Int64, supported: ClosedRange<Int64>)
    /// A value of the wrong type or out of its range (a DC of 0, a port of 70000, text for a key...).
    case invalidField(PortableSessionFormat, field: String, reason: String)
    /// The session has no auth key (never connected, or logged out).
    case noAuthKey(PortableSessionFormat)
    case wrongKeySize(PortableSessionFormat, length: Int)
    /// A string session of a length no version of the format has.
    case wrongLength(PortableSessionFormat, length: Int, expected: [Int])
    case unknownStringVersion(PortableSessionFormat, found: String)
    case badBase64(PortableSessionFormat)
    /// A string that is neither a Telethon nor a Pyrogram session by its length and prefix.
    case unrecognizedString(length: Int)

    public var description: String {
        switch self {
        case .fileNotFound(let path):
            "no session file at \(path): check the path (Telethon and Pyrogram add .session to the name they are given)."
        case .unreadable(let path, let reason):
            "cannot read the session file \(path): \(reason). Check its permissions, or copy it somewhere this process can read."
        case .emptyFile(let path):
            "the session file \(path) is empty: the library created it but never saved a session. Export the session again from a client that is logged in."
        case .notSQLite(let path):
            "\(path) is not a SQLite database, so it is no Telethon or Pyrogram session file: if it holds a string session, import it as a string; otherwise export the session again."
        case .corrupt(let path, let reason):
            "the session file \(path) is damaged (\(reason)): it may be truncated or half-copied. Copy it again from the machine that wrote it, with the client stopped."
        case .busy(let path):
            "the session file \(path) is locked by another process that is writing it: stop the Python client that uses it, then import again."
        case .unfinishedWrite(let path):
            "the session file \(path) has an unfinished write (its -journal or -wal file), which a read-only import cannot roll back: open it once with the library that wrote it (or copy it together with that file), then import again."
        case .notASessionFile(let path, let tables):
            "\(path) is a SQLite database but neither a Telethon nor a Pyrogram session (its tables: \(tables.isEmpty ? "none" : tables.joined(separator: ", "))): check that this is the right file."
        case .missingTable(let format, let table):
            "this \(format) has no `\(table)` table: it is incomplete or from an unknown version. Open it once with the library (which upgrades old files), then import it again."
        case .missingColumn(let format, let table, let column):
            "this \(format) has no column `\(column)` in `\(table)`: it is from a version we do not know. Open it once with a current version of the library, then import it again."
        case .noSessionRow(let format):
            "this \(format) holds no session: the client never connected with it. Log in with the library first, then import again."
        case .multipleSessionRows(let format, let count):
            "this \(format) holds \(count) sessions where the library keeps one, so which key is current is unknown. Open it with the library and save it again, or export a string session instead."
        case .unsupportedVersion(let format, let found, let supported):
            "this \(format) has schema version \(found); versions \(supported.lowerBound) to \(supported.upperBound) are understood. Export the session from the library as a string session and import that, or report the new version."
        case .invalidField(let format, let field, let reason):
            "this \(format) has an unusable `\(field)`: \(reason). The file or string was altered or damaged; export the session again."
        case .noAuthKey(let format):
            "this \(format) has no auth key: the client never completed a connection with it, or it was logged out. Log in with the library first, then export again."
        case .wrongKeySize(let format, let length):
            "the auth key in this \(format) is \(length) bytes, where an MTProto key is 256: the data is damaged or not an auth key. Export the session again."
        case .wrongLength(let format, let length, let expected):
            "this \(format) is \(length) characters long, where its versions are \(expected.map(String.init).joined(separator: " or ")): it was cut or padded when copied. Copy the whole string again (no spaces or line breaks inside)."
        case .unknownStringVersion(let format, let found):
            "this \(format) starts with version \"\(found)\", where only \"1\" exists: it is not a Telethon string session, or one of a newer Telethon. Check what was copied."
        case .badBase64(let format):
            "this \(format) is not valid URL-safe base64: a character was changed or lost when copied. Copy the string again."
        case .unrecognizedString(let length):
            "a string of \(length) characters is neither a Telethon string session (353 or 369, starting with \"1\") nor a Pyrogram one (351, 356 or 362): copy the whole string again, or check which library wrote it."
        }
    }
}

/// Why a session could not be exported to a format of the Python libraries.
public enum SessionExportError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The client's state has no key for its home DC.
    case noAuthKey(dc: Int)
    /// Exports never replace a file unless asked to.
    case fileExists(path: String)
    /// The format stores the DC's address and none is known.
    case noAddress(dc: Int, format: PortableSessionFormat)
    /// Telethon string sessions store the address as 4 or 16 bytes: a host name does not fit.
    case addressNotIPLiteral(host: String)
    /// The format needs a value the session does not carry (Pyrogram: api_id, user id).
    case missingField(PortableSessionFormat, field: String, advice: String)
    case outOfRange(PortableSessionFormat, field: String, value: String, allowed: String)
    case writeFailed(path: String, reason: String)

    public var description: String {
        switch self {
        case .noAuthKey(let dc):
            "the session has no auth key for its home DC \(dc), so there is nothing to export: connect (and log in) once, then export."
        case .fileExists(let path):
            "\(path) already exists and exports never replace a file: choose another path, or pass overwrite: true to replace it."
        case .noAddress(let dc, let format):
            "a \(format) stores the address of DC \(dc) and none is known: set the session's address (the DC table of the client has it), then export."
        case .addressNotIPLiteral(let host):
            "a Telethon string session stores the DC address as IPv4 or IPv6 bytes, and \"\(host)\" is a host name: set the session's address to the DC's IP address, then export."
        case .missingField(let format, let field, let advice):
            "a \(format) needs `\(field)`, which this session does not carry: \(advice)"
        case .outOfRange(let format, let field, let value, let allowed):
            "`\(field)` = \(value) does not fit a \(format) (allowed: \(allowed)): check the value."
        case .writeFailed(let path, let reason):
            "could not write \(path): \(reason). Check that the directory exists and is writable; nothing was left at that path."
        }
    }
}
