import ArgumentParser
import Foundation
import MTProto
import PostgresStore
import SessionManager

/// `tgsm session rekey --new-key-file PATH`: every secret sealed under a new key, for a key that
/// may have leaked or a rotation policy (docs/SESSIONS.md, "Encryption at rest").
struct SessionRekeyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rekey",
        abstract: "Seal every secret of the store under a new key file (the current one from --key-file or $TGSM_KEY_FILE).",
        discussion: "One transaction: a secret that does not open under the current key stops it with nothing changed. SQLite: "
            + "the file is rebuilt (no old ciphertext left in it) and a verified backup is taken under the new key; older backups "
            + "restore only with the old key. Refused while a live process holds an account's lease (it would go on with the old "
            + "key and be refused its next secret write): stop it first, or --force and restart it with the new key. "
            + "A store without encryption gets it."
    )

    @OptionGroup var global: GlobalOptions
    @OptionGroup var output: OutputOptions

    @Option(name: .customLong("new-key-file"), help: ArgumentHelp("The new key: 32 random bytes, raw or as 64 hex digits (`head -c 32 /dev/urandom > new.key`).",
                                                                  valueName: "path"))
    var newKeyFile: String

    @Flag(name: .customLong("force"), help: "Re-key even while a live process holds a lease (restart it with the new key).")
    var force = false

    struct Result: Codable {
        var secrets: Int
        var backup: String?
        var olderBackups: [String]
    }

    func run() async throws {
        let newKey = StoreEncryption.keyFile(path: GlobalOptions.absolute(newKeyFile))
        let report: RekeyReport
        if let url = global.postgresURL {
            if !force {
                let store = try await PostgresSessionStore.connectForCLI(url: url, global: global)
                do { try await refuseWhileLeased(store) } catch {
                    await store.close()
                    throw error
                }
                await store.close()
            }
            do { report = try await PostgresSessionStore.rekey(url: url, from: global.storeEncryption(), to: newKey, logger: global.storeLogger()) } catch {
                throw CLIFailure(error)
            }
        } else {
            let directory = try global.storeDirectory()
            if !force {
                let store = try StoreAccess.open(global, creating: false)
                do { try await refuseWhileLeased(store) } catch {
                    try? store.close()
                    throw error
                }
                try? store.close()
            }
            do { report = try SQLiteSessionStore.rekey(directory: directory, options: global.storeOptions(), to: newKey) } catch {
                throw CLIFailure(error)
            }
        }
        let terminal = Terminal.standard
        if output.json {
            try terminal.json(Result(secrets: report.secrets, backup: report.backup, olderBackups: report.olderBackups))
            return
        }
        terminal.line("\(terminal.paint("re-keyed", .green)) \(report.secrets) secret(s) now sealed under \(GlobalOptions.absolute(newKeyFile))")
        if let backup = report.backup { terminal.line("  verified backup under the new key: \(backup)") }
        terminal.line("  from now on give the new key (--key-file or TGSM_KEY_FILE) to every tgsm process; restart those still running")
        if !report.olderBackups.isEmpty {
            terminal.line("  \(report.olderBackups.count) older backup(s) are from before this re-key: under the old key (they restore only with "
                + "it), or in clear if the store was not sealed before; keep the old key with them, or delete them (`tgsm check` says which)")
        }
        if global.postgresURL != nil {
            terminal.line("  the replaced rows stay in the table files until, at a quiet time: VACUUM FULL dc, pending_login_code, future_auth_token")
        }
    }

    /// A live lease means a process has the store open with the old key.
    private func refuseWhileLeased(_ store: any OperatorReadableStore) async throws(CLIFailure) {
        if let (account, lease) = try await StoreAccess.liveLease(in: store, now: global.now()) {
            throw CLIFailure(.leaseHeld, "account \(account) is in use by \(lease.holder) (lease until \(TimeText.iso(lease.expiresAt))); "
                + "that process has the store open with the old key and would be refused its next secret write. Nothing was changed. "
                + "Stop it first, or pass --force and restart it with the new key.")
        }
    }
}

extension PostgresSessionStore {
    /// Connects as the CLI's other commands do, for a look at the leases; closed at once after.
    static func connectForCLI(url: String, global: GlobalOptions) async throws(CLIFailure) -> PostgresSessionStore {
        do { return try await connect(url: url, encryption: global.storeEncryption(), clock: global.clock(), logger: global.storeLogger()) } catch {
            throw CLIFailure(error)
        }
    }
}
