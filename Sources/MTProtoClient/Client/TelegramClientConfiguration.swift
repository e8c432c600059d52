import MTProtoCrypto
import MTProtoNIO

/// What a client needs to know before it connects. The application fields go into initConnection.
public struct TelegramClientConfiguration: Sendable {
    /// api_id and api_hash from my.telegram.org.
    public var apiID: Int32
    public var apiHash: String
    public var deviceModel: String
    public var systemVersion: String
    public var appVersion: String
    public var systemLangCode: String
    public var langPack: String
    public var langCode: String
    /// The API layer wrapped around the first call of every connection (invokeWithLayer).
    public var layer: Int32
    /// The DC to start from when the storage has no session yet.
    public var initialDC: Int
    /// The static DC table used until help.getConfig has been read.
    public var dcTable: DCTable
    /// Whether these are Telegram's test DCs: the key exchange then names DC `id + 10000`.
    public var isTestServer: Bool
    /// The RSA keys the key exchange trusts.
    public var serverKeys: [RSAPublicKey]
    /// The framing. Through an MTProxy with a `dd` or `ee` secret, padded intermediate is used whatever this says.
    public var transport: TransportKind
    /// Transport obfuscation (a 64-byte random header, then AES-256-CTR both ways), for networks that
    /// block plain MTProto. The full transport cannot be obfuscated: intermediate is used instead.
    /// Always on through an MTProxy.
    public var obfuscated: Bool
    /// The proxy every connection of this client goes through (SOCKS5 or MTProxy); nil connects directly.
    public var proxy: MTProtoProxy?
    /// Seconds a call waits for its answer unless its options say otherwise; nil waits forever.
    public var defaultTimeout: Double?
    /// Seconds the key exchange may take.
    public var handshakeTimeout: Double
    /// Seconds a connection may take to be up: the TCP connect and a proxy's handshake. A proxy that
    /// accepts the connection and never answers is a failed attempt after it, like a refused one.
    public var connectTimeout: Double = 10
    public var reconnect: ReconnectPolicy
    /// How many `*_MIGRATE_X` one call follows before giving up.
    public var maximumMigrations: Int
    /// Whether help.getConfig is read after the first connection, to learn the DCs' current addresses.
    public var fetchesConfigOnConnect: Bool
    /// Seconds between ping_delay_disconnect on an open connection (the server closes it if pings
    /// stop for 1.25x this long, so a dead link is noticed on both sides); nil never pings.
    public var pingInterval: Double?
    /// When a request without an answer is asked about, and when it fails as in doubt.
    public var inDoubt: InDoubtPolicy
    /// Which requests are sent again when the server starts a new session under them.
    public var resendPolicy: ResendPolicy
    /// Perfect forward secrecy: traffic on temporary keys bound to the permanent ones; nil (the
    /// default) uses the permanent keys directly.
    public var pfs: PFSConfiguration?
    /// When future salts are fetched ahead (and saved with the session); nil never asks for them.
    public var futureSalts: FutureSaltsPolicy?
    /// Asked before every connection (the first and each reconnect); false refuses it, as a
    /// failed connect (the reconnect policy's backoff applies). The session manager's runtime
    /// answers whether it still holds the account's lease: a process frozen or cut off past its
    /// lease must not reconnect with the key another process now uses (AUTH_KEY_DUPLICATED).
    /// nil: always connect.
    public var connectionPermit: (@Sendable () -> Bool)?

    public init(
        apiID: Int32,
        apiHash: String,
        serverKeys: [RSAPublicKey],
        dcTable: DCTable = .production,
        initialDC: Int = 2,
        isTestServer: Bool = false,
        deviceModel: String = "tgsm",
        systemVersion: String = "Linux",
        appVersion: String = "0.1",
        systemLangCode: String = "en",
        langPack: String = "",
        langCode: String = "en",
        layer: Int32 = 229,
        transport: TransportKind = .intermediate,
        obfuscated: Bool = false,
        proxy: MTProtoProxy? = nil,
        defaultTimeout: Double? = 60,
        handshakeTimeout: Double = 30,
        reconnect: ReconnectPolicy = ReconnectPolicy(),
        maximumMigrations: Int = 5,
        fetchesConfigOnConnect: Bool = true,
        pingInterval: Double? = 60,
        inDoubt: InDoubtPolicy = InDoubtPolicy(),
        resendPolicy: ResendPolicy = .readsOnly,
        pfs: PFSConfiguration? = nil,
        futureSalts: FutureSaltsPolicy? = FutureSaltsPolicy()
    ) {
        precondition(!serverKeys.isEmpty, "the key exchange needs at least one trusted server key")
        self.apiID = apiID
        self.apiHash = apiHash
        self.serverKeys = serverKeys
        self.dcTable = dcTable
        self.initialDC = initialDC
        self.isTestServer = isTestServer
        self.deviceModel = deviceModel
        self.systemVersion = systemVersion
        self.appVersion = appVersion
        self.systemLangCode = systemLangCode
        self.langPack = langPack
        self.langCode = langCode
        self.layer = layer
        self.transport = transport
        self.obfuscated = obfuscated
        self.proxy = proxy
        self.defaultTimeout = defaultTimeout
        self.handshakeTimeout = handshakeTimeout
        self.reconnect = reconnect
        self.maximumMigrations = maximumMigrations
        self.fetchesConfigOnConnect = fetchesConfigOnConnect
        self.pingInterval = pingInterval
        self.inDoubt = inDoubt
        self.resendPolicy = resendPolicy
        self.pfs = pfs
        self.futureSalts = futureSalts
    }
}
