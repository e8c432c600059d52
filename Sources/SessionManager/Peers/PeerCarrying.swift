import MTProto
import TLSchema

/// An answer that brings the users and chats it mentions (Telegram sends them along so a client
/// can show names and later address the peers with their access hashes). The peer cache reads
/// these from every successful result; a result type that conforms here is cached.
public protocol PeerCarrying {
    var carriedUsers: [Api.User] { get }
    var carriedChats: [Api.Chat] { get }
}

extension PeerCarrying {
    public var carriedUsers: [Api.User] { [] }
    public var carriedChats: [Api.Chat] { [] }
}

extension PeerRecord {
    /// The records `users` and `chats` describe, seen at `seenAt`.
    ///
    /// A `min` constructor's access hash is never taken: it is only valid in the context the
    /// constructor came in (spec: "min constructors"), so such a record carries none and the store
    /// keeps the hash it already has. Empty constructors and communities (not a peer kind of the
    /// store yet) are skipped.
    public static func records(users: [Api.User], chats: [Api.Chat], seenAt: UnixTime) -> [PeerRecord] {
        var records: [PeerRecord] = []
        records.reserveCapacity(users.count + chats.count)
        for user in users {
            guard case .user(let value) = user else { continue }
            records.append(PeerRecord(kind: .user, id: value.id, accessHash: value.min ? nil : value.accessHash,
                                      username: value.username ?? firstActive(value.usernames), seenAt: seenAt))
        }
        for chat in chats {
            switch chat {
            case .chat(let value):
                records.append(PeerRecord(kind: .chat, id: value.id, accessHash: nil, seenAt: seenAt))
            case .chatForbidden(let value):
                records.append(PeerRecord(kind: .chat, id: value.id, accessHash: nil, seenAt: seenAt))
            case .channel(let value):
                records.append(PeerRecord(kind: .channel, id: value.id, accessHash: value.min ? nil : value.accessHash,
                                          username: value.username ?? firstActive(value.usernames), seenAt: seenAt))
            case .channelForbidden(let value):
                records.append(PeerRecord(kind: .channel, id: value.id, accessHash: value.accessHash, seenAt: seenAt))
            case .chatEmpty, .community, .communityForbidden:
                continue
            }
        }
        return records
    }

    /// A peer with collectible usernames only may have no `username`; its first active one is the
    /// name people use to find it.
    private static func firstActive(_ usernames: [Api.Username]?) -> String? {
        for case .username(let name) in usernames ?? [] where name.active { return name.username }
        return nil
    }
}

// MARK: Results that carry peers
//
// One extension per boxed result type, naming the variants explicitly: a new variant in a later
// layer fails to compile here instead of being silently skipped.

extension Api.Updates: PeerCarrying {
    public var carriedUsers: [Api.User] {
        switch self {
        case .updates(let value): value.users
        case .updatesCombined(let value): value.users
        case .updatesTooLong, .updateShortMessage, .updateShortChatMessage, .updateShort, .updateShortSentMessage: []
        }
    }

    public var carriedChats: [Api.Chat] {
        switch self {
        case .updates(let value): value.chats
        case .updatesCombined(let value): value.chats
        case .updatesTooLong, .updateShortMessage, .updateShortChatMessage, .updateShort, .updateShortSentMessage: []
        }
    }
}

extension Api.messages.Messages: PeerCarrying {
    public var carriedUsers: [Api.User] {
        switch self {
        case .messages(let value): value.users
        case .messagesSlice(let value): value.users
        case .channelMessages(let value): value.users
        case .messagesNotModified: []
        }
    }

    public var carriedChats: [Api.Chat] {
        switch self {
        case .messages(let value): value.chats
        case .messagesSlice(let value): value.chats
        case .channelMessages(let value): value.chats
        case .messagesNotModified: []
        }
    }
}

extension Api.contacts.ResolvedPeer: PeerCarrying {
    public var carriedUsers: [Api.User] { switch self { case .resolvedPeer(let value): value.users } }
    public var carriedChats: [Api.Chat] { switch self { case .resolvedPeer(let value): value.chats } }
}

extension Api.contacts.Contacts: PeerCarrying {
    public var carriedUsers: [Api.User] {
        switch self {
        case .contacts(let value): value.users
        case .contactsNotModified: []
        }
    }
}

extension Api.contacts.Found: PeerCarrying {
    public var carriedUsers: [Api.User] { switch self { case .found(let value): value.users } }
    public var carriedChats: [Api.Chat] { switch self { case .found(let value): value.chats } }
}

extension Api.contacts.ImportedContacts: PeerCarrying {
    public var carriedUsers: [Api.User] { switch self { case .importedContacts(let value): value.users } }
}

