//! Schema and connection settings of the state database. WAL with
//! `synchronous=NORMAL`: a crash of the process loses nothing committed; a
//! power loss may lose the last transactions but never corrupts the file,
//! and the startup scan re-discovers whatever they recorded.

use std::path::Path;

use rusqlite::Connection;

use super::StateError;

/// Current schema version (`PRAGMA user_version`).
pub const VERSION: i64 = 1;

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
    conn.execute_batch("BEGIN IMMEDIATE")
        .map_err(|e| corrupt(path, &e))?;
    let made = conn
        .query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0))
        .and_then(|v| {
            if v != 0 {
                return Ok(false);
            }
            conn.execute_batch(&format!("{SCHEMA_V1} PRAGMA user_version = {VERSION};"))?;
            Ok(true)
        });
    let end = match made {
        Ok(_) => conn.execute_batch("COMMIT"),
        Err(_) => conn.execute_batch("ROLLBACK"),
    };
    let made = made.map_err(|e| corrupt(path, &e))?;
    end.map_err(|e| corrupt(path, &e))?;
    Ok(made)
}

fn check_tables(conn: &Connection, path: &Path) -> Result<(), StateError> {
    conn.query_row(
        "SELECT (SELECT count(*) FROM files) + (SELECT count(*) FROM queue) \
         + (SELECT count(*) FROM meta)",
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
}
