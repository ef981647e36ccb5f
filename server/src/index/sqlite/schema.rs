//! Connection setup and the versioned schema (`PRAGMA user_version`).
//!
//! Durability: WAL with `synchronous = FULL`. With NORMAL a committed upload
//! can be lost on power failure (the database stays consistent, but the last
//! transactions roll back) while the client already got `201` and will never
//! resend; the asset would then be in the bucket but missing from the index
//! until someone runs `reindex`. FULL costs one WAL fsync per commit, which is
//! negligible next to storing the object itself (the file store fsyncs too).

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use crate::index::IndexError;

/// Schema version this server writes.
pub const SCHEMA_VERSION: i64 = 7;

/// How long a connection waits for another's lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

const SCHEMA_V1: &str = r"
CREATE TABLE assets (
    sha256       TEXT PRIMARY KEY NOT NULL,
    key          TEXT NOT NULL,
    size         INTEGER NOT NULL,
    content_type TEXT NOT NULL,
    name         TEXT NOT NULL,
    first_seen   INTEGER NOT NULL,  -- unix nanoseconds, UTC
    last_seen    INTEGER NOT NULL
) STRICT;
CREATE INDEX assets_by_first_seen ON assets (first_seen, sha256);

CREATE TABLE sightings (
    sha256  TEXT NOT NULL REFERENCES assets (sha256) ON DELETE CASCADE,
    client  TEXT NOT NULL,
    path    TEXT NOT NULL,
    name    TEXT NOT NULL,
    mtime   TEXT,                   -- RFC 3339, as the client reported it
    seen_at INTEGER NOT NULL,       -- unix nanoseconds, UTC
    PRIMARY KEY (sha256, client, path)
) STRICT, WITHOUT ROWID;
CREATE INDEX sightings_by_client ON sightings (client, sha256);
";

/// Version 2: bearer tokens (only the SHA-256 of each secret is stored).
const SCHEMA_V2: &str = r"
CREATE TABLE tokens (
    id          TEXT PRIMARY KEY NOT NULL,
    name        TEXT NOT NULL,
    scopes      TEXT NOT NULL,      -- comma-separated: upload,read,admin
    secret_hash BLOB NOT NULL,      -- SHA-256 of the secret
    created     INTEGER NOT NULL,   -- unix nanoseconds, UTC
    last_used   INTEGER,
    revoked     INTEGER
) STRICT;
";

/// Version 3: who did what (the token id of each upload, sighting and
/// delete; never the secret), token bindings and quotas, and each token's
/// stored bytes (content it stored first; duplicates cost nothing).
const SCHEMA_V3: &str = r"
ALTER TABLE tokens ADD COLUMN client TEXT;           -- bound client id, NULL = any
ALTER TABLE tokens ADD COLUMN max_bytes INTEGER;     -- stored-bytes quota, NULL = none
ALTER TABLE tokens ADD COLUMN rate_per_min INTEGER;  -- uploads per minute, NULL = none
ALTER TABLE tokens ADD COLUMN stored_bytes INTEGER NOT NULL DEFAULT 0;
ALTER TABLE assets ADD COLUMN uploaded_by TEXT;      -- token id, NULL = no auth / before v3
ALTER TABLE sightings ADD COLUMN token TEXT;
CREATE INDEX sightings_by_seen ON sightings (sha256, seen_at DESC, client, path);
CREATE TABLE deletions (
    sha256     TEXT NOT NULL,
    key        TEXT NOT NULL,
    size       INTEGER NOT NULL,
    token      TEXT,
    deleted_at INTEGER NOT NULL     -- unix nanoseconds, UTC
) STRICT;
";

/// Version 4: name search through a trigram index (see `index/listing.rs`).
/// `names` is the asset's name and every distinct name its sightings ever
/// had, newline-separated; the triggers keep it and its FTS5 trigram index
/// (external content: the index stores only trigrams and `assets` rowids)
/// current for every writer. Sightings are only ever removed with their
/// asset, so `names` never misses a name a sighting has.
const SCHEMA_V4: &str = r"
ALTER TABLE assets ADD COLUMN names TEXT NOT NULL DEFAULT '';
UPDATE assets AS a SET names = (SELECT group_concat(n, char(10)) FROM
    (SELECT a.name AS n UNION SELECT s.name FROM sightings s WHERE s.sha256 = a.sha256));
CREATE VIRTUAL TABLE assets_names USING fts5 (
    names, content = 'assets', content_rowid = 'rowid', tokenize = 'trigram'
);
INSERT INTO assets_names (assets_names) VALUES ('rebuild');
CREATE TRIGGER assets_names_insert AFTER INSERT ON assets BEGIN
    INSERT INTO assets_names (rowid, names) VALUES (new.rowid, new.names);
