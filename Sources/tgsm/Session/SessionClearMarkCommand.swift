import ArgumentParser
import Foundation
import MTProto
import SessionManager

/// `tgsm session clear-mark --account NAME`: a mark a person knows to be wrong (restored from an old
/// backup while the session works; a row an unknown version wrote). Before it, only an import over
/// the session cleared a mark, and an unreadable one stopped that too.
struct SessionClearMarkCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "clear-mark",
        abstract: "Clear an account's terminal mark (revoked, unauthorized, duplicated, or one that cannot be read) without touching its session.",
        discussion: "For a mark a person knows to be stale: the session works (an official app lists it under Settings > Devices), "
            + "or the mark came back with a restored backup. If the mark was right, the account's first call marks it again. "
            + "Not for a deactivated account: `tgsm auth --account NAME --restored` once Telegram restored it. Refused (exit 6) "
            + "while a live process holds the account's lease."
    )

    @OptionGroup var global: GlobalOptions
    @OptionGroup var output: OutputOptions

    @Option(name: .customLong("account"), help: ArgumentHelp("The account's name in the store.", valueName: "name"))
    var account: String

    struct Result: Codable {
        var account: String
        /// The state cleared, or "unreadable" for a row this version cannot read.
        var cleared: String
        var cause: String?
    }

    func run() async throws {
        let account = AccountID(self.account)
        let result = try await StoreAccess.withSessionStore(global, creating: false) { store, _ in try await clear(account, in: store) }
        let terminal = Terminal.standard
        if output.json { try terminal.json(result); return }
        terminal.line("\(terminal.paint("cleared", .green)) \(account.rawValue)'s mark (\(result.cleared)\(result.cause.map { ": \($0)" } ?? "")); "
            + "`tgsm run` uses its stored session again, and its first call marks it again if the mark was right")
    }

    private func clear(_ account: AccountID, in store: any SessionStore) async throws -> Result {
        guard (try? await store.isKnownAccount(account)) == true else {
            throw CLIFailure(.notFound, "the store has no account \(account.rawValue); nothing was changed")
        }
        let mark: AccountStatus?
        var unreadable: String?
        do {
            mark = try await store.status(of: account)
        } catch let error as SessionStoreError {
            guard case .corruptRecord(_, let what) = error else { throw CLIFailure(error) }
            (mark, unreadable) = (nil, what)
        }
        if let mark, mark.state == .deactivated {
            throw CLIFailure(.usage, "\(account.rawValue) is marked deactivated (\(mark.cause)): asking for codes for a banned number only "
                + "risks it. Once Telegram restored the account, `tgsm auth --account \(account.rawValue) --restored` clears the mark and logs it in.")
        }
        guard unreadable != nil || mark?.isTerminal == true else {
            throw CLIFailure(.notFound, "\(account.rawValue) has no mark to clear; nothing was changed")
        }
        let lease = try await OperatorLease.take(account, store: store, now: global.now(),
                                                 refusal: "nothing was changed. Stop that process first, then run this again.")
        do {
            try await store.setStatus(.active(since: global.now()), for: account)
        } catch {
            try? await store.releaseLease(lease)
            throw (error as? SessionStoreError).map(CLIFailure.init) ?? CLIFailure(.failure, "the mark could not be cleared: \(error)")
        }
        try? await store.releaseLease(lease)
        return Result(account: account.rawValue, cleared: unreadable == nil ? (mark?.state.rawValue ?? "none") : "unreadable",
                      cause: unreadable ?? mark?.cause)
    }
}
