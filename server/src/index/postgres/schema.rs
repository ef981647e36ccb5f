//! The PostgreSQL schema, versioned in `schema_migrations`. Every server
//! migrates at start inside one transaction that first takes a
//! transaction-scoped advisory lock: N servers starting at once queue on it,
//! the first applies what is missing, the others find it applied. DDL is
//! transactional in PostgreSQL, so a failed migration leaves nothing behind.
//!
//! Text that is compared or ordered (hashes, clients, paths) uses the "C"
//! collation: byte order, as SQLite's, so cursors page identically on both
//! backends and `(first_seen, sha256)` comparisons use the index.

use deadpool_postgres::Object;

use crate::index::IndexError;

/// Schema version this server writes.
pub const SCHEMA_VERSION: i64 = 4;

/// Any constant both sides agree on: "asset-catalog migrations".
const MIGRATION_LOCK: i64 = 0x6173_7365_745f_6d69;

/// Each version's DDL, applied in order.
const MIGRATIONS: &[(i64, &str)] = &[(1, V1), (2, V2), (3, V3), (4, V4)];

const V1: &str = r#"
CREATE EXTENSION IF NOT EXISTS pg_trgm;

CREATE TABLE assets (
    sha256       TEXT COLLATE "C" PRIMARY KEY,
    key          TEXT NOT NULL,
    size         BIGINT NOT NULL,
    content_type TEXT NOT NULL,
    name         TEXT NOT NULL,
    first_seen   BIGINT NOT NULL,   -- unix nanoseconds, UTC
    last_seen    BIGINT NOT NULL,
    uploaded_by  TEXT,              -- token id, NULL = no auth
    -- The asset's name and every distinct name its sightings ever had,
    -- newline-separated (kept by sightings_add_name): what a name search
    -- asks the trigram index about (index/listing.rs).
    names        TEXT NOT NULL DEFAULT ''
);
CREATE INDEX assets_by_first_seen ON assets (first_seen, sha256);
CREATE INDEX assets_by_type ON assets (content_type text_pattern_ops);
CREATE INDEX assets_by_names ON assets USING gin (names gin_trgm_ops);

CREATE TABLE sightings (
    sha256  TEXT COLLATE "C" NOT NULL REFERENCES assets (sha256) ON DELETE CASCADE,
    client  TEXT COLLATE "C" NOT NULL,
    path    TEXT COLLATE "C" NOT NULL,
    name    TEXT NOT NULL,
    mtime   TEXT,                   -- RFC 3339, as the client reported it
    seen_at BIGINT NOT NULL,        -- unix nanoseconds, UTC
    token   TEXT,
    PRIMARY KEY (sha256, client, path)
);
CREATE INDEX sightings_by_client ON sightings (client, sha256);
CREATE INDEX sightings_by_seen ON sightings (sha256, seen_at DESC, client, path);

-- Sightings are only ever removed with their asset, so `names` never
-- misses a name a sighting has.
CREATE FUNCTION asset_catalog_add_name() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE assets SET names = names || E'\n' || NEW.name WHERE sha256 = NEW.sha256
        AND strpos(E'\n' || names || E'\n', E'\n' || NEW.name || E'\n') = 0;
    RETURN NULL;
END
$$;
CREATE TRIGGER sightings_add_name AFTER INSERT OR UPDATE OF name ON sightings
    FOR EACH ROW EXECUTE FUNCTION asset_catalog_add_name();