END;
CREATE TRIGGER assets_names_delete AFTER DELETE ON assets BEGIN
    INSERT INTO assets_names (assets_names, rowid, names) VALUES ('delete', old.rowid, old.names);
END;
CREATE TRIGGER assets_names_update AFTER UPDATE OF names ON assets BEGIN
    INSERT INTO assets_names (assets_names, rowid, names) VALUES ('delete', old.rowid, old.names);
    INSERT INTO assets_names (rowid, names) VALUES (new.rowid, new.names);
END;
CREATE TRIGGER sightings_name_insert AFTER INSERT ON sightings BEGIN
    UPDATE assets SET names = names || char(10) || new.name WHERE sha256 = new.sha256
        AND instr(char(10) || names || char(10), char(10) || new.name || char(10)) = 0;
END;
CREATE TRIGGER sightings_name_update AFTER UPDATE OF name ON sightings BEGIN
    UPDATE assets SET names = names || char(10) || new.name WHERE sha256 = new.sha256
        AND instr(char(10) || names || char(10), char(10) || new.name || char(10)) = 0;
END;
";

/// Version 5: background jobs (see `jobs/`). What the metadata job read
/// (`media` as JSON, with `kind` and `taken_at` beside it for filters),
/// whether a thumbnail exists (`thumbnail`: its extension, '' when none can
/// exist, NULL while undecided), and what scrub last found (`integrity`,
/// `verified_at`: 0 = never). The `jobs` queue: one row per (kind, hash),
/// removed when the job succeeds; new assets get a metadata job from a
/// trigger, so every writer (upload, `reindex`, `fsck --repair`) enqueues
/// it, and the existing assets are backfilled here.
const SCHEMA_V5: &str = r"
ALTER TABLE assets ADD COLUMN media TEXT;
ALTER TABLE assets ADD COLUMN kind TEXT;
ALTER TABLE assets ADD COLUMN taken_at INTEGER;
ALTER TABLE assets ADD COLUMN thumbnail TEXT;
ALTER TABLE assets ADD COLUMN integrity TEXT NOT NULL DEFAULT 'unverified';
ALTER TABLE assets ADD COLUMN verified_at INTEGER NOT NULL DEFAULT 0;
CREATE INDEX assets_by_verified ON assets (verified_at);
CREATE INDEX assets_by_kind ON assets (kind, first_seen, sha256);
CREATE INDEX assets_by_taken ON assets (taken_at) WHERE taken_at IS NOT NULL;
CREATE INDEX assets_with_problems ON assets (integrity) WHERE integrity IN ('corrupt', 'missing');
CREATE TABLE jobs (
    id        INTEGER PRIMARY KEY,
    kind      TEXT NOT NULL,                  -- metadata | thumbnail | scrub
    sha256    TEXT NOT NULL,
    state     TEXT NOT NULL DEFAULT 'queued', -- queued | running | failed
    attempts  INTEGER NOT NULL DEFAULT 0,
    run_after INTEGER NOT NULL DEFAULT 0,     -- unix nanoseconds
    owner     TEXT,                           -- the worker holding it
    heartbeat INTEGER,
    error     TEXT,
    created   INTEGER NOT NULL,
    UNIQUE (kind, sha256)
) STRICT;
CREATE INDEX jobs_ready ON jobs (kind, state, run_after, id);
CREATE INDEX jobs_running ON jobs (heartbeat) WHERE state = 'running';
INSERT INTO jobs (kind, sha256, created) SELECT 'metadata', sha256, first_seen FROM assets;
CREATE TRIGGER assets_jobs_insert AFTER INSERT ON assets BEGIN
    INSERT OR IGNORE INTO jobs (kind, sha256, created) VALUES ('metadata', new.sha256, new.first_seen);
END;
CREATE TRIGGER assets_jobs_delete AFTER DELETE ON assets BEGIN
    DELETE FROM jobs WHERE sha256 = old.sha256;
END;
";

/// Version 6: the web UI (see `index/sessions.rs`). `sessions` holds
/// sign-in sessions and one-time sign-in links (SHA-256 of their secret;
/// a session signed in with a token goes with it). `days` and `clients`
/// are the overview's figures, kept by triggers for every writer and
/// backfilled here: assets first seen and their bytes per UTC day
/// (`day` = floor(first_seen / 86,400 s)), and per client the sightings it
/// has now and when it last reported one. Assets never change `size` or
/// `first_seen`; a sighting's refresh changes only `seen_at`. One writer
/// and updates in place: plain row triggers (a `reindex` at 200,000 assets
/// deletes 0.8 s slower with them).
const SCHEMA_V6: &str = r"
-- Deleting an asset deletes its jobs: without this, by a scan of the queue.
CREATE INDEX jobs_by_sha256 ON jobs (sha256);

