import GRDB

/// What kind of failure the database engine reported. It chooses the advice a store error gives:
/// matching the engine's message text instead would break with its next wording.
public enum DatabaseFailure: String, Sendable, Equatable {
    /// Another connection held the file's lock past the busy timeout (SQLITE_BUSY). (SQLITE_LOCKED,
    /// a conflict within one process, is `other`.)
    case busy
    /// A disk is full (SQLITE_FULL): the store's, or the temporary directory's for a copy.
    case full
    /// The file or its directory cannot be written (SQLITE_READONLY, SQLITE_PERM).
    case notWritable
    /// SQLite could not open the file (SQLITE_CANTOPEN): the path, permissions, or the process's
    /// limit of open files.
    case cannotOpen
    /// The disk failed a read or a write (SQLITE_IOERR).
    case ioError
    /// The file is damaged (SQLITE_CORRUPT, SQLITE_NOTADB, SQLITE_FORMAT).
    case damaged
    /// The PostgreSQL store: its reasons say themselves what to check (the server, the URL, the schema).
    case postgres
    /// Anything else.
    case other

    /// The kind of `error`, by SQLite's primary result code when it is GRDB's `DatabaseError`.
    public init(_ error: any Error) {
        guard let error = error as? DatabaseError else {
            self = .other
            return
        }
        switch error.resultCode.primaryResultCode {
        case .SQLITE_BUSY: self = .busy
        case .SQLITE_FULL: self = .full
        case .SQLITE_READONLY, .SQLITE_PERM: self = .notWritable
        case .SQLITE_CANTOPEN: self = .cannotOpen
        case .SQLITE_IOERR: self = .ioError
        case .SQLITE_CORRUPT, .SQLITE_NOTADB, .SQLITE_FORMAT: self = .damaged
        default: self = .other
        }
    }

    /// The kind a store error says, for an error that may be one.
    public static func of(_ error: any Error) -> DatabaseFailure? {
        (error as? SessionStoreError)?.databaseFailure
    }
}
