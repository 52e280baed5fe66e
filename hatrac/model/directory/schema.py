"""Versioned schema: named migrations applied once, in order, in one transaction.

Each migration has a unique name and DDL for both dialects. ``migrate`` runs
inside the caller's write transaction (PostgreSQL and SQLite both have
transactional DDL), so an upgrade is applied whole or not at all, and an
advisory lock (PostgreSQL) or the write lock (SQLite) keeps concurrent workers
from racing. Features add their tables by appending to :data:`MIGRATIONS`;
applied migrations are never edited.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Migration:
    """One schema step: a unique name and its statements per dialect."""

    name: str
    postgres: tuple[str, ...]
    sqlite: tuple[str, ...]


def _both(*statements: str, serial: str = "BIGSERIAL PRIMARY KEY") -> dict[str, tuple[str, ...]]:
    """The same DDL for both dialects, with the dialects' id and boolean types."""
    postgres = tuple(s.replace("{ID}", serial).replace("{BOOL}", "BOOLEAN") for s in statements)
    sqlite = tuple(
        s.replace("{ID}", "INTEGER PRIMARY KEY AUTOINCREMENT")
        .replace("{BOOL}", "INTEGER")
        .replace("BIGINT", "INTEGER")
        .replace("DOUBLE PRECISION", "REAL")
        for s in statements
    )
    return {"postgres": postgres, "sqlite": sqlite}


def _migration(name: str, *statements: str) -> Migration:
    ddl = _both(*statements)
    return Migration(name, ddl["postgres"], ddl["sqlite"])


# what an identity (a user's name, display name, enabled state and group
# closure) is read from; sessions and tokens are checked row by row instead
_IDENTITY_TABLES = ("auth_users", "auth_groups", "auth_user_groups", "auth_group_groups")
_GENERATION_TABLE = """CREATE TABLE auth_generation (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            generation BIGINT NOT NULL
        )"""
_GENERATION_ROW = "INSERT INTO auth_generation (id, generation) VALUES (1, 1)"