CREATE TABLE sessions (
    id_hash  BLOB PRIMARY KEY NOT NULL,   -- SHA-256 of the cookie's or link's secret
    kind     TEXT NOT NULL,               -- session | link
    token_id TEXT REFERENCES tokens (id) ON DELETE CASCADE,  -- NULL = token-less
    scopes   TEXT NOT NULL,               -- a token-less session's own
    csrf     TEXT NOT NULL,
    created  INTEGER NOT NULL,            -- unix nanoseconds, UTC
    expires  INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
CREATE INDEX sessions_by_expiry ON sessions (expires);
CREATE INDEX sessions_by_token ON sessions (token_id) WHERE token_id IS NOT NULL;

CREATE TABLE days (
    day    INTEGER PRIMARY KEY NOT NULL,  -- days since 1970-01-01, UTC
    assets INTEGER NOT NULL,
    bytes  INTEGER NOT NULL
) STRICT;
INSERT INTO days (day, assets, bytes)
    SELECT iif(first_seen >= 0, first_seen / 86400000000000, (first_seen + 1) / 86400000000000 - 1),
           count(*), sum(size)
    FROM assets GROUP BY 1;
CREATE TRIGGER assets_days_insert AFTER INSERT ON assets BEGIN
    INSERT INTO days (day, assets, bytes) VALUES
        (iif(new.first_seen >= 0, new.first_seen / 86400000000000,
             (new.first_seen + 1) / 86400000000000 - 1), 1, new.size)
        ON CONFLICT (day) DO UPDATE SET assets = assets + 1, bytes = bytes + excluded.bytes;
END;
CREATE TRIGGER assets_days_delete AFTER DELETE ON assets BEGIN
    UPDATE days SET assets = assets - 1, bytes = bytes - old.size
        WHERE day = iif(old.first_seen >= 0, old.first_seen / 86400000000000,
                        (old.first_seen + 1) / 86400000000000 - 1);
END;

CREATE TABLE clients (
    client    TEXT PRIMARY KEY NOT NULL,
    sightings INTEGER NOT NULL,
    last_seen INTEGER NOT NULL            -- unix nanoseconds, UTC
) STRICT, WITHOUT ROWID;
INSERT INTO clients (client, sightings, last_seen)
    SELECT client, count(*), max(seen_at) FROM sightings GROUP BY client;
CREATE TRIGGER sightings_clients_insert AFTER INSERT ON sightings BEGIN
    INSERT INTO clients (client, sightings, last_seen) VALUES (new.client, 1, new.seen_at)
        ON CONFLICT (client) DO UPDATE SET sightings = sightings + 1,
            last_seen = max(last_seen, excluded.last_seen);
END;
CREATE TRIGGER sightings_clients_update AFTER UPDATE OF client, seen_at ON sightings BEGIN
    UPDATE clients SET sightings = sightings - 1 WHERE client = old.client;
    INSERT INTO clients (client, sightings, last_seen) VALUES (new.client, 1, new.seen_at)
        ON CONFLICT (client) DO UPDATE SET sightings = sightings + 1,
            last_seen = max(last_seen, excluded.last_seen);
END;
CREATE TRIGGER sightings_clients_delete AFTER DELETE ON sightings BEGIN
    UPDATE clients SET sightings = sightings - 1 WHERE client = old.client;
END;
";

/// Version 7: resumable uploads (tus, see `index/uploads.rs`). One
/// `uploads` row per session, its stored parts in `upload_parts` (a row
/// per part: appending one writes a page or two, where a list in a column
/// would rewrite itself every time; measured there). No reference to
/// `tokens`: a session's row goes only with its multipart upload, which the
/// expiry job aborts.
const SCHEMA_V7: &str = r#"
CREATE TABLE uploads (
    id           TEXT PRIMARY KEY NOT NULL,  -- random, URL-safe: /v1/uploads/{id}
    token_id     TEXT,                       -- the token that created it; NULL = auth off
    sha256       TEXT NOT NULL,              -- declared in Upload-Metadata
    length       INTEGER NOT NULL CHECK (length >= 0),
    name         TEXT NOT NULL,
    path         TEXT,
    mtime        TEXT,                       -- as the client reported it
    client       TEXT NOT NULL,
    key          TEXT NOT NULL,              -- the final object key
    multipart_id TEXT NOT NULL,              -- the store's resumable upload id
    hash_state   BLOB NOT NULL,              -- SHA-256 state at "offset"
    "offset"     INTEGER NOT NULL DEFAULT 0 CHECK ("offset" BETWEEN 0 AND length),
    created      INTEGER NOT NULL,           -- unix nanoseconds, UTC
    updated      INTEGER NOT NULL,
    expires      INTEGER NOT NULL
) STRICT;
CREATE INDEX uploads_by_expiry ON uploads (expires);

CREATE TABLE upload_parts (
    upload_id TEXT NOT NULL REFERENCES uploads (id) ON DELETE CASCADE,
    number    INTEGER NOT NULL,              -- the store's part number
    id        TEXT NOT NULL,                 -- the store's part id (S3: its ETag)
    PRIMARY KEY (upload_id, number)
) STRICT, WITHOUT ROWID;
"#;

/// Open the writer connection, creating the file and migrating the schema.
pub(super) fn open_writer(path: &Path) -> Result<Connection, IndexError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|source| IndexError::Directory {
            path: dir.to_path_buf(),
            source,
        })?;
    }
    if let Some((file, problem)) = sqlite_file::find(path) {
        return Err(IndexError::Damaged { file, problem });
    }
    let mut conn = Connection::open(path).map_err(|source| IndexError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    configure(&conn).map_err(|e| IndexError::from_sqlite(path, e))?;
    conn.pragma_update(None, "journal_mode", "WAL")
        .map_err(|e| IndexError::from_sqlite(path, e))?;
    migrate(&mut conn, path)?;
    Ok(conn)
}

