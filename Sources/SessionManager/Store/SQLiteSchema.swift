import GRDB

/// The store's tables, as versioned migrations. Ids start with "store." because other layers (the
/// job queue) register their own migrations on the same database. A migration, once shipped, is
/// never edited: changes are new migrations.
enum SQLiteSchema {
    static let formatMarker = "tgsm.session-store"

    static func migrator() -> DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("store.v1") { db in
            try db.execute(sql: """
                CREATE TABLE store_meta (key TEXT PRIMARY KEY NOT NULL, value ANY) STRICT, WITHOUT ROWID;

                CREATE TABLE account (
                    id TEXT PRIMARY KEY NOT NULL,
                    created_at REAL NOT NULL,
                    home_dc INTEGER,
                    user_id INTEGER,
                    is_bot INTEGER NOT NULL DEFAULT 0,
                    row_check INTEGER NOT NULL DEFAULT 0,
                    device_model TEXT, system_version TEXT, app_version TEXT,
                    system_lang_code TEXT, lang_pack TEXT, lang_code TEXT, identity_chosen_at REAL,
                    proxy TEXT
                ) STRICT;

                CREATE TABLE dc (
                    account TEXT NOT NULL REFERENCES account(id) ON DELETE CASCADE,
                    dc_id INTEGER NOT NULL,
                    auth_key BLOB,
                    auth_key_id INTEGER,
                    server_salt INTEGER NOT NULL DEFAULT 0,
                    time_offset REAL NOT NULL DEFAULT 0,
                    is_authorized INTEGER NOT NULL DEFAULT 0,
                    row_check INTEGER NOT NULL DEFAULT 0,
                    temp_key BLOB,
                    temp_key_id INTEGER,
                    temp_key_expires_at REAL,
                    updated_at REAL NOT NULL,
                    PRIMARY KEY (account, dc_id)
                ) STRICT, WITHOUT ROWID;

                CREATE TABLE future_salt (
                    account TEXT NOT NULL REFERENCES account(id) ON DELETE CASCADE,
                    dc_id INTEGER NOT NULL,
                    valid_since REAL NOT NULL,
                    valid_until REAL NOT NULL,
                    salt INTEGER NOT NULL,
                    PRIMARY KEY (account, dc_id, valid_since)
                ) STRICT, WITHOUT ROWID;

                CREATE TABLE update_state (
                    account TEXT PRIMARY KEY NOT NULL REFERENCES account(id) ON DELETE CASCADE,
                    pts INTEGER NOT NULL, qts INTEGER NOT NULL, date INTEGER NOT NULL, seq INTEGER NOT NULL
                ) STRICT, WITHOUT ROWID;

                CREATE TABLE channel_pts (
                    account TEXT NOT NULL REFERENCES account(id) ON DELETE CASCADE,
                    channel_id INTEGER NOT NULL,
                    pts INTEGER NOT NULL,
                    PRIMARY KEY (account, channel_id)
                ) STRICT, WITHOUT ROWID;

                CREATE TABLE peer (
                    account TEXT NOT NULL REFERENCES account(id) ON DELETE CASCADE,
                    kind TEXT NOT NULL,
                    peer_id INTEGER NOT NULL,
                    access_hash INTEGER,
                    username TEXT,
                    seen_at REAL NOT NULL,
                    PRIMARY KEY (account, kind, peer_id)
                ) STRICT, WITHOUT ROWID;
                CREATE INDEX peer_by_username ON peer(account, username) WHERE username IS NOT NULL;

                CREATE TABLE flood_wait (
                    account TEXT NOT NULL,
                    method TEXT NOT NULL,
                    peer TEXT NOT NULL,
                    kind TEXT NOT NULL,
                    recorded_at REAL NOT NULL,
                    until REAL NOT NULL,
                    dc INTEGER,
                    PRIMARY KEY (account, method, peer)
                ) STRICT, WITHOUT ROWID;
                CREATE INDEX flood_wait_by_until ON flood_wait(until);

                CREATE TABLE send_code_deadline (
                    account TEXT NOT NULL,
                    phone_key TEXT NOT NULL,
                    deadline REAL NOT NULL,
                    PRIMARY KEY (account, phone_key)
                ) STRICT, WITHOUT ROWID;

                CREATE TABLE lease (
                    account TEXT PRIMARY KEY NOT NULL,
                    holder_host TEXT NOT NULL,
                    holder_pid INTEGER NOT NULL,
                    started_at REAL NOT NULL,
                    heartbeat_at REAL NOT NULL,
                    expires_at REAL NOT NULL,
                    token INTEGER NOT NULL,
                    released INTEGER NOT NULL DEFAULT 0
                ) STRICT, WITHOUT ROWID;

                CREATE TABLE backup (
                    file TEXT PRIMARY KEY NOT NULL,
                    created_at REAL NOT NULL,
                    size INTEGER NOT NULL,
                    sha256 TEXT NOT NULL,
                    commit_seq INTEGER NOT NULL,
                    reason TEXT NOT NULL
                ) STRICT, WITHOUT ROWID;
                """)
            try db.execute(sql: "INSERT INTO store_meta(key, value) VALUES ('format', ?), ('commit_seq', 0)",
                           arguments: [formatMarker])
        }
        // The accounts' terminal marks (AccountStatusStore), shared by the session manager's
        // terminal guard and the workers. Not a column of `account`: a mark may be written for an
        // account that has no session row yet, and `account` rows carry a row check.
        migrator.registerMigration("store.v2") { db in
            try db.execute(sql: """
                CREATE TABLE account_status (
                    account TEXT PRIMARY KEY NOT NULL,
                    state TEXT NOT NULL,
                    since REAL NOT NULL,
                    cause TEXT NOT NULL,
                    code TEXT NOT NULL
                ) STRICT, WITHOUT ROWID;
                """)
        }
        // The login codes sent and not yet used (`PendingLoginCode`), beside the send-code
        // deadlines that keep a second one from being requested: a login interrupted at the code
        // prompt goes on with the code already sent. The hash is sealed like the auth keys.
        migrator.registerMigration("store.v3") { db in
            try db.execute(sql: """
                CREATE TABLE pending_login_code (
                    account TEXT NOT NULL,
                    phone_key TEXT NOT NULL,
                    phone_code_hash BLOB NOT NULL,
                    code_type BLOB NOT NULL,
                    sent_at REAL NOT NULL,
                    offered_until REAL NOT NULL,
                    PRIMARY KEY (account, phone_key)
                ) STRICT, WITHOUT ROWID;
                """)
        }
        // The future auth tokens Telegram gave logins (`FutureAuthToken`), per phone key: offered
        // back in auth.sendCode, they log a lost session in again without a code. Sealed like the
        // auth keys; `token_digest` (SHA-256) keeps a token received twice from being kept twice.
        migrator.registerMigration("store.v4") { db in
            try db.execute(sql: """
                CREATE TABLE future_auth_token (
                    phone_key TEXT NOT NULL,
                    token_digest TEXT NOT NULL,
                    account TEXT NOT NULL,
                    token BLOB NOT NULL,
                    received_at REAL NOT NULL,
                    PRIMARY KEY (phone_key, token_digest)
                ) STRICT, WITHOUT ROWID;
                CREATE INDEX future_auth_token_by_account ON future_auth_token(account, received_at);
                """)
        }
        // Telegram's service notifications to each account (`StoredServiceNotification`), the
        // newest kept, messages masked: what `tgsm check` shows after the process that heard them.
        migrator.registerMigration("store.v5") { db in
            try db.execute(sql: """
                CREATE TABLE service_notification (
                    account TEXT NOT NULL,
                    received_at REAL NOT NULL,
                    type TEXT NOT NULL,
                    message TEXT NOT NULL,
                    popup INTEGER NOT NULL
                ) STRICT;
                CREATE INDEX service_notification_by_account ON service_notification(account, received_at);
                """)
        }
        // The alerts `tgsm run` sent, by key (`AlertMemory`): a restarted process does not say again
        // what it said before (a restart loop would otherwise send one alert per start).
        migrator.registerMigration("store.v6") { db in
            try db.execute(sql: "CREATE TABLE alert_sent (key TEXT PRIMARY KEY, sent_at REAL NOT NULL) STRICT")
        }
        // Accounts Telegram froze (`StoredAccountFreeze`): the freeze outlives the process that met it.
        migrator.registerMigration("store.v7") { db in
            try db.execute(sql: """
                CREATE TABLE account_freeze (
                    account TEXT PRIMARY KEY NOT NULL,
                    since REAL NOT NULL,
                    deleted_after REAL,
                    appeal_url TEXT,
                    confirmed_at REAL NOT NULL
                ) STRICT
                """)
        }
        // What a running process sees of the accounts it serves (`LiveReport`), for `tgsm status`
        // and `tgsm check` in other processes.
        migrator.registerMigration("store.v8") { db in
            try db.execute(sql: """
                CREATE TABLE live_report (
                    account TEXT PRIMARY KEY NOT NULL,
                    holder_host TEXT NOT NULL,
                    holder_pid INTEGER NOT NULL,
                    ready INTEGER NOT NULL,
                    health TEXT NOT NULL,
                    reasons TEXT NOT NULL,
                    since REAL NOT NULL,
                    reported_at REAL NOT NULL
                ) STRICT
                """)
        }
        return migrator
    }
}