MIGRATIONS: list[Migration] = [
    _migration(
        "core-1",
        """CREATE TABLE names (
            id {ID},
            name TEXT NOT NULL UNIQUE,
            parent_id BIGINT REFERENCES names(id),
            kind TEXT NOT NULL CHECK (kind IN ('namespace', 'object')),
            acls TEXT NOT NULL DEFAULT '{}',
            deleted {BOOL} NOT NULL DEFAULT FALSE,
            created DOUBLE PRECISION NOT NULL
        )""",
        "CREATE INDEX names_parent ON names (parent_id)",
        """CREATE TABLE versions (
            id {ID},
            name_id BIGINT NOT NULL REFERENCES names(id),
            version TEXT NOT NULL,
            size BIGINT NOT NULL,
            storage_key TEXT NOT NULL,
            content_type TEXT,
            content_md5 TEXT,
            content_sha256 TEXT,
            content_disposition TEXT,
            acls TEXT NOT NULL DEFAULT '{}',
            created DOUBLE PRECISION NOT NULL,
            deleted {BOOL} NOT NULL DEFAULT FALSE,
            renamed_to_name TEXT,
            renamed_to_version TEXT,
            UNIQUE (name_id, version)
        )""",
        "CREATE INDEX versions_storage_key ON versions (storage_key)",
    ),
    # built-in accounts (hatrac.auth): users, nested groups, sessions, API
    # tokens and the login-failure log that rate limiting counts
    _migration(
        "auth-1",
        """CREATE TABLE auth_users (
            id {ID},
            name TEXT NOT NULL UNIQUE,
            display_name TEXT,
            password_hash TEXT,
            disabled {BOOL} NOT NULL DEFAULT FALSE,
            created DOUBLE PRECISION NOT NULL
        )""",
        """CREATE TABLE auth_groups (
            id {ID},
            name TEXT NOT NULL UNIQUE,
            created DOUBLE PRECISION NOT NULL
        )""",
        """CREATE TABLE auth_user_groups (
            group_id BIGINT NOT NULL REFERENCES auth_groups(id) ON DELETE CASCADE,
            user_id BIGINT NOT NULL REFERENCES auth_users(id) ON DELETE CASCADE,
            PRIMARY KEY (group_id, user_id)
        )""",
        "CREATE INDEX auth_user_groups_user ON auth_user_groups (user_id)",
        """CREATE TABLE auth_group_groups (
            group_id BIGINT NOT NULL REFERENCES auth_groups(id) ON DELETE CASCADE,
            member_id BIGINT NOT NULL REFERENCES auth_groups(id) ON DELETE CASCADE,
            PRIMARY KEY (group_id, member_id)
        )""",
        "CREATE INDEX auth_group_groups_member ON auth_group_groups (member_id)",
        """CREATE TABLE auth_sessions (
            id_hash TEXT PRIMARY KEY,
            user_id BIGINT NOT NULL REFERENCES auth_users(id) ON DELETE CASCADE,
            since DOUBLE PRECISION NOT NULL,
            expires DOUBLE PRECISION NOT NULL,
            client_address TEXT
        )""",
        "CREATE INDEX auth_sessions_user ON auth_sessions (user_id)",
        """CREATE TABLE auth_tokens (
            id {ID},
            token_hash TEXT NOT NULL UNIQUE,
            user_id BIGINT NOT NULL REFERENCES auth_users(id) ON DELETE CASCADE,
            description TEXT,
            created DOUBLE PRECISION NOT NULL,
            expires DOUBLE PRECISION,
            revoked {BOOL} NOT NULL DEFAULT FALSE
        )""",
        """CREATE TABLE auth_failures (
            id {ID},
            failure_key TEXT NOT NULL,
            at DOUBLE PRECISION NOT NULL
        )""",
        "CREATE INDEX auth_failures_key ON auth_failures (failure_key, at)",
    ),
    # chunked upload jobs (SQL in hatrac/model/directory/uploads.py)
    _migration(
        "uploads-1",
        """CREATE TABLE upload_jobs (
            id {ID},
            job TEXT NOT NULL UNIQUE,
            name TEXT NOT NULL,
            owner TEXT,
            chunk_length BIGINT NOT NULL,
            content_length BIGINT NOT NULL,
            content_type TEXT,
            content_md5 TEXT,
            content_sha256 TEXT,
            content_disposition TEXT,
            parents {BOOL} NOT NULL DEFAULT FALSE,
            storage_state TEXT NOT NULL DEFAULT '',
            state TEXT NOT NULL DEFAULT 'open',
            created DOUBLE PRECISION NOT NULL,
            last_activity DOUBLE PRECISION NOT NULL
        )""",
        "CREATE INDEX upload_jobs_name ON upload_jobs (name)",
        "CREATE INDEX upload_jobs_activity ON upload_jobs (last_activity)",
        """CREATE TABLE upload_chunks (
            job_id BIGINT NOT NULL REFERENCES upload_jobs(id) ON DELETE CASCADE,
            chunk BIGINT NOT NULL,
            size BIGINT NOT NULL,
            md5 TEXT,
            sha256 TEXT,
            state TEXT NOT NULL DEFAULT '',
            PRIMARY KEY (job_id, chunk)
        )""",
    ),
    # Names compare byte by byte whatever the database's default collation:
    # subtree range scans (name >= 'x/' AND name < 'x0') rely on '/' < '0',
    # which a linguistic collation such as en_US ignores; listings are sorted
    # the same on both databases; and the (parent_id, name) index serves a
    # listing in order without a sort. SQLite compares bytes already.
    Migration(
        "names-bytewise-1",
        postgres=(
            'ALTER TABLE names ALTER COLUMN name TYPE TEXT COLLATE "C"',
            'ALTER TABLE upload_jobs ALTER COLUMN name TYPE TEXT COLLATE "C"',
            "CREATE INDEX names_parent_name ON names (parent_id, name)",
        ),
        sqlite=("CREATE INDEX names_parent_name ON names (parent_id, name)",),
    ),
    # which upstream Hatrac name row each imported name came from (hatrac
    # import-upstream): makes the import resumable and idempotent, and shows
    # two upstream spellings that are one name here
    _migration(
        "upstream-import-1",
        """CREATE TABLE upstream_names (
            upstream_id BIGINT PRIMARY KEY,
            name_id BIGINT NOT NULL UNIQUE REFERENCES names(id),
            upstream_name TEXT NOT NULL
        )""",
    ),
    # small versions kept inline (hatrac/model/storage/inline.py): their bytes,
    # by storage key, written in the transaction that binds the version
    Migration(
        "inline-bytes-1",
        postgres=(
            """CREATE TABLE inline_bytes (
            storage_key TEXT PRIMARY KEY,
            data BYTEA NOT NULL,
            created DOUBLE PRECISION NOT NULL
        )""",
        ),
        sqlite=(
            """CREATE TABLE inline_bytes (
            storage_key TEXT PRIMARY KEY,
            data BLOB NOT NULL,
            created REAL NOT NULL
        )""",
        ),
    ),
    # the accounts' generation: one counter that every change to users, groups or
    # memberships increments in its own transaction (triggers, so no writer can
    # forget it), which lets a server reuse an identity's group closure for as
    # long as the counter has not moved (hatrac/model/credentials.py)
    Migration(
        "auth-generation-1",
        postgres=(
            _GENERATION_TABLE,
            _GENERATION_ROW,
            """CREATE FUNCTION hatrac_auth_changed() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                UPDATE auth_generation SET generation = generation + 1;
                RETURN NULL;
            END $$""",
            # a user's groups, directly or through nested groups (as accounts.groups.CLOSURE),
            # for session and token lookups: a call the statement skips costs nothing,
            # where a subquery costs its plan's start-up even when never executed
            """CREATE FUNCTION hatrac_user_groups(user_id BIGINT) RETURNS TEXT
            LANGUAGE plpgsql STABLE AS $$
            BEGIN
                RETURN (
                    WITH RECURSIVE closure(id) AS (
                        SELECT ug.group_id FROM auth_user_groups ug WHERE ug.user_id = $1
                        UNION
                        SELECT gg.group_id FROM auth_group_groups gg
                        JOIN closure c ON gg.member_id = c.id)
                    SELECT string_agg(g.name, chr(10)) FROM auth_groups g
                    WHERE g.id IN (SELECT id FROM closure));
            END $$""",
            *(
                f"CREATE TRIGGER {table}_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE "
                f"ON {table} FOR EACH STATEMENT EXECUTE FUNCTION hatrac_auth_changed()"
                for table in _IDENTITY_TABLES
            ),
        ),
        sqlite=(
            _GENERATION_TABLE,
            _GENERATION_ROW,
            *(
                f"CREATE TRIGGER {table}_{event.lower()} AFTER {event} ON {table} "
                "BEGIN UPDATE auth_generation SET generation = generation + 1; END"
                for table in _IDENTITY_TABLES
                for event in ("INSERT", "UPDATE", "DELETE")
            ),
        ),
    ),
    # a listing reads only the index: (parent_id, name, deleted) holds every
    # column of the live-children query (hatrac/model/directory/names.py
    # NameQueries.children), so both databases scan it in name order without
    # visiting a table row (an index-only scan on PostgreSQL, a covering index
    # on SQLite); it replaces the two indexes whose keys are its prefixes, so a
    # new name still updates one index on parent_id, not two
    _migration(
        "names-listing-1",
        "CREATE INDEX names_parent_live ON names (parent_id, name, deleted)",
        "DROP INDEX names_parent_name",
        "DROP INDEX names_parent",
    ),
    # a name's current version is max(id) of its live versions (the GET path's
    # statement, the web listing): on PostgreSQL an index on (name_id, id) finds
    # it in one probe; without it, a plan made before the versions table has
    # statistics walked the primary key backwards from the newest id, filtering
    # on name_id, and read every version for a namespace (which has none) or an
    # object written long ago. SQLite searches the (name_id, version) index
    # either way, so it is spared the extra index on every PUT.
    Migration(
        "versions-current-1",
        postgres=("CREATE INDEX versions_name_current ON versions (name_id, id)",),
        sqlite=(),
    ),
    # a session or token lookup beside a name resolution reads the user's row only
    # when the accounts' generation moved (accounts.with_identity): the user's name,
    # display name and groups as a JSON array, NULL when the user is disabled or
    # gone. A function, so that the skipped call costs the statement nothing, where
    # a join with auth_users cost its plan's node and lock on every request
    Migration(
        "auth-identity-1",
        postgres=(
            """CREATE FUNCTION hatrac_user_identity(user_id BIGINT) RETURNS TEXT
            LANGUAGE plpgsql STABLE AS $$
            BEGIN
                RETURN (
                    SELECT json_build_array(u.name, u.display_name, hatrac_user_groups(u.id))
                    FROM auth_users u WHERE u.id = $1 AND NOT u.disabled);
            END $$""",
        ),
        sqlite=(),
    ),
    # a session or token lookup beside a name resolution reads nothing but the
    # accounts' generation while it has not moved since the process saw the
    # credential live (accounts.with_identity, credentials.PendingLookup.known):
    # so every change that can end or shorten a credential moves it too, in the
    # changing transaction: a session deleted (a logout, a password change, a
    # user removed or disabled, the expiry sweep, an administrator's DELETE or
    # TRUNCATE), a session's row changed other than lengthened, a token changed
    # (revoked) or removed. A new session or token, and an extension, do not (no
    # process can hold what was not made yet; a process trusts what it holds
    # only until the expiry it holds). On PostgreSQL only statements that
    # changed a row count (the sweep at each login mostly deletes none); the
    # credential's lookup is a function, which the statement skips at no cost
    Migration(
        "auth-credentials-1",
        postgres=(
            """CREATE FUNCTION hatrac_auth_rows_changed() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF EXISTS (SELECT 1 FROM gone) THEN
                    UPDATE auth_generation SET generation = generation + 1;
                END IF;
                RETURN NULL;
            END $$""",
            """CREATE FUNCTION hatrac_auth_sessions_changed() RETURNS trigger
            LANGUAGE plpgsql AS $$
            BEGIN
                IF EXISTS (SELECT 1 FROM gone o WHERE NOT EXISTS (
                        SELECT 1 FROM made n WHERE n.id_hash = o.id_hash
                        AND n.user_id = o.user_id AND n.since = o.since
                        AND n.expires >= o.expires)) THEN
                    UPDATE auth_generation SET generation = generation + 1;
                END IF;
                RETURN NULL;
            END $$""",
            "CREATE TRIGGER auth_sessions_deleted AFTER DELETE ON auth_sessions "
            "REFERENCING OLD TABLE AS gone "
            "FOR EACH STATEMENT EXECUTE FUNCTION hatrac_auth_rows_changed()",
            "CREATE TRIGGER auth_sessions_updated AFTER UPDATE ON auth_sessions "
            "REFERENCING OLD TABLE AS gone NEW TABLE AS made "
            "FOR EACH STATEMENT EXECUTE FUNCTION hatrac_auth_sessions_changed()",
            "CREATE TRIGGER auth_tokens_updated AFTER UPDATE ON auth_tokens "
            "REFERENCING OLD TABLE AS gone "
            "FOR EACH STATEMENT EXECUTE FUNCTION hatrac_auth_rows_changed()",
            "CREATE TRIGGER auth_tokens_deleted AFTER DELETE ON auth_tokens "
            "REFERENCING OLD TABLE AS gone "
            "FOR EACH STATEMENT EXECUTE FUNCTION hatrac_auth_rows_changed()",
            *(
                f"CREATE TRIGGER {table}_truncated AFTER TRUNCATE ON {table} "
                "FOR EACH STATEMENT EXECUTE FUNCTION hatrac_auth_changed()"
                for table in ("auth_sessions", "auth_tokens")
            ),
            # the identity of a live credential as a JSON array (user id, since,
            # expires, name, display name, groups), NULL when it matches nothing
            # live or its user is disabled or gone; a bearer value is a token,
            # else a session id (as accounts.identity._CREDENTIAL)
            """CREATE FUNCTION hatrac_credential_identity(
                credential_kind TEXT, credential_hash TEXT, moment DOUBLE PRECISION
            ) RETURNS TEXT LANGUAGE plpgsql STABLE AS $$
            DECLARE
                holder BIGINT;
                began DOUBLE PRECISION;
                ends DOUBLE PRECISION;
            BEGIN
                IF credential_kind = 'bearer' THEN
                    SELECT t.user_id, t.created, t.expires INTO holder, began, ends
                    FROM auth_tokens t WHERE t.token_hash = credential_hash
                    AND NOT t.revoked AND (t.expires IS NULL OR t.expires > moment);
                END IF;
                IF holder IS NULL THEN
                    SELECT s.user_id, s.since, s.expires INTO holder, began, ends
                    FROM auth_sessions s WHERE s.id_hash = credential_hash AND s.expires > moment;
                END IF;
                IF holder IS NULL THEN
                    RETURN NULL;
                END IF;
                RETURN (
                    SELECT json_build_array(
                        u.id, began, ends, u.name, u.display_name, hatrac_user_groups(u.id))
                    FROM auth_users u WHERE u.id = holder AND NOT u.disabled);
            END $$""",
        ),
        sqlite=(
            *(
                f"CREATE TRIGGER {table}_{event.lower()} AFTER {event} ON {table} "
                "BEGIN UPDATE auth_generation SET generation = generation + 1; END"
                for table, event in (
                    ("auth_sessions", "DELETE"),
                    ("auth_tokens", "UPDATE"),
                    ("auth_tokens", "DELETE"),
                )
            ),
            "CREATE TRIGGER auth_sessions_update AFTER UPDATE ON auth_sessions "
            "WHEN NEW.id_hash IS NOT OLD.id_hash OR NEW.user_id IS NOT OLD.user_id "
            "OR NEW.since IS NOT OLD.since OR NEW.expires < OLD.expires "
            "BEGIN UPDATE auth_generation SET generation = generation + 1; END",
        ),
    ),
]


def _ensure_table(tx: Any) -> None:
    tx.execute(
        "CREATE TABLE IF NOT EXISTS hatrac_schema ("
        "name TEXT PRIMARY KEY, applied DOUBLE PRECISION NOT NULL)"
    )


def applied_migrations(tx: Any) -> list[str]:
    _ensure_table(tx)
    return [row[0] for row in tx.all("SELECT name FROM hatrac_schema ORDER BY applied, name")]


def pending_migrations(tx: Any) -> list[Migration]:
    done = set(applied_migrations(tx))
    return [m for m in MIGRATIONS if m.name not in done]


def migrate(tx: Any) -> list[str]:
    """Apply every pending migration; returns the names applied."""
    import time

    applied = []
    for migration in pending_migrations(tx):
        for statement in getattr(migration, tx.dialect):
            tx.execute(statement)
        tx.execute(
            "INSERT INTO hatrac_schema (name, applied) VALUES (%s, %s)",
            (migration.name, time.time()),
        )
        applied.append(migration.name)
    return applied
