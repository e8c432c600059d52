import ArgumentParser
import Foundation
import MTProto
import SessionManager
import Workers

/// `tgsm session remove --account NAME`: an account the store should no longer keep (a login that
/// was abandoned, a typo in `--account`, a number given up). Until it goes, `tgsm run` waits for
/// its login, `/health` is 503 and `tgsm check` exits 8 for it.
struct SessionRemoveCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "remove",
        abstract: "Remove an account from the store: its session, marks, flood waits, deadlines and tokens.",
        discussion: "Refused (exit 6) while a live process holds the account's lease: stop it first. On a SQLite store a "
            + "verified backup is taken first, so `tgsm session restore --backup FILE` brings the account back; on PostgreSQL "
            + "none is (take a snapshot with `tgsm session backup` before, if the account may be wanted back). Nothing is "
            + "sent to Telegram: the session stays valid there (end it in an official app, Settings > Devices, if it should). "
            + "The account's jobs stay in the queue; the output says how many are open (`tgsm jobs cancel` ends them)."
    )

    @OptionGroup var global: GlobalOptions
    @OptionGroup var output: OutputOptions

    @Option(name: .customLong("account"), help: ArgumentHelp("The account's name in the store.", valueName: "name"))
    var account: String

    struct Result: Codable {
        var removed: String
        /// The backup taken first (SQLite); restoring it brings the account back.
        var backup: String?
        /// The account's jobs still queued or running.
        var openJobs: Int
        /// Whether it had a logged-in session, which Telegram still counts as a device.
        var wasLoggedIn: Bool
    }

    func run() async throws {
        let account = AccountID(self.account)
        let (result, location) = try await StoreAccess.withSessionStore(global, creating: false) { store, location in
            (try await remove(account, from: store), location)
        }
        let terminal = Terminal.standard
        if output.json { try terminal.json(result); return }
        terminal.line("\(terminal.paint("removed", .green)) \(account.rawValue) from \(location)")
        if let backup = result.backup {
            terminal.line("  a backup was taken first: `tgsm session restore --backup \(backup)` brings it back "
                + "(kept \(Int(BackupRecord.removalBackupDays)) days beside the newest backups)")
        } else if global.postgresURL != nil {
            // A snapshot holds every account, and restoring one would roll the others back too: none is
            // taken for one account's removal, and the operator is told rather than assuming one was.
            terminal.line("  no backup was taken (a PostgreSQL snapshot holds every account): a `tgsm session backup` taken "
                + "before, or `tgsm auth`, brings it back")
        }
        if result.wasLoggedIn {
            terminal.line("  Telegram was not told: the session stays valid there (end it in an official app, Settings > Devices)")
        }
        if result.openJobs > 0 {
            terminal.line("  \(result.openJobs) job(s) of it are still open in the queue: `tgsm jobs list --account \(account.rawValue)`, `tgsm jobs cancel ID`")
        }
    }

    private func remove(_ account: AccountID, from store: any SessionStore) async throws -> Result {
        let known: [AccountID]
        do { known = try await store.accounts() } catch { throw CLIFailure(.failure, "the store's accounts could not be read: \(error)") }
        guard known.contains(account) else {
            throw CLIFailure(.notFound, "the store has no account \(account.rawValue)" + (known.isEmpty ? "; it holds no account yet" : "; it holds: \(known.map(\.rawValue).joined(separator: ", "))"))
        }
        // Taken first: a process starting the account now meets this lease, and one running it refuses the removal.
        let lease = try await OperatorLease.take(account, store: store, now: global.now(), refusal: "nothing was removed. Stop that process "
            + "first (or leave it out with `tgsm run --account`). " + ClusterAdvice.handOver)
        let loggedIn = (try? await store.loadSession(account: account))??.dcs.values.contains { $0.isAuthorized } ?? false
        var backup: String?
        if let file = store as? SQLiteSessionStore {
            do { backup = try file.backup(reason: .beforeRemoval).file } catch {
                try? await store.releaseLease(lease)
                throw CLIFailure(.failure, "no backup could be taken before removing \(account.rawValue), so nothing was removed: \(error)")
            }
        }
        do { try await store.deleteAccount(account) } catch {
            try? await store.releaseLease(lease)
            throw (error as? SessionStoreError).map(CLIFailure.init) ?? CLIFailure(.failure, "\(account.rawValue) could not be removed: \(error)")
        }
        var open = 0
        if let (queue, close) = try? await StoreAccess.queue(global, creating: false) {
            if let counts = try? await queue.counts(account: account) { open = counts[.queued] + counts[.running] }
            await close()
        }
        return Result(removed: account.rawValue, backup: backup, openJobs: open, wasLoggedIn: loggedIn)
    }
}