extension Api.contacts.TopPeers: PeerCarrying {
    public var carriedUsers: [Api.User] {
        switch self {
        case .topPeers(let value): value.users
        case .topPeersNotModified, .topPeersDisabled: []
        }
    }

    public var carriedChats: [Api.Chat] {
        switch self {
        case .topPeers(let value): value.chats
        case .topPeersNotModified, .topPeersDisabled: []
        }
    }
}

extension Api.contacts.Blocked: PeerCarrying {
    public var carriedUsers: [Api.User] {
        switch self {
        case .blocked(let value): value.users
        case .blockedSlice(let value): value.users
        }
    }

    public var carriedChats: [Api.Chat] {
        switch self {
        case .blocked(let value): value.chats
        case .blockedSlice(let value): value.chats
        }
    }
}

extension Api.users.UserFull: PeerCarrying {
    public var carriedUsers: [Api.User] { switch self { case .userFull(let value): value.users } }
    public var carriedChats: [Api.Chat] { switch self { case .userFull(let value): value.chats } }
}

extension Api.users.Users: PeerCarrying {
    public var carriedUsers: [Api.User] {
        switch self {
        case .users(let value): value.users
        case .usersSlice(let value): value.users
        }
    }
}

/// `Vector<User>`: users.getUsers, contacts.getContacts' ids resolved, and others.
extension Array: PeerCarrying where Element == Api.User {
    public var carriedUsers: [Api.User] { self }
}

extension Api.messages.Chats: PeerCarrying {
    public var carriedChats: [Api.Chat] {
        switch self {
        case .chats(let value): value.chats
        case .chatsSlice(let value): value.chats
        }
    }
}

extension Api.messages.ChatFull: PeerCarrying {
    public var carriedUsers: [Api.User] { switch self { case .chatFull(let value): value.users } }
    public var carriedChats: [Api.Chat] { switch self { case .chatFull(let value): value.chats } }
}

extension Api.messages.Dialogs: PeerCarrying {
    public var carriedUsers: [Api.User] {
        switch self {
        case .dialogs(let value): value.users
        case .dialogsSlice(let value): value.users
        case .dialogsNotModified: []
        }
    }

    public var carriedChats: [Api.Chat] {
        switch self {
        case .dialogs(let value): value.chats
        case .dialogsSlice(let value): value.chats
        case .dialogsNotModified: []
        }
    }
}

extension Api.messages.PeerDialogs: PeerCarrying {
    public var carriedUsers: [Api.User] { switch self { case .peerDialogs(let value): value.users } }
    public var carriedChats: [Api.Chat] { switch self { case .peerDialogs(let value): value.chats } }
}

extension Api.channels.ChannelParticipants: PeerCarrying {
    public var carriedUsers: [Api.User] {
        switch self {
        case .channelParticipants(let value): value.users
        case .channelParticipantsNotModified: []
        }
    }

    public var carriedChats: [Api.Chat] {
        switch self {
        case .channelParticipants(let value): value.chats
        case .channelParticipantsNotModified: []
        }
    }
}

extension Api.channels.ChannelParticipant: PeerCarrying {
    public var carriedUsers: [Api.User] { switch self { case .channelParticipant(let value): value.users } }
    public var carriedChats: [Api.Chat] { switch self { case .channelParticipant(let value): value.chats } }
}

extension Api.updates.Difference: PeerCarrying {
    public var carriedUsers: [Api.User] {
        switch self {
        case .difference(let value): value.users
        case .differenceSlice(let value): value.users
        case .differenceEmpty, .differenceTooLong: []
        }
    }

    public var carriedChats: [Api.Chat] {
        switch self {
        case .difference(let value): value.chats
        case .differenceSlice(let value): value.chats
        case .differenceEmpty, .differenceTooLong: []
        }
    }
}

extension Api.updates.ChannelDifference: PeerCarrying {
    public var carriedUsers: [Api.User] {
        switch self {
        case .channelDifference(let value): value.users
        case .channelDifferenceTooLong(let value): value.users
        case .channelDifferenceEmpty: []
        }
    }

    public var carriedChats: [Api.Chat] {
        switch self {
        case .channelDifference(let value): value.chats
        case .channelDifferenceTooLong(let value): value.chats
        case .channelDifferenceEmpty: []
        }
    }
}

/// A completed login brings the account's own user (its id and username; its own access hash).
extension Api.auth.Authorization: PeerCarrying {
    public var carriedUsers: [Api.User] {
        switch self {
        case .authorization(let value): [value.user]
        case .authorizationSignUpRequired: []
        }
    }
}
