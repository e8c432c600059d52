import GRDB

extension DatabaseMigrator {
    /// `migrate`, safe when another process migrates the same file at the same moment (two
    /// `tgsm run` started together on a new or upgraded store): GRDB reads which migrations are
    /// applied before it takes the write lock for each, so the slower process runs one the other
    /// just committed and fails on a table already there. It looks again: what the other applied
    /// counts, and only the rest is applied.
    package func migrateAlongsideOtherProcesses(_ writer: any DatabaseWriter) throws {
        var tries = 0
        while true {
            do {
                try migrate(writer)
                return
            } catch {
                tries += 1
                if (try? writer.read({ db in try hasCompletedMigrations(db) })) == true { return }
                guard tries < 5 else { throw error }
            }
        }
    }
}
