/// The session store's tables on PostgreSQL: the same tables and meaning as the SQLite store's
/// (docs/SESSIONS.md), in PostgreSQL types. Times are Unix seconds (double precision), integers
/// bigint. There is no `row_check` column: PostgreSQL's own page checksums (`initdb
/// --data-checksums`) cover what the SQLite store's row checks cover, and a stored auth key is
/// still checked against its `auth_key_id` when loaded.
enum PostgresStoreSchema {
    static let migrations: [PostgresMigration] = [
        PostgresMigration(id: "store.v1", statements: [
            "CREATE TABLE store_meta (key text PRIMARY KEY, value bytea NOT NULL)",
            """
            CREATE TABLE account (
                id text PRIMARY KEY,
                created_at double precision NOT NULL,
                home_dc bigint,
                user_id bigint,
                is_bot boolean NOT NULL DEFAULT false,
                device_model text, system_version text, app_version text,
                system_lang_code text, lang_pack text, lang_code text, identity_chosen_at double precision,
                proxy text
            )
            """,
            """
            CREATE TABLE dc (
                account text NOT NULL REFERENCES account(id) ON DELETE CASCADE,
                dc_id bigint NOT NULL,
                auth_key bytea,
                auth_key_id bigint,
                server_salt bigint NOT NULL DEFAULT 0,
                time_offset double precision NOT NULL DEFAULT 0,
                is_authorized boolean NOT NULL DEFAULT false,
                temp_key bytea,
                temp_key_id bigint,
                temp_key_expires_at double precision,
                updated_at double precision NOT NULL,
                PRIMARY KEY (account, dc_id)
            )
            """,
            """
            CREATE TABLE future_salt (
                account text NOT NULL REFERENCES account(id) ON DELETE CASCADE,
                dc_id bigint NOT NULL,
                valid_since double precision NOT NULL,
                valid_until double precision NOT NULL,
                salt bigint NOT NULL,
                PRIMARY KEY (account, dc_id, valid_since)
            )
            """,
            """
            CREATE TABLE update_state (
                account text PRIMARY KEY REFERENCES account(id) ON DELETE CASCADE,
                pts bigint NOT NULL, qts bigint NOT NULL, date bigint NOT NULL, seq bigint NOT NULL
            )
            """,
            """
            CREATE TABLE channel_pts (
                account text NOT NULL REFERENCES account(id) ON DELETE CASCADE,
                channel_id bigint NOT NULL,
                pts bigint NOT NULL,
                PRIMARY KEY (account, channel_id)
            )
            """,
            """
            CREATE TABLE peer (
                account text NOT NULL REFERENCES account(id) ON DELETE CASCADE,
                kind text NOT NULL,
                peer_id bigint NOT NULL,
                access_hash bigint,
                username text,
                seen_at double precision NOT NULL,
                PRIMARY KEY (account, kind, peer_id)
            )
            """,
            "CREATE INDEX peer_by_username ON peer(account, username) WHERE username IS NOT NULL",
            """
            CREATE TABLE flood_wait (
                account text NOT NULL,
                method text NOT NULL,
                peer text NOT NULL,
                kind text NOT NULL,
                recorded_at double precision NOT NULL,
                until double precision NOT NULL,
                dc bigint,
                PRIMARY KEY (account, method, peer)
            )
            """,
            "CREATE INDEX flood_wait_by_until ON flood_wait(until)",
            """
            CREATE TABLE send_code_deadline (
                account text NOT NULL,
                phone_key text NOT NULL,
                deadline double precision NOT NULL,
                PRIMARY KEY (account, phone_key)
            )
            """,
            """
            CREATE TABLE lease (
                account text PRIMARY KEY,
                holder_host text NOT NULL,
                holder_pid bigint NOT NULL,
                started_at double precision NOT NULL,
                heartbeat_at double precision NOT NULL,
                expires_at double precision NOT NULL,
                token bigint NOT NULL,
                released boolean NOT NULL DEFAULT false
            )
            """,
            """
            CREATE TABLE account_status (
                account text PRIMARY KEY,
                state text NOT NULL,
                since double precision NOT NULL,
                cause text NOT NULL,
                code text NOT NULL
            )
            """,
        ]),
        // The proactive rate buckets every process shares (RateBucketStore), a version of its own so
        // the upgrade path is exercised like any later one.
        PostgresMigration(id: "store.v2", statements: [
            """
            CREATE TABLE rate_bucket (
                account text NOT NULL,
                bucket text NOT NULL,
                tokens double precision NOT NULL,
                updated_at double precision NOT NULL,
                PRIMARY KEY (account, bucket)
            )
            """,
        ]),
        // The snapshots taken of the store (`snapshot(into:)`): each file lives on the host that took
        // it, in `directory`; the table is what every process sees (`recordedBackups()`).
        PostgresMigration(id: "store.v3", statements: [
            """
            CREATE TABLE backups (
                file text PRIMARY KEY,
                created_at double precision NOT NULL,
                size bigint NOT NULL,
                sha256 text NOT NULL,
                commit_seq bigint NOT NULL,
                reason text NOT NULL,
                directory text NOT NULL,
                host text NOT NULL,
                accounts bigint NOT NULL
            )
            """,
        ]),
        // The login codes sent and not yet used (`PendingLoginCode`), beside the send-code
        // deadlines: a login interrupted at the code prompt goes on with the code already sent.
        PostgresMigration(id: "store.v4", statements: [
            """
            CREATE TABLE pending_login_code (
                account text NOT NULL,
                phone_key text NOT NULL,
                phone_code_hash text NOT NULL,
                code_type bytea NOT NULL,
                sent_at double precision NOT NULL,
                offered_until double precision NOT NULL,
                PRIMARY KEY (account, phone_key)
            )
            """,
        ]),
        // The future auth tokens Telegram gave logins (`FutureAuthToken`), per phone key: offered
        // back in auth.sendCode, they log a lost session in again without a code. `token_digest`
        // (SHA-256) keeps a token received twice from being kept twice.
        PostgresMigration(id: "store.v5", statements: [
            """
            CREATE TABLE future_auth_token (
                phone_key text NOT NULL,
                token_digest text NOT NULL,
                account text NOT NULL,
                token bytea NOT NULL,
                received_at double precision NOT NULL,
                PRIMARY KEY (phone_key, token_digest)
            )
            """,
            "CREATE INDEX future_auth_token_by_account ON future_auth_token(account, received_at)",
        ]),
        // Telegram's service notifications to each account (`StoredServiceNotification`), the
        // newest kept, messages masked: what `tgsm check` shows after the process that heard them.
        PostgresMigration(id: "store.v6", statements: [
            """
            CREATE TABLE service_notification (
                id bigserial PRIMARY KEY,
                account text NOT NULL,
                received_at double precision NOT NULL,
                type text NOT NULL,
                message text NOT NULL,
                popup boolean NOT NULL
            )
            """,
            "CREATE INDEX service_notification_by_account ON service_notification(account, received_at)",
        ]),
        // Secrets sealed at rest as on SQLite (`StoreEncryption`): the pending login code's hash
        // becomes bytes, as the keys and tokens already are, so it can hold a sealed value.
        PostgresMigration(id: "store.v7", statements: [
            "ALTER TABLE pending_login_code ALTER COLUMN phone_code_hash TYPE bytea USING convert_to(phone_code_hash, 'UTF8')",
        ]),
        // The alerts `tgsm run` sent, by key (`AlertMemory`): shared by the cluster's processes.
        PostgresMigration(id: "store.v8", statements: [
            "CREATE TABLE alert_sent (key text PRIMARY KEY, sent_at double precision NOT NULL)",
        ]),
        // Accounts Telegram froze (`StoredAccountFreeze`).
        PostgresMigration(id: "store.v9", statements: [
            """
            CREATE TABLE account_freeze (
                account text PRIMARY KEY,
                since double precision NOT NULL,
                deleted_after double precision,
                appeal_url text,
                confirmed_at double precision NOT NULL
            )
            """,
        ]),
        // What a running process sees of the accounts it serves (`LiveReport`), for `tgsm status`
        // and `tgsm check` on any host.
        PostgresMigration(id: "store.v10", statements: [
            """
            CREATE TABLE live_report (
                account text PRIMARY KEY,
                holder_host text NOT NULL,
                holder_pid bigint NOT NULL,
                ready boolean NOT NULL,
                health text NOT NULL,
                reasons text NOT NULL,
                since double precision NOT NULL,
                reported_at double precision NOT NULL
            )
            """,
        ]),
    ]
}
