import PostgresStore
import Testing

@Suite struct PostgresURLTests {
    @Test func aURLBecomesAConfigurationAndNeverShowsItsPassword() throws {
        let url = try PostgresURL("postgres://tgsm:s%40cret@db.example:6543/sessions?sslmode=require", environment: [:])
        #expect(url.configuration.host == "db.example" && url.configuration.port == 6543)
        #expect(url.configuration.username == "tgsm" && url.configuration.password == "s@cret" && url.configuration.database == "sessions")
        #expect(!url.redacted.contains("cret") && url.redacted.contains("db.example"))
        let fromEnvironment = try PostgresURL("postgresql://tgsm@localhost/tgsm", environment: ["PGPASSWORD": "pw"])
        #expect(fromEnvironment.configuration.password == "pw" && fromEnvironment.configuration.port == 5432)
        let socket = try PostgresURL("postgres:///tgsm?host=/run/postgresql", environment: ["USER": "me"])
        #expect(socket.configuration.unixSocketPath == "/run/postgresql/.s.PGSQL.5432" && socket.configuration.username == "me")
    }

    @Test func aBadURLSaysWhatIsWrong() {
        for (text, reason) in [
            ("mysql://x/y", "postgres://"), ("postgres://h:99999/db", "99999"), ("postgres://h/db?sslmode=sometimes", "sslmode"),
            ("postgres://h/db?pool=3", "pool"), ("postgres://h/a/b", "slash"),
        ] {
            #expect(throws: PostgresStoreError.self, "\(text)") { try PostgresURL(text, environment: [:]) }
            do { _ = try PostgresURL(text, environment: [:]) } catch {
                #expect(error.description.contains(reason) && error.description.contains("postgres://USER"), "\(text): \(error)")
            }
        }
    }
}
