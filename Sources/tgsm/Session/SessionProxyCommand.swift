import ArgumentParser
import Foundation
import MTProto
import MTProtoNIO
import SessionManager

/// `tgsm session proxy --account NAME [--set LINK | --clear]`: the proxy an account connects
/// through. Where Telegram is blocked, or where accounts must not share an address, every
/// connection of the account (its login included) has to go through its own proxy; the store keeps
/// the link per account and every command that connects uses it.
struct SessionProxyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "proxy",
        abstract: "Show, set or clear the proxy an account connects through (SOCKS5 or MTProxy).",
        discussion: "Every connection of the account goes through it: `tgsm auth`, `tgsm run`, `tgsm recover`. The link is "
            + "socks5://[USER:PASSWORD@]HOST:PORT, or an MTProxy link as Telegram shares them (tg://proxy?server=HOST&port=PORT&secret=SECRET "
            + "or https://t.me/proxy?…; secrets plain, dd or ee). `--set -` reads the link from standard input, so its password or "
            + "secret is not visible in `ps`. The password and secret are never printed. Setting a proxy for a name the store does "
            + "not know yet keeps it for that account's first `tgsm auth`. A running `tgsm run` takes the change up at its next "
            + "lease renewal (every 10 s with the default --lease-ttl), without a restart: its open connections move to the new "
            + "way, and its log and /health say whether the account answers through it."
    )

    @OptionGroup var global: GlobalOptions
    @OptionGroup var output: OutputOptions

    @Option(name: .customLong("account"), help: ArgumentHelp("The account's name in the store.", valueName: "name"))
    var account: String

    @Option(name: .customLong("set"), help: ArgumentHelp("The proxy link to use from now on, or - to read it from standard input.", valueName: "link"))
    var link: String?

    @Flag(name: .customLong("clear"), help: "Connect directly again (forget the account's proxy).")
    var clear = false

    func validate() throws {
        guard !(link != nil && clear) else { throw ValidationError("choose one of --set and --clear") }
        if let link, link != "-" { _ = try Self.parse(link, option: "--set") }
    }

    enum Change: String, Codable {
        case set, cleared, unchanged
    }

    /// What `--json` prints: the proxy as it is safe to show (no password, no secret).
    struct Result: Codable {
        var account: String
        /// socks5 or mtproxy; nil when the account connects directly.
        var kind: String?
        var host: String?
        var port: Int?
        /// The proxy as `tgsm` names it in its logs: "SOCKS5 proxy HOST:PORT as USER", "MTProxy HOST:PORT (ee: fake TLS as DOMAIN)".
        var proxy: String?
        var change: Change
        /// A live process that runs the account: it takes the change up at its next lease renewal.
        var runningHolder: String?
    }

    func run() async throws {
        let account = AccountID(self.account)
        var setting: ProxySetting?
        if let link {
            setting = try Self.parse(link == "-" ? try Self.readLink() : link, option: "--set")
        }
        // A proxy set before the first login starts the store, as `tgsm auth` would.
        let (store, location, close) = try await StoreAccess.sessionStore(global, creating: setting != nil)
        let result: Result
        do {
            result = try await apply(setting, account: account, store: store)
            await close()
        } catch {
            await close()
            throw error
        }
        let terminal = Terminal.standard
        if output.json { try terminal.json(result); return }
        let route = result.proxy.map { "through \($0)" } ?? "directly (no proxy)"
        switch result.change {
        case .set: terminal.line("\(terminal.paint("set", .green)): \(account.rawValue) connects \(route) (kept in \(location))")
        case .cleared: terminal.line("\(terminal.paint("cleared", .green)): \(account.rawValue) connects \(route)")
        case .unchanged: terminal.line("\(account.rawValue) connects \(route)")
        }
        if let holder = result.runningHolder, result.change != .unchanged {
            terminal.line("\(holder) runs \(account.rawValue): it connects the new way from its next lease renewal (within 10 s with the "
                + "default --lease-ttl); its log and /health say whether the account answers through it.")
        }
    }

    private func apply(_ setting: ProxySetting?, account: AccountID, store: any SessionStore) async throws -> Result {
        let known: [AccountID]
        do { known = try await store.accounts() } catch { throw Self.failure(error, "the store's accounts could not be read") }
        let isKnown = known.contains(account)
        let change: Change
        if link == nil && !clear {
            guard isKnown else {
                throw CLIFailure(.notFound, "the store has no account \(account.rawValue)"
                    + (known.isEmpty ? "" : " (known: \(known.map(\.rawValue).joined(separator: ", ")))")
                    + ". To put a new one in through a proxy: `tgsm session proxy --account \(account.rawValue) --set LINK`, then `tgsm auth`.")
            }
            change = .unchanged
        } else {
            if !isKnown {
                guard !clear else { throw CLIFailure(.notFound, "the store has no account \(account.rawValue): there is no proxy to clear") }
                do { try AccountName.check(account.rawValue) } catch { throw CLIFailure(.usage, error.message) }
            }
            let before: ProxySetting?
            do { before = isKnown ? try await store.proxy(account: account) : nil } catch { throw Self.failure(error, "the proxy of \(account.rawValue) could not be read") }
            do { try await store.setProxy(setting, account: account) } catch { throw Self.failure(error, "the proxy of \(account.rawValue) could not be stored") }
            // The same link again is no change (a password changed is one, though the shown name stays).
            change = before == setting ? .unchanged : clear ? .cleared : .set
        }
        let stored: ProxySetting?
        do { stored = try await store.proxy(account: account) } catch { throw Self.failure(error, "the proxy of \(account.rawValue) could not be read") }
        var runningHolder: String?
        if let lease = try? await store.currentLease(account: account), LeaseView(lease, now: global.now()).isLive {
            runningHolder = "pid \(lease.holder.pid) on \(lease.holder.host)"
        }
        return Result(account: account.rawValue, kind: stored?.kind.rawValue, host: stored?.host, port: stored?.port,
                      proxy: stored.map(Self.name), change: change, runningHolder: runningHolder)
    }

    /// A link checked as far as the client will read it (a SOCKS5 user's length, an MTProxy secret),
    /// so a link that could never connect is refused here, not at the next start of `tgsm run`.
    static func parse(_ link: String, option: String) throws(ValidationError) -> ProxySetting {
        do {
            let setting = try ProxySetting(link.trimmingCharacters(in: .whitespacesAndNewlines))
            _ = try setting.clientProxy()
            return setting
        } catch {
            throw ValidationError("\(option): \(error)")
        }
    }

    /// The proxy as the client names it; the stored form's own summary when the client cannot read it.
    /// The proxy as this operator's own commands show it: with a SOCKS5 user name, which the
    /// client's description (in logs, alerts and /health) leaves out; never with the password.
    static func name(_ setting: ProxySetting) -> String {
        switch try? setting.clientProxy() {
        case .socks5(let proxy)?:
            "SOCKS5 proxy \(setting.address)" + (proxy.credentials.map { " as \($0.username)" } ?? "")
        case let proxy?:
            proxy.description
        case nil:
            setting.description
        }
    }

    private static func readLink() throws(CLIFailure) -> String {
        guard let line = readLine(strippingNewline: true), !line.trimmingCharacters(in: .whitespaces).isEmpty else {
            throw CLIFailure(.usage, "--set - reads the proxy link from standard input, and none came; pipe it in, e.g. `tgsm session proxy --account A --set - < proxy.txt`")
        }
        return line
    }

    private static func failure(_ error: any Error, _ what: String) -> CLIFailure {
        (error as? SessionStoreError).map(CLIFailure.init) ?? CLIFailure(.failure, "\(what): \(error)")
    }
}
