/// Groups of methods that share a rate budget: Telegram's limits are per kind of action (sending,
/// resolving usernames, joining chats...), not per TL name.
public enum MethodCategory: String, Sendable, Hashable, CaseIterable, Codable {
    /// Messages out: send, forward, edit, reactions.
    case send
    /// Reading history and messages.
    case read
    /// contacts.resolveUsername, contacts.search: few per day on Telegram's side.
    case resolve
    /// Joining chats and channels, importing invites: the scarcest budget.
    case join
    /// auth.* (codes have their own guard on top of this).
    case auth
    /// Everything else (getState, getConfig, users.getUsers...).
    case other

    public init(method: String) {
        switch method {
        case "messages.sendMessage", "messages.sendMedia", "messages.sendMultiMedia", "messages.forwardMessages",
            "messages.editMessage", "messages.sendReaction", "messages.sendInlineBotResult", "messages.sendVote":
            self = .send
        case "messages.getHistory", "messages.getMessages", "channels.getMessages", "messages.search",
            "messages.getReplies", "messages.getDialogs", "updates.getDifference", "updates.getChannelDifference":
            self = .read
        case "contacts.resolveUsername", "contacts.search", "contacts.resolvePhone", "messages.checkChatInvite":
            self = .resolve
        case "channels.joinChannel", "messages.importChatInvite", "channels.inviteToChannel", "messages.addChatUser":
            self = .join
        default:
            self = method.hasPrefix("auth.") ? .auth : .other
        }
    }

    /// Whether the category also keeps a bucket per chat (sending into one chat is limited apart
    /// from sending at all).
    public var isPerPeer: Bool { self == .send }
}
