import ArgumentParser
import Foundation
import Logging
import MTProto
import MTProtoClient
import SessionManager
import Synchronization
import TLSchema

/// `tgsm auth`: an interactive login, guarded so that it can never make Telegram send codes in a loop.
struct AuthCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "auth",
        abstract: "Log an account in interactively (login code, 2FA password, sign-up, QR, or a bot token).",
        discussion: """
            Takes the account's lease, then checks the stored session first: while it is valid, no code is asked for (exit 10). \
            A code is requested at most once per 10 minutes per phone number, restarts included: before that deadline the \
            command refuses and says until when (exit 7). The 2FA password is read without echo and never stored. \
            The device identity is chosen at the first login and kept. Exit codes: 0 logged in, 1 failure, 2 usage, 6 lease held, \
            7 rate limited, 8 account deactivated or banned, 10 a valid session exists (docs/CLI.md).
            """
    )

    @OptionGroup var global: GlobalOptions
    @OptionGroup var connection: ConnectionOptions

    @Option(name: .customLong("account"), help: ArgumentHelp("The account's name in the store.", valueName: "name"))
    var account: String

    @Option(name: .customLong("phone"), help: ArgumentHelp("The phone number (else asked for; an argument is visible in `ps`).", valueName: "number"))
    var phone: String?

    @Flag(name: .customLong("bot"), help: "Log in a bot with its token from @BotFather (asked for without echo).")
    var bot = false

    @Flag(name: .customLong("qr"), help: "Log in by QR code: confirm the printed tg://login link from a logged-in app.")
    var qr = false

    @Option(name: .customLong("login-email"), help: ArgumentHelp(
        "The address to set up as the login email when Telegram asks for one before it sends a code (else asked for then; an argument is visible in `ps`).",
        valueName: "address"))
    var loginEmail: String?

    @Flag(name: .customLong("reset-login-email"), help: ArgumentHelp(
        "When the code goes to a login email nobody can read: ask Telegram to reset that address (auth.resetLoginEmail), so the code comes another way."))
    var resetLoginEmail = false

    @Option(name: .customLong("proxy"), help: ArgumentHelp(
        "Connect through this proxy, now and from then on (kept for the account, as `tgsm session proxy --set` does): "
            + "socks5://[USER:PASSWORD@]HOST:PORT or an MTProxy link. An argument is visible in `ps`: `tgsm session proxy --set -` reads it from standard input.",
        valueName: "link"))
    var proxy: String?

    @Flag(name: .customLong("restored"), help: ArgumentHelp(
        "The account is marked deactivated (USER_DEACTIVATED) and Telegram has restored it since: clear the mark and log in. "
            + "Without it, a deactivated account is refused, as asking for codes for a banned number only risks it."))
    var restored = false

    @Option(name: .customLong("first-name"), help: "First name when the number has no account yet (else asked for).")
    var firstName: String?

    @Option(name: .customLong("last-name"), help: "Last name for a sign-up.")
    var lastName = ""

    func validate() throws {
        try AccountName.check(account)
        guard !(bot && qr) else { throw ValidationError("choose one of --bot and --qr") }
        if phone != nil, bot || qr { throw ValidationError("--phone is for a code login, not with --bot or --qr") }
        if loginEmail != nil || resetLoginEmail, bot || qr { throw ValidationError("--login-email and --reset-login-email are for a code login, not with --bot or --qr") }
        if let proxy { _ = try SessionProxyCommand.parse(proxy, option: "--proxy") }
    }

    func run() async throws {
        Runtimes.bootstrapLogging(level: connection.level)
        let logger = Runtimes.logger("tgsm.auth", level: connection.level)
        let resolved = try connection.resolve(global)
        try await StoreAccess.withSessionStore(global, creating: true) { store, location in
            try await logIn(store: store, location: location, resolved: resolved, logger: logger)
        }
    }

    private func logIn(store: any SessionStore, location: String, resolved: ConnectionOptions.Resolved, logger: Logger) async throws {
        let clock = global.movingClock()
        let accountID = AccountID(account)
        // A name new to the store is taken back when the login ends without asking Telegram for a
        // code (refused by the phone's deadline, input ended, no network): a mistyped or refused
        // name must not stay as an account that needs a login (503 on /health, exit 8 in check).
        let isNew = (try? await store.isKnownAccount(accountID)) == false
        let restoredFrom = try await clearADeactivatedMarkIfRestored(store: store, account: accountID, now: clock.now())
        // Not under a live holder: the start below refuses then (exit 6), and the account's proxy
        // must not change by a login that did not happen.
        let heldElsewhere = (try? await store.currentLease(account: accountID)).flatMap { $0 }.map { LeaseView($0, now: clock.now()).isLive } ?? false
        // The proxy it had, when --proxy replaced it: put back when the servers could not be reached
        // through the new one (a failed try must not leave a working account on a proxy that is not).
        var replaced: ProxySetting??
        if let proxy, !heldElsewhere {
            do {
                let before = try await store.proxy(account: accountID)
                let setting = try SessionProxyCommand.parse(proxy, option: "--proxy")
                try await store.setProxy(setting, account: accountID)
                if before != setting { replaced = .some(before) }
            } catch let error as SessionStoreError {
                throw CLIFailure(error)
            }
        }
        let route = (try? await store.proxy(account: accountID)).flatMap { $0.map(SessionProxyCommand.name) }
        var reached = false
        var codeRequested = false
        do {
            try await checkThenLogIn(accountID, store: store, location: location, resolved: resolved, route: route, clock: clock, logger: logger,
                                     reached: &reached, codeRequested: &codeRequested)
            if replaced != nil, let route { Terminal.standard.errorLine("\(account): connects through its \(route) from now on") }
        } catch {
            // --restored is a person's word, not Telegram's: a login that did not happen (a number
            // still banned, no network, the input ended) leaves the account marked as it was.
            if let restoredFrom, (try? await store.loadSession(account: accountID))??.isAuthorized != true,
               (try? await store.setStatus(restoredFrom, for: accountID)) != nil {
                Terminal.standard.errorLine("\(account): marked deactivated again, as no login happened.")
            }
            if isNew, !codeRequested, await Self.takeBackTheNewAccount(accountID, store: store) {
                Terminal.standard.errorLine("\(account): not kept in the store: no login code was requested for it (nothing to finish).")
                throw error
            }
            if case .some(let before) = replaced {
                if !reached, (try? await store.setProxy(before, account: accountID)) != nil {
                    Terminal.standard.errorLine("\(account): its proxy was left as it was (\(before.map(SessionProxyCommand.name) ?? "none")): the servers "
                        + "could not be reached through the new one. `tgsm session proxy --account \(account) --set -` keeps a proxy without a login.")
                } else if reached, let route {
                    Terminal.standard.errorLine("\(account): connects through its \(route) from now on (the servers answered through it)")
                }
            }
            throw error
        }
    }

    /// `reached`: whether the servers answered (through the account's proxy, when it has one).
    /// Removes an account this command added and did not log in. False when it holds a login
    /// (a bot token or a QR code needs no code request) or could not be removed.
    private static func takeBackTheNewAccount(_ account: AccountID, store: any SessionStore) async -> Bool {
        let session: SessionState?
        do { session = try await store.loadSession(account: account) } catch { return false }
        guard session?.isAuthorized != true else { return false }
        return (try? await store.deleteAccount(account)) != nil
    }

    /// `reached`: whether the servers answered (through the account's proxy, when it has one).
    /// `codeRequested`: whether a login code request went to Telegram (a code may be on its way).
    private func checkThenLogIn(_ accountID: AccountID, store: any SessionStore, location: String, resolved: ConnectionOptions.Resolved, route: String?,
                       clock: some TelegramClock, logger: Logger, reached: inout Bool, codeRequested: inout Bool) async throws {
        func started() async throws -> (AccountRuntime, SessionVerdict?) {
            let runtime = AccountRuntime(account: accountID, store: store, client: resolved.clientConfiguration,
                                         configuration: AccountRuntimeConfiguration(stack: SessionStack.Configuration(rateGate: resolved.rateGate),
                                                                                    keepAlive: nil, remembersPeers: true, stopsOnTerminal: false),
                                         environment: AccountRuntimeEnvironment(clock: clock, logger: logger))
            do {
                return (runtime, try await runtime.start(validate: true))
            } catch {
                throw Runtimes.failure(error, account: accountID)
            }
        }
        // No session to check (a first login) says nothing yet; the login's first answer will.
        func noteAnswered(_ verdict: SessionVerdict?) {
            if let verdict { if case .networkDown = verdict {} else { reached = true } }
        }
        // Read before the start: a verdict that comes from it is the store's word, not Telegram's.
        let markBefore: AccountStatus?
        do { markBefore = try await store.status(of: accountID) } catch { throw CLIFailure(storeError: error) }
        var (runtime, verdict) = try await started()
        noteAnswered(verdict)
        do {
            switch verdict {
            case .duplicated?, .keyUnknown?:
                // The key is dead: logging in over it would be refused again, and spend a future auth
                // token on the refusal. It is dropped (the account is marked so), and a new one made.
                // A mark whose keys were dropped already needs no second start.
                let session = try await store.loadSession(account: accountID)
                guard session?.dcs.values.contains(where: { $0.authKey != nil }) == true else { break }
                if markBefore?.state == .duplicated, let session, session.dcs[session.homeDC]?.authKey != nil,
                   let alive = try await probeAKeyMarkedDead(runtime: runtime, mark: markBefore, store: store, account: accountID, clock: clock) {
                    noteAnswered(alive)
                    verdict = alive
                    break
                }
                await runtime.stop()
                try await dropADestroyedKey(store: store, account: accountID, now: clock.now())
                (runtime, verdict) = try await started()
                noteAnswered(verdict)
            default:
                break
            }
        } catch {
            await runtime.stop()
            throw error
        }
        do {
            try await checkNoValidSession(verdict, route: route)
            let user = try await logIn(runtime: runtime, credentials: resolved, verdict: verdict, clock: clock)
            let reloginDays = await runtime.client?.reloginDaysWithoutPassword
            await runtime.stop()
            Terminal.standard.line("\(account): logged in as user \(user.id)\(user.name.map { " (\($0))" } ?? "")\(user.bot ? ", a bot" : "")")
            if let reloginDays {
                Terminal.standard.warning("Telegram asks this account to set a 2FA password. Without one, should this session be lost "
                    + "(revoked, expired, a damaged store without backup), a new login by SMS is possible only \(reloginDays) days later. "
                    + "Set one in an official app: Settings > Privacy and Security > Two-Step Verification.")
            }
            Terminal.standard.line("The session is stored in \(location)\(global.postgresURL == nil ? " (mode 0600)" : ""); `tgsm run` runs it.")
        } catch {
            // Any answer of the servers (a code sent, a wrong code refused) went through the proxy.
            if let health = await runtime.health, health.snapshot.lastSuccess != nil || health.snapshot.lastFailureCode?.hasPrefix("TGSM-NET") == false {
                reached = true
            }
            codeRequested = await runtime.stack?.sendCodeGuard.hasLetARequestThrough ?? true
            await runtime.stop()
            throw error
        }
    }

    /// A `duplicated` mark is the store's word, and may be stale: restored with a backup taken before
    /// the login that replaced the key, or written by hand. Dropping on it alone destroyed a working
    /// key (a new login then needed a code, which the send-code deadline may hold back), or a key
    /// Telegram keeps waiting for its 2FA password. So the home DC's key is asked first, with one
    /// updates.getState past the mark (`SessionStack.pastTheMark`: flood waits and the rate gate
    /// still apply). Nil when the key is dead (the caller drops it); otherwise the verdict to go on
    /// with, the mark put right: cleared for a key that works (the store told it is logged in, when a
    /// backup said otherwise), the key's own state for one alive but logged out, a deactivation
    /// recorded. A probe that proves nothing (no network, a rate limit) keeps the key too.
    private func probeAKeyMarkedDead(runtime: AccountRuntime, mark: AccountStatus?, store: any SessionStore, account: AccountID,
                                     clock: any TelegramClock) async throws -> SessionVerdict? {
        guard let stack = await runtime.stack, case .running(let lease) = await runtime.state else { return nil }
        let probe = await SessionValidator(account: account, invoker: stack.pastTheMark, clock: clock).validate()
        let marked = mark.map { "marked \($0.state.rawValue): \($0.cause)" } ?? "marked"
        switch probe {
        case .duplicated, .keyUnknown:
            return nil
        case .valid:
            if var session = try await store.loadSession(account: account), session.dcs[session.homeDC]?.isAuthorized == false {
                session.dcs[session.homeDC]?.isAuthorized = true
                try await store.saveSession(session, account: account, fence: lease.token)
            }
            try await store.setStatus(.active(since: clock.now()), for: account)
            Terminal.standard.errorLine("\(account.rawValue): its mark (\(marked)) was stale: Telegram answers on its key, which is kept; the mark is cleared.")
        case .unauthorized, .revoked:
            if let status = AccountStatus(marking: probe, at: clock.now()) { try await store.setStatus(status, for: account) }
            Terminal.standard.errorLine("\(account.rawValue): its mark (\(marked)) was stale: Telegram knows its key, which is not logged in "
                + "(\(probe.label)); the key is kept and this login goes on with it.")
        case .deactivated:
            // What the terminal guard would have written: `check` and `--restored` go by it.
            if let status = AccountStatus(marking: probe, at: clock.now()) { try await store.setStatus(status, for: account) }
        case .markUnreadable, .networkDown, .rateLimited, .failed:
            // Nothing proves the key dead: kept, and the verdict says why no login happens now.
            break
        }
        return probe
    }

    /// An account marked `duplicated` holds a key Telegram destroyed (AUTH_KEY_DUPLICATED, or the
    /// DC no longer knows it): kept, every connection this login makes would be refused with it
    /// (TGSM-AUTH-007) before a code could be asked for. The person logging in is the one the mark
    /// waited for, so the account's keys are dropped and the login creates a new one. Not while a
    /// live process holds the account: refused, naming it (the login would go on over the dead key).
    private func dropADestroyedKey(store: any SessionStore, account: AccountID, now: UnixTime) async throws {
        guard let mark = try await store.status(of: account), mark.state == .duplicated,
              var session = try await store.loadSession(account: account) else { return }
        if let lease = try await store.currentLease(account: account), LeaseView(lease, now: now).isLive {
            // Said, not skipped: the login would go on over the dead key and be refused.
            throw CLIFailure(.leaseHeld, "\(account.rawValue)'s key is dead and must be dropped, but the account is held by \(lease.holder) "
                + "(lease until \(TimeText.iso(lease.expiresAt)) UTC): stop that process, or wait for the lease to run out, then run this again.")
        }
        guard session.dcs.values.contains(where: { $0.authKey != nil }) else { return }
        for dc in session.dcs.keys {
            session.dcs[dc]?.authKey = nil
            session.dcs[dc]?.isAuthorized = false
            session.dcs[dc]?.temporaryKey = nil
        }
        try await store.saveSession(session, account: account, fence: nil)
        // -404 proves no second client: an imported session may only name the wrong DC.
        let what = mark.cause == AccountStatus.keyUnknownCause
            ? "the DC does not know its key (Telegram destroyed it, or an imported session named the wrong DC)"
            : "its key was destroyed by Telegram"
        Terminal.standard.errorLine("\(account.rawValue): \(what) (marked \(mark.state.rawValue): \(mark.cause)); "
            + "it is dropped and this login creates a new one" + (global.postgresURL == nil ? " (the store's backups keep the old key)." : "."))
        // The dead key is gone: what is left is an account that needs a login. Left `duplicated`, a
        // login stopped at its 2FA password would have its new key (the one Telegram keeps waiting
        // for the password) dropped by the next run as well, and need a new code.
        try await store.setStatus(AccountStatus(state: .unauthorized, since: mark.since,
                                                cause: "\(mark.cause); the dead key was dropped for a new login", code: mark.code), for: account)
    }

    /// `--restored`: the person says Telegram gave a deactivated account back; the mark goes, so
    /// this login may ask for a code. Refused for an account not marked so (a typo must not let a
    /// login through past another mark), and while a live process holds the account.
    /// Returns the mark it cleared.
    private func clearADeactivatedMarkIfRestored(store: any SessionStore, account: AccountID, now: UnixTime) async throws -> AccountStatus? {
        guard restored else { return nil }
        let mark = try await store.status(of: account)
        guard let mark, mark.state == .deactivated else {
            throw CLIFailure(.usage, "\(account.rawValue) is not marked deactivated (\(mark.map { "marked \($0.state.rawValue)" } ?? "no mark")): "
                + "--restored is only for an account Telegram restored after USER_DEACTIVATED. Run without it.")
        }
        if let lease = try await store.currentLease(account: account), LeaseView(lease, now: now).isLive {
            throw CLIFailure(.leaseHeld, "\(account.rawValue) is held by \(lease.holder): stop that process first, then run this again.")
        }
        try await store.setStatus(.active(since: now), for: account)
        Terminal.standard.errorLine("\(account.rawValue): its deactivated mark (\(mark.cause) since \(TimeText.iso(mark.since)) UTC) is cleared, "
            + "as Telegram restored the account; logging in (the mark comes back if no login happens).")
        return mark
    }

    private func checkNoValidSession(_ verdict: SessionVerdict?, route: String?) async throws(CLIFailure) {
        switch verdict {
        case .valid(let user)?:
            throw CLIFailure(.fileExists, "\(account) already has a valid session\(user.map { " (user \($0))" } ?? ""): no login code was requested. "
                + "Nothing to do; `tgsm run` runs it. To replace it, import another session with `tgsm session import --replace`.")
        case .networkDown(let code, let reason)?:
            throw CLIFailure(.failure, "\(account): the servers could not be reached\(route.map { " through its \($0)" } ?? "") [\(code)]"
                + "\(reason.isEmpty ? "" : " (\(reason))"), so whether the stored session is still valid is unknown; "
                + "no code was requested (asking for one while the session may be valid only risks a flood wait). "
                + "Check the network\(route == nil ? "" : ", the proxy (`tgsm session proxy`)") and --server, then retry.")
        case .rateLimited(let until)?:
            throw CLIFailure(.rateLimited, "\(account): calls are held back by a rate limit\(until.map { " until \(TimeText.iso($0))" } ?? ""); "
                + "no code was requested. Wait, then retry (`tgsm status` shows the limits).")
        case .deactivated?:
            throw CLIFailure(.accountMarked, "\(account): Telegram says the account is deactivated or banned (USER_DEACTIVATED); no code was requested. "
                + "Check it from an official app or contact Telegram support; asking for codes only risks the number.")
        case .markUnreadable(let what)?:
            // It may be a deactivation a newer tgsm recorded: asking for a code then risks the number.
            throw CLIFailure(.accountMarked, "\(account): its mark in the store cannot be read (\(what)); no code was requested. Run the tgsm "
                + "version that wrote it, or clear it with `tgsm session clear-mark --account \(account)` once you know the account may log in.")
        case .failed(let code)?:
            throw CLIFailure(.failure, "\(account): the session check failed [\(code)]; no code was requested. Run `tgsm check` and retry.")
        case .unauthorized?, .revoked?, .duplicated?, .keyUnknown?, nil:
            return
        }
    }

    struct LoggedIn {
        var id: Int64
        var name: String?
        var bot: Bool
    }

    private func logIn(runtime: AccountRuntime, credentials resolved: ConnectionOptions.Resolved, verdict: SessionVerdict?,
                       clock: any TelegramClock) async throws -> LoggedIn {
        guard let stack = await runtime.stack, let client = await runtime.client else { throw CLIFailure(.failure, "the account's runtime did not start") }
        let login = TelegramLogin(invoker: runtime.invoker, apiID: resolved.apiID, apiHash: resolved.apiHash)
        do {
            if bot {
                let token = try Prompt.secret("Bot token (from @BotFather; not shown): ")
                return Self.describe(try await login.signInBot(token: token))
            }
            if qr { return try await qrLogin(login: login, client: client, clock: clock) }
            // Asked of the client itself: through the stack, the answer would mark the account as
            // needing a login, which it is about to get.
            // Unauthorized or revoked (the mark's name for a key found logged out): the key is kept,
            // and Telegram may be waiting for its 2FA password from an earlier run.
            let keyKept = switch verdict {
            case .unauthorized?, .revoked?: true
            default: false
            }
            if keyKept, try await TelegramLogin(client: client).awaitsPassword() {
                Terminal.standard.errorLine("An earlier `tgsm auth` got past the login code (a code typed, or a future auth token) and stopped "
                    + "at the 2FA password: Telegram keeps this session waiting for it, so no code is needed.")
                return try await password(login: login, hint: await login.passwordHint(), codeMayPrecede: true)
            }
            let number = try phone ?? Prompt.line("Phone number (international format, e.g. +1 555 0001): ")
            guard number.contains(where: \.isNumber) else { throw CLIFailure(.usage, "a phone number needs digits, with the country code") }
            var sent: SentLoginCode
            var resumed: Bool
            var sentAt = clock.now()
            let pending = try await stack.sendCodeGuard.pendingCode(phoneNumber: number)
            if let pending, let earlier = pending.sentCode, earlier.awaitsLoginEmailSetUp {
                // The request asked for a login email before any code; its phone_code_hash is what the set-up names.
                Terminal.standard.errorLine("An earlier `tgsm auth` (at \(TimeText.iso(pending.sentAt))) stopped where Telegram asks this account to set up "
                    + "a login email before it sends a code: it goes on from there, with no new code request.")
                sent = earlier
                sentAt = pending.sentAt
                resumed = true
            } else if let pending, let earlier = pending.sentCode {
                // An earlier run asked for a code and ended before using it: that code is still on its
                // way or waiting in the app, and asking for another is what the deadline forbids.
                Terminal.standard.errorLine("A login code for this number was sent \(Self.whereTheCodeGoes(earlier)) at \(TimeText.iso(pending.sentAt)) "
                    + "by an earlier `tgsm auth` that did not finish; type that code (no other is requested before "
                    + "\(TimeText.iso(pending.offeredUntil))). Never send it to anyone: Telegram voids a code shared in any chat.")
                sent = earlier
                sentAt = pending.sentAt
                resumed = true
            } else {
                if let holder = try await stack.sendCodeGuard.deadlineHolder(phoneNumber: number), case let deadline = holder.deadline, deadline > clock.now() {
                    guard await stack.sendCodeGuard.keepsFutureAuthTokens(phoneNumber: number) else {
                        let by = holder.account.rawValue == account ? "" : " (for account \(holder.account) of this store: Telegram counts requests per number)"
                        throw CLIFailure(.rateLimited, "\(account): a login code was requested for this number recently\(by) (if Telegram refused that "
                            + "request with a flood wait, no code came); no other is requested before "
                            + "\(TimeText.iso(deadline)) (in \(TimeText.remaining(deadline.seconds - clock.now().seconds))), restarts included. "
                            + "Run `tgsm auth` again after that time; asking sooner is what earns long flood waits (and a ban of the number).")
                    }
                    Terminal.standard.errorLine("A login code was requested for this number recently, but a future auth token from an earlier "
                        + "login is kept: Telegram is asked once now with it (it is spent on this request), as a matching one sends no code.")
                }
                Terminal.standard.errorLine("Requesting a login code. Telegram voids a code that is forwarded or shared inside Telegram "
                    + "(sent in any chat): type it only here, never send it to anyone.")
                switch try await login.sendCode(phoneNumber: number) {
                case .loggedIn(let user):
                    Terminal.standard.errorLine("No code was needed: Telegram accepted a future auth token kept from an earlier login of this number.")
                    return Self.describe(user)
                case .passwordNeeded(let hint):
                    Terminal.standard.errorLine("No code was sent: Telegram accepted a future auth token kept from an earlier login of this "
                        + "number, and the account has a 2FA password.")
                    return try await password(login: login, hint: hint, codeMayPrecede: true)
                case .codeSent(let value): sent = value
                }
                resumed = false
            }
            if sent.awaitsLoginEmailSetUp {
                switch try await setUpLoginEmail(login: login, phoneNumber: number, sentCode: sent) {
                case .loggedIn(let user): return Self.describe(user)
                case .passwordNeeded(let hint): return try await password(login: login, hint: hint)
                case .codeSent(let value): sent = value
                }
                // The verification sent the login code: a reset is counted from now.
                sentAt = clock.now()
                resumed = false
            }
            if resetLoginEmail {
                switch try await resetTheLoginEmail(login: login, phoneNumber: number, sentCode: sent, sentAt: sentAt, clock: clock) {
                case .loggedIn(let user): return Self.describe(user)
                case .passwordNeeded(let hint): return try await password(login: login, hint: hint)
                case .codeSent(let value):
                    resumed = resumed && value.phoneCodeHash == sent.phoneCodeHash
                    sent = value
                }
            }
            if !resumed { Terminal.standard.errorLine("The code was sent \(Self.whereTheCodeGoes(sent)).") }
            if sent.isEmailCode {
                Terminal.standard.errorLine("No access to that mailbox? Change the login email in an official app where this account is logged in "
                    + "(Settings > Privacy and Security > Login Email), log in from one by QR code (`tgsm auth --account \(account) --qr`), "
                    + "or ask Telegram to reset it: `tgsm auth --account \(account) --reset-login-email`.")
            }
            var attempts = 0
            while true {
                attempts += 1
                let code = try Prompt.line("Login code: ")
                // A Result rather than typed catch clauses with patterns: that form inside this loop sent the
                // Swift 6.3 SIL passes into a loop that never finished.
                let outcome: Result<Api.User, LoginError>
                do throws(LoginError) {
                    outcome = .success(try await login.signIn(phoneNumber: number, code: code, sentCode: sent))
                } catch {
                    outcome = .failure(error)
                }
                switch outcome {
                case .success(let user):
                    return Self.describe(user)
                case .failure(.phoneCodeInvalid) where attempts < 3:
                    Terminal.standard.error("that code is wrong; type the code \(resumed ? "sent then" : "just received") (\(Self.triesLeft(3 - attempts)))")
                case .failure(.phoneCodeInvalid):
                    // Not the library's "ask the user again": this command asked three times already.
                    throw CLIFailure(.failure, "\(account): the code was wrong three times; nothing was logged in. The code sent stays "
                        + "valid for a while and no other is requested before the deadline: run `tgsm auth --account \(account)` again and "
                        + "type it as it reads in the Telegram app, SMS or call (never a code someone forwarded).")
                case .failure(.phoneCodeExpired) where resumed:
                    let waitUntil = try await stack.sendCodeGuard.deadline(phoneNumber: number).flatMap { $0 > clock.now() ? $0 : nil }
                    let said = "\(account): Telegram no longer accepts the code sent earlier (PHONE_CODE_EXPIRED). "
                    guard let waitUntil else { throw CLIFailure(.failure, said + "Run `tgsm auth` again to request a new one.") }
                    throw CLIFailure(.rateLimited, said + "A new one is requested from \(TimeText.iso(waitUntil)) on, restarts included: "
                        + "run `tgsm auth` again then.")
                case .failure(.passwordNeeded(let hint)):
                    return try await password(login: login, hint: hint)
                case .failure(.signUpRequired(let terms)):
                    if let terms { Terminal.standard.errorLine("Telegram's terms of service for a new account:\n\(terms)\n") }
                    let first = try firstName ?? Prompt.line("This number has no account yet. First name for a new account: ")
                    return Self.describe(try await login.signUp(phoneNumber: number, sentCode: sent, firstName: first, lastName: lastName))
                case .failure(let error):
                    throw error
                }
            }
        } catch {
            throw Self.failure(error, account: account)
        }
    }

    /// api/auth, "Email verification": Telegram sends this number no code before it has a login
    /// email. The address (`--login-email`, else asked for) gets a verification code; once typed,
    /// Telegram keeps the address and sends the login code there. A refused address or a wrong code
    /// is asked again, three tries each.
    private func setUpLoginEmail(login: TelegramLogin, phoneNumber: String, sentCode: SentLoginCode) async throws -> CodeRequestResult {
        Terminal.standard.errorLine("Telegram sends this number no login code until the account has a login email (it asks this of numbers "
            + "that log in often): its login codes go to that address from now on. Google and Apple sign-in are not offered here.")
        var given = loginEmail
        var attempts = 0
        var mailed: SentEmailCode?
        while mailed == nil {
            attempts += 1
            let address = try given ?? Prompt.line("Login email address: ")
            given = nil
            // Results, not typed catch clauses with patterns: that form inside a loop sends the Swift
            // 6.3 SIL passes into a loop that never finishes (see the code prompt below).
            switch await Self.outcome({ () async throws(LoginError) in try await login.sendLoginEmailCode(phoneNumber: phoneNumber, sentCode: sentCode, email: address) }) {
            case .success(let value):
                mailed = value
            case .failure(.emailInvalid) where attempts < 3:
                Terminal.standard.error("Telegram refused that address as malformed (EMAIL_INVALID); give a whole address (\(Self.triesLeft(3 - attempts)))")
            case .failure(.emailNotAllowed) where attempts < 3:
                Terminal.standard.error("Telegram does not accept that address as a login email (EMAIL_NOT_ALLOWED); give another (\(Self.triesLeft(3 - attempts)))")
            case .failure(let error):
                throw error
            }
        }
        guard let mailed else { throw CLIFailure(.failure, "\(account): no verification code was mailed") }
        Terminal.standard.errorLine("Telegram mailed a verification code to \(mailed.emailPattern).")
        attempts = 0
        while true {
            attempts += 1
            let code = try Prompt.line("Email verification code: ")
            switch await Self.outcome({ () async throws(LoginError) in try await login.verifyLoginEmail(phoneNumber: phoneNumber, sentCode: sentCode, code: code) }) {
            case .success(let answer):
                Terminal.standard.errorLine("The login email is set.")
                return answer
            case .failure(.emailCodeInvalid) where attempts < 3:
                Terminal.standard.error("that verification code is wrong; type the newest one mailed to \(mailed.emailPattern) (\(Self.triesLeft(3 - attempts)))")
            case .failure(let error):
                throw error
            }
        }
    }

    /// auth.resetLoginEmail for a code that went to a login email nobody can read. Telegram allows
    /// it `reset_available_period` seconds after the code was sent (0 for Premium accounts), then
    /// drops the address and sends the code another way, or schedules the reset for a date (codes
    /// keep going to the address until then).
    private func resetTheLoginEmail(login: TelegramLogin, phoneNumber: String, sentCode: SentLoginCode, sentAt: UnixTime,
                                    clock: any TelegramClock) async throws -> CodeRequestResult {
        guard sentCode.isEmailCode else {
            Terminal.standard.errorLine("The code did not go to a login email (\(sentCode.channel)): there is nothing to reset.")
            return .codeSent(sentCode)
        }
        let now = clock.now()
        if let date = sentCode.loginEmailResetPendingDate, Double(date) > now.seconds {
            throw CLIFailure(.rateLimited, "\(account): a reset of the login email was requested before; Telegram resets it on "
                + "\(TimeText.iso(UnixTime(seconds: Double(date)))) and sends login codes to it until then. Run `tgsm auth --account \(account)` after that date.")
        }
        guard let period = sentCode.loginEmailResetAvailablePeriod else {
            throw CLIFailure(.failure, "\(account): Telegram offers no reset of this login email (its code request says nothing of one). Change the "
                + "address in an official app where this account is logged in (Settings > Privacy and Security > Login Email), or log in from one with `--qr`.")
        }
        let allowedAt = sentAt + Double(period)
        if allowedAt > now {
            throw CLIFailure(.rateLimited, "\(account): Telegram allows a reset of the login email from \(TimeText.iso(allowedAt)) (in "
                + "\(TimeText.remaining(allowedAt - now))), \(period) s after the code was sent. Run `tgsm auth --account \(account) --reset-login-email` "
                + "again then: it goes on with the code already requested, no new one.")
        }
        let answer = try await login.resetLoginEmail(phoneNumber: phoneNumber, sentCode: sentCode)
        if case .codeSent(let next) = answer, next.isEmailCode {
            let when = next.loginEmailResetPendingDate.map { " on \(TimeText.iso(UnixTime(seconds: Double($0))))" } ?? " later"
            throw CLIFailure(.rateLimited, "\(account): Telegram scheduled the reset of the login email: it happens\(when), and login codes go to "
                + "\(next.emailPattern ?? "it") until then. Run `tgsm auth --account \(account)` after that date: the code then comes another way.")
        }
        Terminal.standard.errorLine("Telegram reset the login email.")
        return answer
    }

    private static func outcome<Value>(_ step: () async throws(LoginError) -> Value) async -> Result<Value, LoginError> {
        do throws(LoginError) {
            return .success(try await step())
        } catch {
            return .failure(error)
        }
    }

    /// `codeMayPrecede`: no code was asked for (a future auth token), though a script may pipe one
    /// first (`Prompt.secretAfterSkippedCode`).
    private func password(login: TelegramLogin, hint: String?, dc: Int? = nil, codeMayPrecede: Bool = false) async throws(LoginError) -> LoggedIn {
        var attempts = 0
        while true {
            attempts += 1
            let entered: String
            do {
                let prompt = "2FA password\(hint.map { " (hint: \($0))" } ?? "") (not shown): "
                if codeMayPrecede && attempts == 1 {
                    let (secret, skippedCode) = try Prompt.secretAfterSkippedCode(prompt)
                    if skippedCode { Terminal.standard.errorLine("The login code given on the input was not needed: skipped; the next line is the password.") }
                    entered = secret
                } else {
                    entered = try Prompt.secret(prompt)
                }
            } catch {
                throw .passwordNeeded(hint: hint)
            }
            do throws(LoginError) {
                return Self.describe(try await login.checkPassword(entered, dc: dc))
            } catch .passwordInvalid where attempts < 3 {
                Terminal.standard.error("the password is wrong (\(Self.triesLeft(3 - attempts)))")
            }
        }
    }

    /// QR login: prints a tg://login link until a logged-in app accepts it (updateLoginToken), then
    /// exports again for the authorization.
    private func qrLogin(login: TelegramLogin, client: TelegramClient, clock: any TelegramClock) async throws(LoginError) -> LoggedIn {
        let accepted = AcceptedFlag()
        let updates = client.updates
        let watcher = Task {
            for await event in updates {
                if case .updateLoginToken = event.update { accepted.set(true) }
            }
        }
        defer { watcher.cancel() }
        while true {
            switch try await login.exportLoginToken() {
            case .loggedIn(let user):
                return Self.describe(user)
            case .passwordNeeded(let hint, let dc):
                Terminal.standard.errorLine("The app accepted the link; the account also has a 2FA password.")
                return try await password(login: login, hint: hint, dc: dc)
            case .token(let token, let expires):
                let link = "tg://login?token=" + Data(token).base64EncodedString()
                    .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
                Terminal.standard.line("Open this link from a logged-in Telegram app (Settings > Devices > Link Desktop Device): \(link)")
                accepted.set(false)
                while !accepted.value, clock.now().seconds < Double(expires) {
                    do { try await Task.sleep(for: .milliseconds(250)) } catch { throw .request(.cancelled(method: "auth.exportLoginToken", delivery: .notSent)) }
                }
            }
        }
    }

    static func whereTheCodeGoes(_ sent: SentLoginCode) -> String {
        switch sent.channel {
        case "app": "as a message from Telegram in the app of a device where this account is logged in"
        case "sms": "by SMS"
        case "call": "by a phone call"
        case "email": "to the account's login email" + (sent.emailPattern.map { " (\($0))" } ?? "")
        case "fragment": "to Fragment: open \(sent.fragmentURL ?? "fragment.com") and log in with the wallet that holds this number to read it"
        default: "(\(sent.channel))"
        }
    }

    /// "2 tries left", "1 try left".
    static func triesLeft(_ count: Int) -> String { count == 1 ? "1 try left" : "\(count) tries left" }

    static func describe(_ user: Api.User) -> LoggedIn {
        switch user {
        case .user(let value):
            let name = [value.firstName, value.lastName].compactMap { $0 }.filter { !$0.isEmpty }.joined(separator: " ")
            return LoggedIn(id: value.id, name: name.isEmpty ? nil : name, bot: value.bot)
        case .userEmpty(let empty):
            return LoggedIn(id: empty.id, name: nil, bot: false)
        }
    }

    static func failure(_ error: any Error, account: String) -> CLIFailure {
        if let failure = error as? CLIFailure { return failure }
        guard let login = error as? LoginError else { return CLIFailure(.failure, "\(account): the login failed: \(error)") }
        switch login {
        case .floodWait, .phoneNumberFlood, .loginEmailResetAlreadyRequested:
            return CLIFailure(.rateLimited, "\(account): \(login)")
        case .phoneNumberBanned:
            return CLIFailure(.accountMarked, "\(account): \(login)")
        case .passwordNeeded:
            // The prompt's input ended: Telegram keeps the session waiting for the password.
            return CLIFailure(.usage, "\(account): the input ended at the 2FA password prompt. Run `tgsm auth --account \(account)` "
                + "again to type it: the session waits for the password, no new code is needed.")
        case .request(let telegram):
            if let managed = telegram.sessionManagerError { return Runtimes.failure(managed, account: AccountID(account)) }
            return CLIFailure(.failure, "\(account): \(login)")
        default:
            return CLIFailure(.failure, "\(account): \(login)")
        }
    }
}

/// A flag set by one task and read by another.
final class AcceptedFlag: Sendable {
    private let state = Mutex(false)
    var value: Bool { state.withLock { $0 } }
    func set(_ value: Bool) { state.withLock { $0 = value } }
}
