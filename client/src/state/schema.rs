//! Schema, migrations and connection settings of the state database. WAL with
//! `synchronous=NORMAL`: a crash of the process loses nothing committed; a
//! power loss may lose the last transactions but never corrupts the file,
//! and the startup scan re-discovers whatever they recorded.

use std::path::Path;

use rusqlite::Connection;

use super::StateError;

/// Current schema version (`PRAGMA user_version`): 1 plus [`MIGRATIONS`].
pub const VERSION: i64 = 3;

const SCHEMA_V1: &str = "
CREATE TABLE files (
    id        INTEGER PRIMARY KEY,
    path      BLOB NOT NULL UNIQUE,
    dev       INTEGER NOT NULL,
    ino       INTEGER NOT NULL,
    size      INTEGER NOT NULL,
    mtime_ns  INTEGER NOT NULL,
    ctime_ns  INTEGER NOT NULL,
    sha256    TEXT,
    status    TEXT NOT NULL
              CHECK (status IN ('pending', 'hashed', 'synced', 'failed', 'gone')),
    version   INTEGER NOT NULL DEFAULT 0,
    updated_ms INTEGER NOT NULL,
    synced_ms INTEGER
);
CREATE INDEX files_inode ON files (ino, dev);
CREATE INDEX files_status ON files (status);
CREATE TABLE queue (
    file_id     INTEGER PRIMARY KEY REFERENCES files (id) ON DELETE CASCADE,
    attempts    INTEGER NOT NULL DEFAULT 0,
    last_error  TEXT,
    next_try_ms INTEGER NOT NULL,
    enqueued_ms INTEGER NOT NULL
);
CREATE INDEX queue_due ON queue (next_try_ms);
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;
";

/// The step from version N to N + 1 is `MIGRATIONS[N - 1]`.
const MIGRATIONS: [&str; 2] = [
    // 2: resumable (tus) upload sessions, one per file at most.
    "
CREATE TABLE upload_sessions (
    file_id    INTEGER PRIMARY KEY REFERENCES files (id) ON DELETE CASCADE,
    url        TEXT NOT NULL,
    sha256     TEXT NOT NULL,
    length     INTEGER NOT NULL,
    dev        INTEGER NOT NULL,
    ino        INTEGER NOT NULL,
    mtime_ns   INTEGER NOT NULL,
    rel_path   TEXT NOT NULL,
    committed  INTEGER NOT NULL,
    created_ms INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL
);
",
    // 3: what a rescan reads of each directory's rows (`known_children`)
    // straight from one index, without a second lookup per row into the
    // table (issue 17: a tenth of a 100,000-file rescan; the index adds a
    // third to the file's size and one index entry to each row's writes).
    "
CREATE INDEX files_walk ON files (path, dev, ino, size, mtime_ns, ctime_ns, status);
",
];

fn corrupt(path: &Path, e: &rusqlite::Error) -> StateError {
    StateError::Corrupt {
        path: path.to_path_buf(),
        detail: e.to_string(),
    }
}

/// Set pragmas and create or upgrade the schema.
pub fn migrate(conn: &Connection, path: &Path) -> Result<(), StateError> {
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .map_err(|e| corrupt(path, &e))?;
    if !mode.eq_ignore_ascii_case("wal") {
        tracing::warn!(state.path = %path.display(), mode, "state database is not in WAL mode");
    }
    conn.execute_batch(
        "PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; PRAGMA temp_store = MEMORY;",
    )?;
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(|e| corrupt(path, &e))?;
    match version {
        0 => {
            if !create(conn, path)? {
                // Another process (`status` next to a starting daemon) made
                // it between our look and our lock.
                return check_tables(conn, path);
            }
            tracing::info!(
                state.path = %path.display(),
                "new state database: every file is hashed and checked against the server once"
            );
            Ok(())
        }
        VERSION => check_tables(conn, path),
        found if (1..VERSION).contains(&found) => {
            upgrade(conn, path)?;
            check_tables(conn, path)
        }
        found => Err(StateError::TooNew {
            path: path.to_path_buf(),
            found,
            known: VERSION,
        }),
    }
}

