import MTProtoClient
import MTProtoCrypto

/// The session formats of the Python libraries that tgsm reads and writes.
public enum PortableSessionFormat: String, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    /// Telethon's SQLite `.session` file (schema version 8 in Telethon 1.45).
    case telethonFile
    /// Telethon's `StringSession`: "1" + URL-safe base64 of dc, IP, port, key.
    case telethonString
    /// Pyrogram's SQLite `.session` file: schema version 7 (kurigram) or 3 (Pyrogram 2.0.106).
    case pyrogramFile
    /// Pyrogram's session string: URL-safe base64 without padding of dc, api_id, test mode, key,
    /// user id, bot flag.
    case pyrogramString

    public var description: String {
        switch self {
        case .telethonFile: "Telethon session file"
        case .telethonString: "Telethon string session"
        case .pyrogramFile: "Pyrogram session file"
        case .pyrogramString: "Pyrogram string session"
        }
    }
}

/// One logged-in session as the Python libraries keep it: a single DC with its auth key, plus
/// what each format carries beyond the client's `SessionState` (the DC's address, Pyrogram's
/// api_id, test mode and date, Telethon's takeout id and temporary key). A field a format does not
/// carry is nil, so a conversion never invents a value: the caller supplies it.
///
/// Its description never shows key bytes.
public struct PortableSession: Sendable, Equatable, CustomStringConvertible {
    /// The home DC: the one the key belongs to and the account lives on.
    public var dc: Int
    /// The permanent auth key of `dc`. Secret.
    public var authKey: AuthKey
    /// Where `dc` is reached. Telethon stores the address it last used; Pyrogram files store it since
    /// schema 7; Pyrogram strings derive it from the DC and test mode (nil when Pyrogram has none).
    public var address: DCAddress?
    /// The logged-in user's id. Telethon strings do not carry it; Telethon files keep it in the
    /// entity with id 0 once the client has seen itself.
    public var userID: Int64?
    /// Whether the account is a bot. Telethon stores no bot flag: nil there.
    public var isBot: Bool?
    /// Pyrogram: the api_id the key was created with.
    public var apiID: Int64?
    /// Pyrogram: whether the key belongs to Telegram's test servers.
    public var isTestMode: Bool?
    /// Pyrogram: Unix seconds of the library's last save.
    public var date: Int64?
    /// Telethon: the id of an open takeout session.
    public var takeoutID: Int64?
    /// Telethon: the temporary (PFS) key, when the client was told to store it. Secret.
    public var temporaryAuthKey: AuthKey?
    /// The peers the library cached (Telethon's `entities`, Pyrogram's `peers`): ids, access
    /// hashes and usernames, each stamped when the library last saw it. Importing them spares the
    /// account a contacts.resolveUsername (a small daily budget) per peer it already knew.
    public var peers: [PeerRecord]
    /// Rows of the library's peer cache that could not be read (damaged or hand-edited): left out.
    public var unreadablePeerRows: Int
    /// Why the library's peer cache could not be read at all, when it could not (the session was).
    public var peerCacheError: String?

    public init(
        dc: Int, authKey: AuthKey, address: DCAddress? = nil, userID: Int64? = nil, isBot: Bool? = nil,
        apiID: Int64? = nil, isTestMode: Bool? = nil, date: Int64? = nil, takeoutID: Int64? = nil,
        temporaryAuthKey: AuthKey? = nil, peers: [PeerRecord] = [], unreadablePeerRows: Int = 0, peerCacheError: String? = nil
    ) {
        self.dc = dc
        self.authKey = authKey
        self.address = address
        self.userID = userID
        self.isBot = isBot
        self.apiID = apiID
        self.isTestMode = isTestMode
        self.date = date
        self.takeoutID = takeoutID
        self.temporaryAuthKey = temporaryAuthKey
        self.peers = peers
        self.unreadablePeerRows = unreadablePeerRows
        self.peerCacheError = peerCacheError
    }

    /// The session of the client's home DC in `state`, with the address of that DC from `dcTable`.
    /// Only the home DC's key goes along: every format here holds one key. The other fields are nil
    /// until the caller sets them (a Pyrogram export needs `apiID`).
    public init(state: SessionState, dcTable: DCTable = .production) throws(SessionExportError) {
        guard let key = state.dcs[state.homeDC]?.authKey else { throw .noAuthKey(dc: state.homeDC) }
        self.init(
            dc: state.homeDC, authKey: key, address: dcTable.address(for: state.homeDC),
            userID: state.userID, isBot: state.isBot
        )
    }

    /// The client's state for this session: the home DC with its key. An imported session is taken
    /// as logged in (that is why it was exported); the session manager's start-up validation checks
    /// it without ever asking for a login code.
    public var sessionState: SessionState {
        SessionState(
            homeDC: dc,
            dcs: [dc: DCSessionState(authKey: authKey, isAuthorized: true)],
            userID: userID,
            isBot: isBot ?? false
        )
    }

    public var description: String {
        var parts = ["dc: \(dc)", "key: \(authKey)"]
        if let address { parts.append("address: \(address)") }
        if let userID { parts.append("user: \(userID)") }
        if let isBot { parts.append("bot: \(isBot)") }
        if let apiID { parts.append("api_id: \(apiID)") }
        if let isTestMode { parts.append("test: \(isTestMode)") }
        if let date { parts.append("date: \(date)") }
        if let takeoutID { parts.append("takeout: \(takeoutID)") }
        if let temporaryAuthKey { parts.append("temporary key: \(temporaryAuthKey)") }
        if !peers.isEmpty { parts.append("peers: \(peers.count)") }
        if unreadablePeerRows > 0 { parts.append("unreadable peer rows: \(unreadablePeerRows)") }
        if peerCacheError != nil { parts.append("peer cache unreadable") }
        return "PortableSession(\(parts.joined(separator: ", ")))"
    }
}