CREATE TABLE tokens (
    id           TEXT COLLATE "C" PRIMARY KEY,
    name         TEXT NOT NULL,
    scopes       TEXT NOT NULL,     -- comma-separated: upload,read,admin
    secret_hash  BYTEA NOT NULL,    -- SHA-256 of the secret
    created      BIGINT NOT NULL,
    last_used    BIGINT,
    revoked      BIGINT,
    client       TEXT,
    max_bytes    BIGINT,
    rate_per_min BIGINT,
    stored_bytes BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE deletions (
    sha256     TEXT NOT NULL,
    key        TEXT NOT NULL,
    size       BIGINT NOT NULL,
    token      TEXT,
    deleted_at BIGINT NOT NULL
);
CREATE INDEX deletions_by_sha ON deletions (sha256);

-- One row per hash some server is working on (see lease.rs).
CREATE TABLE leases (
    sha256     TEXT COLLATE "C" PRIMARY KEY,
    owner      TEXT NOT NULL,
    purpose    TEXT NOT NULL,       -- upload | other
    expires_at TIMESTAMPTZ NOT NULL
);
"#;

/// Version 2: background jobs, as SQLite's version 5 (see `sqlite/schema.rs`).
const V2: &str = r#"
ALTER TABLE assets ADD COLUMN media JSONB;
ALTER TABLE assets ADD COLUMN kind TEXT;
ALTER TABLE assets ADD COLUMN taken_at BIGINT;
ALTER TABLE assets ADD COLUMN thumbnail TEXT;
ALTER TABLE assets ADD COLUMN integrity TEXT NOT NULL DEFAULT 'unverified';
ALTER TABLE assets ADD COLUMN verified_at BIGINT NOT NULL DEFAULT 0;
CREATE INDEX assets_by_verified ON assets (verified_at);
CREATE INDEX assets_by_kind ON assets (kind, first_seen, sha256);
CREATE INDEX assets_by_taken ON assets (taken_at) WHERE taken_at IS NOT NULL;
CREATE INDEX assets_with_problems ON assets (integrity) WHERE integrity IN ('corrupt', 'missing');

CREATE TABLE jobs (
    id        BIGSERIAL PRIMARY KEY,
    kind      TEXT NOT NULL,                  -- metadata | thumbnail | scrub
    sha256    TEXT COLLATE "C" NOT NULL,
    state     TEXT NOT NULL DEFAULT 'queued', -- queued | running | failed
    attempts  INTEGER NOT NULL DEFAULT 0,
    run_after BIGINT NOT NULL DEFAULT 0,      -- unix nanoseconds
    owner     TEXT,                           -- the worker holding it
    heartbeat BIGINT,
    error     TEXT,
    created   BIGINT NOT NULL,
    UNIQUE (kind, sha256)
);
CREATE INDEX jobs_ready ON jobs (kind, state, run_after, id);
CREATE INDEX jobs_running ON jobs (heartbeat) WHERE state = 'running';
INSERT INTO jobs (kind, sha256, created) SELECT 'metadata', sha256, first_seen FROM assets;

CREATE FUNCTION asset_catalog_asset_jobs() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO jobs (kind, sha256, created) VALUES ('metadata', NEW.sha256, NEW.first_seen)
            ON CONFLICT (kind, sha256) DO NOTHING;
    ELSE
        DELETE FROM jobs WHERE sha256 = OLD.sha256;
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER assets_jobs AFTER INSERT OR DELETE ON assets
    FOR EACH ROW EXECUTE FUNCTION asset_catalog_asset_jobs();
"#;

/// Version 3: the web UI, as SQLite's version 6 (see `sqlite/schema.rs`
/// and `index/sessions.rs`), except that `days` and `clients` rows are
/// split by `pg_backend_pid() % 64` (summed when read): concurrent uploads
/// on different connections never wait on one another's row until commit.
///
/// A row that one transaction updates again and again grows a chain of
/// versions that each later update walks: 5,000 sightings of one client in
/// one transaction took 0.39 s, 20,000 took 4.3 s, and deleting 300,000
/// sightings with a row trigger 252 s. So deletes are counted per
/// statement, over its transition table (`reindex` deleting everything
/// updates each row once), and a rebuild, which inserts row by row in one
/// transaction, sets `asset_catalog.deferred`: the insert triggers then
/// note each change in tables of the transaction's own
/// ([`DEFER_SUMMARIES`]), applied once at its end ([`APPLY_DEFERRED`]).
/// Uploads, one asset per transaction, take the row triggers' direct path
/// (with per-statement insert triggers B8's insert rate at 200,000 assets
/// fell 28 %, with row triggers 11 %).
const V3: &str = r#"
-- Deleting an asset deletes its jobs: without this, by a scan of the queue.
CREATE INDEX jobs_by_sha256 ON jobs (sha256);

CREATE TABLE sessions (
    id_hash  BYTEA PRIMARY KEY,       -- SHA-256 of the cookie's or link's secret
    kind     TEXT NOT NULL,           -- session | link
    token_id TEXT COLLATE "C" REFERENCES tokens (id) ON DELETE CASCADE,  -- NULL = token-less
    scopes   TEXT NOT NULL,           -- a token-less session's own
    csrf     TEXT NOT NULL,
    created  BIGINT NOT NULL,         -- unix nanoseconds, UTC
    expires  BIGINT NOT NULL
);
CREATE INDEX sessions_by_expiry ON sessions (expires);
CREATE INDEX sessions_by_token ON sessions (token_id) WHERE token_id IS NOT NULL;

-- Days since 1970-01-01 (UTC) of a time in unix nanoseconds.
CREATE FUNCTION asset_catalog_day(nanos BIGINT) RETURNS BIGINT
    LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN nanos >= 0 THEN nanos / 86400000000000
                ELSE (nanos + 1) / 86400000000000 - 1 END
$$;

CREATE TABLE days (
    day    BIGINT NOT NULL,
    shard  INTEGER NOT NULL,
    assets BIGINT NOT NULL,
    bytes  BIGINT NOT NULL,
    PRIMARY KEY (day, shard)
);
INSERT INTO days (day, shard, assets, bytes)
    SELECT asset_catalog_day(first_seen), 0, count(*), sum(size) FROM assets GROUP BY 1;

CREATE FUNCTION asset_catalog_day_added() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('asset_catalog.deferred', true) = 'on' THEN
        INSERT INTO pg_temp.deferred_days VALUES (asset_catalog_day(NEW.first_seen), 1, NEW.size);
    ELSE
        INSERT INTO days AS d (day, shard, assets, bytes)
            VALUES (asset_catalog_day(NEW.first_seen), pg_backend_pid() % 64, 1, NEW.size)
            ON CONFLICT (day, shard) DO UPDATE
                SET assets = d.assets + 1, bytes = d.bytes + EXCLUDED.bytes;
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER assets_days_insert AFTER INSERT ON assets
    FOR EACH ROW EXECUTE FUNCTION asset_catalog_day_added();

CREATE FUNCTION asset_catalog_days_removed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO days AS d (day, shard, assets, bytes)
        SELECT asset_catalog_day(first_seen), pg_backend_pid() % 64, -count(*), -sum(size)
        FROM gone GROUP BY 1
        ON CONFLICT (day, shard) DO UPDATE
            SET assets = d.assets + EXCLUDED.assets, bytes = d.bytes + EXCLUDED.bytes;
    RETURN NULL;
END
$$;
CREATE TRIGGER assets_days_delete AFTER DELETE ON assets REFERENCING OLD TABLE AS gone
    FOR EACH STATEMENT EXECUTE FUNCTION asset_catalog_days_removed();

CREATE TABLE clients (
    client    TEXT COLLATE "C" NOT NULL,
    shard     INTEGER NOT NULL,
    sightings BIGINT NOT NULL,
    last_seen BIGINT NOT NULL,        -- unix nanoseconds, UTC
    PRIMARY KEY (client, shard)
);
INSERT INTO clients (client, shard, sightings, last_seen)
    SELECT client, 0, count(*), max(seen_at) FROM sightings GROUP BY client;

-- A new sighting, or a refresh (`added` = 0). No writer changes a
-- sighting's client; were one to, the old client would lose it here.
CREATE FUNCTION asset_catalog_client_seen() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    added BIGINT := 1;
BEGIN
    IF TG_OP = 'UPDATE' THEN
        IF OLD.client = NEW.client THEN
            added := 0;
        ELSE
            INSERT INTO clients AS c (client, shard, sightings, last_seen)
                VALUES (OLD.client, pg_backend_pid() % 64, -1, OLD.seen_at)
                ON CONFLICT (client, shard) DO UPDATE SET sightings = c.sightings - 1;
        END IF;
    END IF;
    IF current_setting('asset_catalog.deferred', true) = 'on' THEN
        INSERT INTO pg_temp.deferred_clients VALUES (NEW.client, added, NEW.seen_at);
    ELSE
        INSERT INTO clients AS c (client, shard, sightings, last_seen)
            VALUES (NEW.client, pg_backend_pid() % 64, added, NEW.seen_at)
            ON CONFLICT (client, shard) DO UPDATE SET sightings = c.sightings + EXCLUDED.sightings,
                last_seen = greatest(c.last_seen, EXCLUDED.last_seen);
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER sightings_clients_insert AFTER INSERT ON sightings
    FOR EACH ROW EXECUTE FUNCTION asset_catalog_client_seen();
CREATE TRIGGER sightings_clients_update AFTER UPDATE OF client, seen_at ON sightings
    FOR EACH ROW WHEN (OLD.client <> NEW.client OR NEW.seen_at > OLD.seen_at)
    EXECUTE FUNCTION asset_catalog_client_seen();

-- A deleted sighting's seen_at was counted when it was stored, so taking
-- the greatest never moves last_seen.
CREATE FUNCTION asset_catalog_clients_removed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO clients AS c (client, shard, sightings, last_seen)
        SELECT client, pg_backend_pid() % 64, -count(*), max(seen_at) FROM gone GROUP BY client
        ON CONFLICT (client, shard) DO UPDATE SET sightings = c.sightings + EXCLUDED.sightings,
            last_seen = greatest(c.last_seen, EXCLUDED.last_seen);
    RETURN NULL;
END
$$;
CREATE TRIGGER sightings_clients_delete AFTER DELETE ON sightings REFERENCING OLD TABLE AS gone
    FOR EACH STATEMENT EXECUTE FUNCTION asset_catalog_clients_removed();
"#;

/// Version 4: resumable uploads, as SQLite's version 7 (see
/// `sqlite/schema.rs` and `index/uploads.rs`).
const V4: &str = r#"
CREATE TABLE uploads (
    id           TEXT COLLATE "C" PRIMARY KEY,  -- random, URL-safe: /v1/uploads/{id}
    token_id     TEXT,                          -- the token that created it; NULL = auth off
    sha256       TEXT NOT NULL,                 -- declared in Upload-Metadata
    length       BIGINT NOT NULL CHECK (length >= 0),
    name         TEXT NOT NULL,
    path         TEXT,
    mtime        TEXT,                          -- as the client reported it
    client       TEXT NOT NULL,
    key          TEXT NOT NULL,                 -- the final object key
    multipart_id TEXT NOT NULL,                 -- the store's resumable upload id
    hash_state   BYTEA NOT NULL,                -- SHA-256 state at "offset"
    "offset"     BIGINT NOT NULL DEFAULT 0 CHECK ("offset" BETWEEN 0 AND length),
    created      BIGINT NOT NULL,               -- unix nanoseconds, UTC
    updated      BIGINT NOT NULL,
    expires      BIGINT NOT NULL
);
CREATE INDEX uploads_by_expiry ON uploads (expires);

CREATE TABLE upload_parts (
    upload_id TEXT COLLATE "C" NOT NULL REFERENCES uploads (id) ON DELETE CASCADE,
    number    BIGINT NOT NULL,                  -- the store's part number
    id        TEXT NOT NULL,                    -- the store's part id (S3: its ETag)
    PRIMARY KEY (upload_id, number)
);
"#;

/// Start of a rebuild: the summary triggers note changes in tables of this
/// transaction's own (see [`V3`]).
pub(super) const DEFER_SUMMARIES: &str = "
SET LOCAL asset_catalog.deferred = 'on';
CREATE TEMP TABLE deferred_days (day BIGINT, assets BIGINT, bytes BIGINT) ON COMMIT DROP;
CREATE TEMP TABLE deferred_clients (client TEXT, sightings BIGINT, last_seen BIGINT) ON COMMIT DROP;
";

/// End of a rebuild: what the triggers noted, one update per row.
pub(super) const APPLY_DEFERRED: &str = "
SET LOCAL asset_catalog.deferred = 'off';
INSERT INTO days AS d (day, shard, assets, bytes)
    SELECT day, pg_backend_pid() % 64, sum(assets), sum(bytes) FROM pg_temp.deferred_days GROUP BY day
    ON CONFLICT (day, shard) DO UPDATE
        SET assets = d.assets + EXCLUDED.assets, bytes = d.bytes + EXCLUDED.bytes;
INSERT INTO clients AS c (client, shard, sightings, last_seen)
    SELECT client, pg_backend_pid() % 64, sum(sightings), max(last_seen)
    FROM pg_temp.deferred_clients GROUP BY client
    ON CONFLICT (client, shard) DO UPDATE SET sightings = c.sightings + EXCLUDED.sightings,
        last_seen = greatest(c.last_seen, EXCLUDED.last_seen);
";

/// Bring the schema to [`SCHEMA_VERSION`]; refuse a newer one.
pub(super) async fn migrate(client: &mut Object) -> Result<(), MigrateError> {
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             version    BIGINT PRIMARY KEY,
             applied_at TIMESTAMPTZ NOT NULL DEFAULT now(),
             applied_by TEXT NOT NULL DEFAULT current_user
         )",
    )
    .await?;
    let found: i64 = tx
        .query_one(
            "SELECT coalesce(max(version), 0) FROM schema_migrations",
            &[],
        )
        .await?
        .get(0);
    if found > SCHEMA_VERSION {
        return Err(MigrateError::TooNew(found));
    }
    for (version, ddl) in MIGRATIONS.iter().filter(|(v, _)| *v > found) {
        tx.batch_execute(ddl).await?;
        tx.execute(
            "INSERT INTO schema_migrations (version) VALUES ($1)",
            &[version],
        )
        .await?;
        tracing::info!(version, "applied index schema migration");
    }
    tx.commit().await?;
    Ok(())
}

/// Why migrating failed.
#[derive(Debug)]
pub(super) enum MigrateError {
    Pg(tokio_postgres::Error),
    TooNew(i64),
}

impl From<tokio_postgres::Error> for MigrateError {
    fn from(e: tokio_postgres::Error) -> Self {
        Self::Pg(e)
    }
}

impl MigrateError {
    pub(super) fn into_index_error(self, index: &super::PgIndex) -> IndexError {
        match self {
            Self::Pg(e) => index.fail(e),
            Self::TooNew(found) => IndexError::TooNew {
                where_: index.describe().to_owned(),
                found,
                supported: SCHEMA_VERSION,
            },
        }
    }
}