/// Create the schema unless another connection did first; true if this
/// one did. The version is read again under the write lock.
fn create(conn: &Connection, path: &Path) -> Result<bool, StateError> {
    locked(conn, path, |from| {
        if from != 0 {
            return Ok(false);
        }
        conn.execute_batch(SCHEMA_V1)?;
        for step in MIGRATIONS {
            conn.execute_batch(step)?;
        }
        conn.execute_batch(&format!("PRAGMA user_version = {VERSION};"))?;
        Ok(true)
    })
}

/// Apply the migrations from the version found (read again under the write
/// lock: another process may have upgraded it meanwhile) to [`VERSION`], in
/// one transaction.
fn upgrade(conn: &Connection, path: &Path) -> Result<(), StateError> {
    let from = locked(conn, path, |from| {
        let first = usize::try_from(from.max(1) - 1).unwrap_or(usize::MAX);
        for step in MIGRATIONS.iter().skip(first) {
            conn.execute_batch(step)?;
        }
        conn.execute_batch(&format!("PRAGMA user_version = {VERSION};"))?;
        Ok(from)
    })?;
    if from < VERSION {
        tracing::info!(state.path = %path.display(), from, to = VERSION, "state database upgraded");
    }
    Ok(())
}

/// Run `f` with the version found, in one write transaction taken before
/// the version is read (committed if `f` succeeds, rolled back otherwise).
fn locked<T>(
    conn: &Connection,
    path: &Path,
    f: impl FnOnce(i64) -> rusqlite::Result<T>,
) -> Result<T, StateError> {
    conn.execute_batch("BEGIN IMMEDIATE")
        .map_err(|e| corrupt(path, &e))?;
    let done = conn
        .query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0))
        .and_then(f);
    let end = match done {
        Ok(_) => conn.execute_batch("COMMIT"),
        Err(_) => conn.execute_batch("ROLLBACK"),
    };
    let done = done.map_err(|e| corrupt(path, &e))?;
    end.map_err(|e| corrupt(path, &e))?;
    Ok(done)
}

fn check_tables(conn: &Connection, path: &Path) -> Result<(), StateError> {
    // One row of each table, not a count: a count reads a whole index.
    conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM files) + EXISTS (SELECT 1 FROM queue) \
         + EXISTS (SELECT 1 FROM meta) + EXISTS (SELECT 1 FROM upload_sessions)",
        [],
        |r| r.get::<_, i64>(0),
    )
    .map_err(|e| corrupt(path, &e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_connections_creating_one_new_database_both_succeed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("s.sqlite3");
        let a = Connection::open(&p).expect("a");
        let b = Connection::open(&p).expect("b");
        // Both saw version 0 before either created the schema.
        assert!(create(&a, &p).expect("a creates"));
        assert!(!create(&b, &p).expect("b finds it made"));
        migrate(&b, &p).expect("b migrates");
    }

    #[test]
    fn a_version_1_database_is_upgraded_keeping_its_rows() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("s.sqlite3");
        let old = Connection::open(&p).expect("open");
        old.execute_batch(&format!(
            "{SCHEMA_V1} PRAGMA user_version = 1;
             INSERT INTO files (path, dev, ino, size, mtime_ns, ctime_ns, status, updated_ms)
             VALUES (x'2f772f61', 1, 2, 3, 4, 5, 'pending', 6);"
        ))
        .expect("a version 1 database");
        drop(old);
        let conn = Connection::open(&p).expect("reopen");
        migrate(&conn, &p).expect("upgrade");
        let (version, files, sessions): (i64, i64, i64) = conn
            .query_row(
                "SELECT (SELECT user_version FROM pragma_user_version),
                        (SELECT count(*) FROM files), (SELECT count(*) FROM upload_sessions)",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .expect("read");
        assert_eq!((version, files, sessions), (VERSION, 1, 0));
        migrate(&conn, &p).expect("a second open changes nothing");
        // A rescan's read of a directory comes from the covering index alone.
        let plan: String = conn
            .query_row(
                "EXPLAIN QUERY PLAN SELECT path, id, dev, ino, size, mtime_ns, ctime_ns, status
                 FROM files WHERE path >= x'2f' AND path < x'30' ORDER BY path LIMIT 512",
                [],
                |r| r.get(3),
            )
            .expect("plan");
        assert!(plan.contains("COVERING INDEX files_walk"), "{plan}");
    }
}
