//! The shared index backend: one PostgreSQL database for any number of
//! servers. A deadpool pool of tokio-postgres connections (TLS through
//! rustls when `sslmode = "verify-full"`), a versioned schema migrated under
//! an advisory lock, and lease rows that coordinate one hash across servers
//! (see [`lease`]). Times are stored as Unix nanoseconds, like SQLite's, so
//! cursors mean the same on both backends.

mod connect;
mod jobs;
mod lease;
mod query;
mod schema;
mod sessions;
mod tokens;
mod tools;
mod uploads;
mod write;

use deadpool_postgres::{Object, Pool, PoolError};

pub use connect::{PgOptions, SslMode};
pub use lease::Lease;
pub use schema::SCHEMA_VERSION;

use super::IndexError;

/// Handle to a PostgreSQL index; cheap to clone.
#[derive(Clone)]
pub struct PgIndex {
    pool: Pool,
    /// `postgres://user@host:port/db`, for messages (never a password).
    shown: std::sync::Arc<str>,
}

impl std::fmt::Debug for PgIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgIndex")
            .field("url", &self.shown)
            .field("pool", &self.pool.status())
            .finish()
    }
}

impl PgIndex {
    /// Connect, and create or migrate the schema (once across servers
    /// starting together: under an advisory lock).
    pub async fn open(options: PgOptions) -> Result<Self, IndexError> {
        let shown: std::sync::Arc<str> = options.shown().into();
        let pool = options.pool()?;
        let index = Self { pool, shown };
        let mut client = index.client().await?;
        schema::migrate(&mut client)
            .await
            .map_err(|e| e.into_index_error(&index))?;
        Ok(index)
    }

    /// `postgres://user@host:port/db`.
    pub fn describe(&self) -> &str {
        &self.shown
    }

    /// A pooled connection; `Unavailable` when PostgreSQL cannot be reached
    /// within the connect timeout.
    async fn client(&self) -> Result<Object, IndexError> {
        self.pool.get().await.map_err(|e| self.unreachable(e))
    }

    fn unreachable(&self, e: PoolError) -> IndexError {
        let why = match e {
            PoolError::Backend(e) => describe_pg(&e),
            PoolError::Timeout(kind) => format!("no connection within the timeout ({kind:?})"),
            other => other.to_string(),
        };
        IndexError::Unavailable {
            url: self.shown.to_string(),
            why,
        }
    }

    /// Classify a query error: a lost connection makes the index
    /// unavailable; anything PostgreSQL answered is a query failure.
    fn fail(&self, e: impl Into<PgFail>) -> IndexError {
        let e = match e.into() {
            PgFail::Pg(e) => e,
            PgFail::Bad(why) => return IndexError::Postgres(why),
        };
        if e.as_db_error().is_some() {
            IndexError::Postgres(describe_pg(&e))
        } else {
            IndexError::Unavailable {
                url: self.shown.to_string(),
                why: describe_pg(&e),
            }
        }
    }

    /// Liveness check: a round trip on a pooled connection.
    pub async fn ping(&self) -> Result<(), IndexError> {
        let client = self.client().await?;
        client
            .simple_query("SELECT 1")
            .await
            .map(drop)
            .map_err(|e| self.fail(e))
    }

    /// Number of assets.
    pub async fn count(&self) -> Result<u64, IndexError> {
        let client = self.client().await?;
        let row = client
            .query_one("SELECT count(*) FROM assets", &[])
            .await
            .map_err(|e| self.fail(e))?;
        Ok(u64::try_from(row.get::<_, i64>(0)).unwrap_or_default())
    }
}

/// A failed statement, or a row this server cannot read.
#[derive(Debug)]
pub(super) enum PgFail {
    Pg(tokio_postgres::Error),
    Bad(String),
}

impl From<tokio_postgres::Error> for PgFail {
    fn from(e: tokio_postgres::Error) -> Self {
        Self::Pg(e)
    }
}

/// A tokio-postgres error with its cause (the bare `Display` says only "db error").
fn describe_pg(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}: {}", db.code().code(), db.message()),
        None => match std::error::Error::source(e) {
            Some(cause) => format!("{e}: {cause}"),
            None => e.to_string(),
        },
    }
}
