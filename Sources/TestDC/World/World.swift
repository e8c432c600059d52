import Foundation

/// The people, groups and messages a test DC serves. Loaded from JSON (`tgsm testdc --world FILE`)
/// or built in code (`World.default`). All ids are fixed so tests can name them.
public struct World: Codable, Sendable, Equatable {
    public var users: [User]
    public var channels: [Channel]
    /// Pairs of user ids: `contacts[i] = [owner, contact]`.
    public var contacts: [[Int64]]

    public init(users: [User], channels: [Channel] = [], contacts: [[Int64]] = []) {
        self.users = users
        self.channels = channels
        self.contacts = contacts
    }

    enum CodingKeys: String, CodingKey { case users, channels, contacts }

    /// Only `users` is required; a world without channels or contacts is fine.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        users = try container.decode([User].self, forKey: .users)
        channels = try container.decodeIfPresent([Channel].self, forKey: .channels) ?? []
        contacts = try container.decodeIfPresent([[Int64]].self, forKey: .contacts) ?? []
    }

    public struct User: Codable, Sendable, Equatable {
        public var id: Int64
        public var accessHash: Int64
        /// Digits only, as Telegram stores it (no "+").
        public var phone: String?
        public var firstName: String
        public var lastName: String?
        public var username: String?
        /// Plain 2FA password: the DC derives the SRP verifier from it at start.
        public var password: String?
        /// The DC that owns the account: a login on another DC answers PHONE_MIGRATE_<homeDC>.
        public var homeDC: Int32?
        public var deactivated: Bool
        public var bot: Bool
        /// The token for auth.importBotAuthorization (bots only).
        public var botToken: String?
        /// For an account without a 2FA password: its logins answer setup_password_required with
        /// otherwise_relogin_days = this (Telegram's push for a password).
        public var reloginDaysWithoutPassword: Int32?
        /// How auth.sendCode says the code travels; SMS when nil.
        public var codeDelivery: CodeDelivery?
        /// A frozen account (api/auth, "Frozen accounts"): its writes are refused with
        /// FROZEN_METHOD_INVALID, and help.getAppConfig carries the freeze's dates and appeal URL.
        public var frozen: Freeze?

        public struct Freeze: Codable, Sendable, Equatable {
            /// freeze_since_date (unix seconds).
            public var since: Int32
            /// freeze_until_date: when the account is deleted unless an appeal is accepted.
            public var until: Int32
            public var appealURL: String

            public init(since: Int32, until: Int32, appealURL: String) {
                self.since = since
                self.until = until
                self.appealURL = appealURL
            }
        }

        /// api/auth's code types the DC can answer with. A world file naming another fails to load
        /// (a misspelt value would otherwise test SMS while claiming email).
        public enum CodeDelivery: String, Codable, Sendable {
            case sms
            /// To the login email: auth.signIn takes it as email_verification.
            case email
            /// On fragment.com, for a number bought there.
            case fragment
            /// No code: a login email must be set up first.
            case setUpEmail
        }

        public init(
            id: Int64, accessHash: Int64, phone: String? = nil, firstName: String, lastName: String? = nil,
            username: String? = nil, password: String? = nil, homeDC: Int32? = nil, deactivated: Bool = false,
            bot: Bool = false, botToken: String? = nil, reloginDaysWithoutPassword: Int32? = nil, codeDelivery: CodeDelivery? = nil,
            frozen: Freeze? = nil
        ) {
            self.id = id
            self.accessHash = accessHash
            self.phone = phone
            self.firstName = firstName
            self.lastName = lastName
            self.username = username
            self.password = password
            self.homeDC = homeDC
            self.deactivated = deactivated
            self.bot = bot
            self.botToken = botToken
            self.reloginDaysWithoutPassword = reloginDaysWithoutPassword
            self.codeDelivery = codeDelivery
            self.frozen = frozen
        }

        enum CodingKeys: String, CodingKey {
            case id, accessHash, phone, firstName, lastName, username, password, homeDC, deactivated, bot, botToken, reloginDaysWithoutPassword, codeDelivery
            case frozen
        }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            id = try c.decode(Int64.self, forKey: .id)
            accessHash = try c.decodeIfPresent(Int64.self, forKey: .accessHash) ?? id &* 7919
            phone = try c.decodeIfPresent(String.self, forKey: .phone).map(World.normalizePhone)
            firstName = try c.decode(String.self, forKey: .firstName)
            lastName = try c.decodeIfPresent(String.self, forKey: .lastName)
            username = try c.decodeIfPresent(String.self, forKey: .username)
            password = try c.decodeIfPresent(String.self, forKey: .password)
            homeDC = try c.decodeIfPresent(Int32.self, forKey: .homeDC)
            deactivated = try c.decodeIfPresent(Bool.self, forKey: .deactivated) ?? false
            bot = try c.decodeIfPresent(Bool.self, forKey: .bot) ?? false
            botToken = try c.decodeIfPresent(String.self, forKey: .botToken)
            reloginDaysWithoutPassword = try c.decodeIfPresent(Int32.self, forKey: .reloginDaysWithoutPassword)
            codeDelivery = try c.decodeIfPresent(CodeDelivery.self, forKey: .codeDelivery)
            frozen = try c.decodeIfPresent(Freeze.self, forKey: .frozen)
        }
    }

    public struct Channel: Codable, Sendable, Equatable {
        public var id: Int64
        public var accessHash: Int64
        public var title: String
        public var username: String?
        /// A broadcast channel (true) or a supergroup (false).
        public var broadcast: Bool
        public var creatorID: Int64?
        /// Messages oldest first; ids ascend.
        public var messages: [Message]

        public init(id: Int64, accessHash: Int64, title: String, username: String? = nil, broadcast: Bool = true, creatorID: Int64? = nil, messages: [Message] = []) {
            self.id = id
            self.accessHash = accessHash
            self.title = title
            self.username = username
            self.broadcast = broadcast
            self.creatorID = creatorID
            self.messages = messages
        }

        enum CodingKeys: String, CodingKey { case id, accessHash, title, username, broadcast, creatorID, messages }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            id = try c.decode(Int64.self, forKey: .id)
            accessHash = try c.decodeIfPresent(Int64.self, forKey: .accessHash) ?? id &* 104_729
            title = try c.decode(String.self, forKey: .title)
            username = try c.decodeIfPresent(String.self, forKey: .username)
            broadcast = try c.decodeIfPresent(Bool.self, forKey: .broadcast) ?? true
            creatorID = try c.decodeIfPresent(Int64.self, forKey: .creatorID)
            messages = try c.decodeIfPresent([Message].self, forKey: .messages) ?? []
        }
    }

    public struct Message: Codable, Sendable, Equatable {
        public var id: Int32
        /// The author (a user id); nil for a channel post.
        public var fromID: Int64?
        /// Unix time.
        public var date: Int32
        public var text: String
        /// Unix time of the last edit, if any.
        public var editDate: Int32?

        public init(id: Int32, fromID: Int64? = nil, date: Int32, text: String) {
            self.id = id
            self.fromID = fromID
            self.date = date
            self.text = text
        }
    }

    /// Digits only: "+1 555-0100" and "15550100" name the same account.
    public static func normalizePhone(_ phone: String) -> String {
        String(phone.filter(\.isNumber))
    }

    /// Reads a world file; errors name the file and what was wrong.
    public static func load(contentsOf url: URL) throws -> World {
        let data: Data
        do {
            data = try Data(contentsOf: url)
        } catch {
            throw WorldError.unreadable(path: url.path, reason: "\(error.localizedDescription)")
        }
        return try decode(data, source: url.path)
    }

    public static func decode(_ data: Data, source: String = "world JSON") throws -> World {
        let world: World
        do {
            world = try JSONDecoder().decode(World.self, from: data)
        } catch {
            throw WorldError.invalid(source: source, reason: "\(error)")
        }
        try world.validate(source: source)
        return world
    }

    /// Refuses duplicate ids, phones and usernames: a lookup must name one thing.
    public func validate(source: String = "world") throws {
        var ids = Set<Int64>()
        var phones = Set<String>()
        var usernames = Set<String>()
        for user in users {
            guard ids.insert(user.id).inserted else { throw WorldError.invalid(source: source, reason: "user id \(user.id) appears twice") }
            if let phone = user.phone, !phones.insert(phone).inserted {
                throw WorldError.invalid(source: source, reason: "two users share one phone number (user \(user.id))")
            }
            if let name = user.username?.lowercased(), !usernames.insert(name).inserted {
                throw WorldError.invalid(source: source, reason: "username @\(name) appears twice")
            }
        }
        for channel in channels {
            guard ids.insert(channel.id).inserted else { throw WorldError.invalid(source: source, reason: "id \(channel.id) appears twice") }
            if let name = channel.username?.lowercased(), !usernames.insert(name).inserted {
                throw WorldError.invalid(source: source, reason: "username @\(name) appears twice")
            }
            var last: Int32 = 0
            for message in channel.messages {
                guard message.id > last else {
                    throw WorldError.invalid(source: source, reason: "channel \(channel.id): message ids must ascend (\(message.id) after \(last))")
                }
                last = message.id
            }
        }
    }

    /// A small world for tests and the sandbox: three people (one with 2FA, one homed on DC 2),
    /// a bot, a broadcast channel with 30 posts and a supergroup.
    public static let `default`: World = {
        let alice = User(id: 1001, accessHash: 0x0A11CE, phone: "15550001", firstName: "Alice", lastName: "Tester", username: "alice")
        let bob = User(id: 1002, accessHash: 0x0B0B, phone: "15550002", firstName: "Bob", username: "bob", password: "hunter2")
        let carol = User(id: 1003, accessHash: 0x0CA201, phone: "15550003", firstName: "Carol", username: "carol", homeDC: 2)
        let dave = User(id: 1004, accessHash: 0x0DA4E, phone: "15550004", firstName: "Dave", deactivated: true)
        let bot = User(id: 1005, accessHash: 0x0B07, firstName: "Test Bot", username: "test_bot", bot: true, botToken: "1005:test-bot-token")
        let base: Int32 = 1_700_000_000
        let news = Channel(
            id: 2001, accessHash: 0x2001, title: "Test News", username: "testnews", broadcast: true, creatorID: 1001,
            messages: (1...30).map { Message(id: Int32($0), date: base + Int32($0) * 60, text: "News post #\($0)") }
        )
        let group = Channel(
            id: 2002, accessHash: 0x2002, title: "Test Group", username: "testgroup", broadcast: false, creatorID: 1002,
            messages: [
                Message(id: 1, fromID: 1001, date: base + 10, text: "hello group"),
                Message(id: 2, fromID: 1002, date: base + 20, text: "hi alice"),
            ]
        )
        return World(users: [alice, bob, carol, dave, bot], channels: [news, group], contacts: [[1001, 1002], [1002, 1001], [1001, 1003]])
    }()
}

public enum WorldError: Error, Equatable, CustomStringConvertible {
    case unreadable(path: String, reason: String)
    case invalid(source: String, reason: String)

    public var description: String {
        switch self {
        case .unreadable(let path, let reason):
            "cannot read the world file \(path): \(reason); check the path given to --world"
        case .invalid(let source, let reason):
            "the world in \(source) is invalid: \(reason); fix it as docs/TESTDC.md describes"
        }
    }
}