/// Open a read-only connection to an existing index.
pub(super) fn open_reader(path: &Path) -> Result<Connection, IndexError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(|source| IndexError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    configure(&conn).map_err(|e| IndexError::from_sqlite(path, e))?;
    conn.pragma_update(None, "mmap_size", READER_MMAP)
        .map_err(|e| IndexError::from_sqlite(path, e))?;
    Ok(conn)
}

/// Bytes of the index file a reader maps instead of copying pages into its
/// own cache. With SQLite's default 2 MiB cache each, eight readers of a
/// 100,000-asset index (134 MB) kept evicting and re-reading the same pages
/// under B6's HEAD load, through SQLite's page-cache mutex (6,900 HEAD/s;
/// 9,400-10,000 mapped). Mapped, the readers share the kernel's page cache:
/// a 16 MiB private cache each did as well but held 109 MiB of anonymous
/// memory. RSS then counts the mapped pages of every reader (shared page
/// cache, reclaimable; PSS is the real share). Writes still go through the
/// writer's `pwrite`; pages past this size are read as before.
const READER_MMAP: i64 = 1 << 30;

/// Prepared statements kept per connection. The index's code has about 50
/// distinct statements, and rusqlite keeps 16 by default: every connection
/// re-parsed its statements as they fell out of the cache, over a quarter of
/// the server's samples under B6's HEAD load (issue 17).
const STATEMENT_CACHE: usize = 128;

fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(())
}

fn migrate(conn: &mut Connection, path: &Path) -> Result<(), IndexError> {
    let sqlite = |e| IndexError::from_sqlite(path, e);
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .map_err(sqlite)?;
    if version > SCHEMA_VERSION {
        return Err(IndexError::TooNew {
            where_: path.display().to_string(),
            found: version,
            supported: SCHEMA_VERSION,
        });
    }
    if version == SCHEMA_VERSION {
        return Ok(());
    }
    let tx = conn.transaction().map_err(sqlite)?;
    if version < 1 {
        tx.execute_batch(SCHEMA_V1).map_err(sqlite)?;
    }
    if version < 2 {
        tx.execute_batch(SCHEMA_V2).map_err(sqlite)?;
    }
    if version < 3 {
        tx.execute_batch(SCHEMA_V3).map_err(sqlite)?;
    }
    if version < 4 {
        tx.execute_batch(SCHEMA_V4).map_err(sqlite)?;
    }
    if version < 5 {
        tx.execute_batch(SCHEMA_V5).map_err(sqlite)?;
    }
    if version < 6 {
        tx.execute_batch(SCHEMA_V6).map_err(sqlite)?;
    }
    if version < 7 {
        tx.execute_batch(SCHEMA_V7).map_err(sqlite)?;
    }
    tx.pragma_update(None, "user_version", SCHEMA_VERSION)
        .map_err(sqlite)?;
    tx.commit().map_err(sqlite)
}

#[cfg(test)]
mod tests;
