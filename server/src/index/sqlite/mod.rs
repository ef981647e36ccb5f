//! The embedded index backend: SQLite (WAL) in the state directory, owned
//! by one server process. One writer
//! connection behind a mutex plus a small pool of read-only connections; every
//! call runs on tokio's blocking pool, never on the async executor.
//!
//! The index is derived data: the bucket is the source of truth, and
//! `reindex` rebuilds the index from it. A corrupt file yields
//! [`IndexError::Corrupt`], whose message names `reindex` as the recovery.

mod files;
mod group;
mod jobs;
mod query;
mod schema;
mod sessions;
mod tokens;
mod tools;
mod uploads;
mod write;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use rusqlite::{Connection, ErrorCode, OptionalExtension};

pub use schema::SCHEMA_VERSION;

pub(crate) use files::restore_ownership;

use super::IndexError;

/// Read connections open at most: reads beyond that wait for one. (They
/// used to open a connection of their own and drop it after: each open
/// parses the whole schema, and under 32 concurrent HEADs that churn held
/// B6 to 2,335 req/s — issue 17.)
const MAX_READERS: usize = 8;

/// Handle to a SQLite index; cheap to clone.
#[derive(Debug, Clone)]
pub struct SqliteIndex {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    path: PathBuf,
    writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
    /// One permit per read connection (`MAX_READERS`).
    read_permits: Arc<tokio::sync::Semaphore>,
    /// Changes waiting for the next group commit (see `group`).
    queued: group::Queue,
}

impl SqliteIndex {
    /// Open (creating if needed) and migrate the index at `path`.
    pub async fn open(path: &Path) -> Result<Self, IndexError> {
        let path = path.to_path_buf();
        let writer = tokio::task::spawn_blocking({
            let path = path.clone();
            move || schema::open_writer(&path)
        })
        .await
        .map_err(|e| IndexError::Task(e.to_string()))??;
        Ok(Self {
            shared: Arc::new(Shared {
                path,
                writer: Mutex::new(writer),
                readers: Mutex::new(Vec::new()),
                read_permits: Arc::new(tokio::sync::Semaphore::new(MAX_READERS)),
                queued: group::Queue::default(),
            }),
        })
    }

    /// The index file.
    pub fn path(&self) -> &Path {
        &self.shared.path
    }

    /// Run `f` with a read-only connection on the blocking pool.
    pub(super) async fn read<T, F>(&self, f: F) -> Result<T, IndexError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        let shared = Arc::clone(&self.shared);
        let permit = Arc::clone(&shared.read_permits)
            .acquire_owned()
            .await
            .map_err(|e| IndexError::Task(e.to_string()))?;
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let conn = shared.take_reader()?;
            let out = f(&conn).map_err(|e| IndexError::from_sqlite(&shared.path, e));
            shared.return_reader(conn);
            out
        })
        .await
        .map_err(|e| IndexError::Task(e.to_string()))?
    }

    /// Run `f` with the single writer connection on the blocking pool.
    pub(super) async fn write<T, F>(&self, f: F) -> Result<T, IndexError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        let shared = Arc::clone(&self.shared);
        tokio::task::spawn_blocking(move || {
            let mut conn = shared.writer.lock().unwrap_or_else(PoisonError::into_inner);
            f(&mut conn).map_err(|e| IndexError::from_sqlite(&shared.path, e))
        })
        .await
        .map_err(|e| IndexError::Task(e.to_string()))?
    }

    /// Liveness check: a trivial query on a read connection.
    pub async fn ping(&self) -> Result<(), IndexError> {
        self.read(|conn| {
            conn.query_row("SELECT 1 FROM assets LIMIT 1", [], |_| Ok(()))
                .optional()
                .map(drop)
        })
        .await
    }

    /// Number of assets (a full count: for start-up and tools, not probes).
    pub async fn count(&self) -> Result<u64, IndexError> {
        self.read(query::count_assets).await
    }
}

impl Shared {
    fn take_reader(&self) -> Result<Connection, IndexError> {
        let pooled = self
            .readers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        match pooled {
            Some(conn) => Ok(conn),
            None => schema::open_reader(&self.path),
        }
    }

    fn return_reader(&self, conn: Connection) {
        let mut readers = self.readers.lock().unwrap_or_else(PoisonError::into_inner);
        if readers.len() < MAX_READERS {
            readers.push(conn);
        }
    }
}

impl IndexError {
    /// Classify a SQLite error raised while using the index at `path`.
    pub(crate) fn from_sqlite(path: &Path, source: rusqlite::Error) -> Self {
        match source.sqlite_error_code() {
            Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase) => Self::Corrupt {
                path: path.to_path_buf(),
                source,
            },
            Some(ErrorCode::DiskFull) => Self::Full(source),
            _ => Self::Sqlite(source),
        }
    }
}
