//! The metadata index behind one interface, with two backends:
//!
//! - [`sqlite`]: the embedded default, one file in the state directory owned
//!   by one server process;
//! - [`postgres`]: a shared PostgreSQL database for any number of servers.
//!
//! The service talks only to [`Index`]; nothing backend-specific (file
//! moves, `-wal` ownership, pragmas, connection pools, leases) is visible
//! above this module. The index is derived data: the bucket is the source of
//! truth, and `reindex` rebuilds the index from it.
//!
//! Cross-process coordination of one hash (an upload and a delete of the
//! same content through different servers) goes through [`Index::claim`]:
//! SQLite has one process, whose in-memory hash locks suffice
//! ([`Claim::Local`]); PostgreSQL hands out a lease row that every server
//! honours ([`Claim::Held`]).

/// Call the same method on whichever backend this is.
macro_rules! each {
    ($self:ident, $i:ident => $call:expr) => {
        match $self {
            Index::Sqlite($i) => $call,
            Index::Postgres($i) => $call,
        }
    };
}

pub mod jobs;
mod listing;
pub mod postgres;
pub mod sessions;
pub mod sqlite;
mod types;
pub mod uploads;

use std::path::{Path, PathBuf};
use std::time::Duration;

use asset_catalog_proto::{Asset, AssetDetail, AssetPage, Sha256Hex};
use time::OffsetDateTime;

use crate::Config;
use crate::auth::{NewToken, Presented, Scopes};

pub use listing::NAME_WALK_ROWS;
pub use postgres::{Lease, PgIndex, PgOptions, SslMode};
pub use sessions::{ClientSummary, DayCount, NewSession, Overview, SessionGrant, SessionKind};
pub use sqlite::SqliteIndex;
pub use types::{Cursor, ListFilter, SightingCursor, SightingPage};
pub use types::{Inserted, NewAsset, RebuildRecord, SightingRecord};
pub use types::{KeyRow, TokenGrant, TokenLimits, TokenRow, TokenVerdict};
pub use uploads::{NewUpload, StoredPart, UploadRow};

/// Why an index operation failed.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("cannot open the index {}: {source}", path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("cannot create the index directory {}: {source}", path.display())]
    Directory {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "the index {} is unreadable ({source}); stop the server and run `asset-catalog-server reindex` to rebuild it from the bucket",
        path.display()
    )]
    Corrupt {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error(
        "the index file {} is damaged: {problem}; stop the server and run `asset-catalog-server reindex` to rebuild the index from the bucket",
        file.display()
    )]
    Damaged { file: PathBuf, problem: String },
    #[error(
        "the index {where_} has schema version {found}, newer than the {supported} this server understands; run a newer server"
    )]
    TooNew {
        where_: String,
        found: i64,
        supported: i64,
    },
    #[error("the index is out of disk space: {0}")]
    Full(#[source] rusqlite::Error),
    #[error("index query failed: {0}")]
    Sqlite(#[source] rusqlite::Error),
    #[error("[index] {0}")]
    Config(String),
    #[error("the PostgreSQL index at {url} is unreachable: {why}")]
    Unavailable { url: String, why: String },
    #[error("PostgreSQL index query failed: {0}")]
    Postgres(String),
    #[error("cannot give {} back to uid {uid}: {source}", path.display())]
    Chown {
        path: PathBuf,
        uid: u32,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot move the unreadable index {} aside: {source}", path.display())]
    MoveAside {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("index worker failed: {0}")]
    Task(String),
}

/// What [`Index::claim`] got for one hash.
#[derive(Debug)]
pub enum Claim {
    /// One process owns the index: its in-memory hash lock is enough.
    Local,
    /// A lease every server honours; released when dropped.
    Held(Lease),
    /// Another server held the hash for the whole wait.
    Busy,
}

/// What a claim is for: a check counts content under an `Upload` claim as
/// arriving (present).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Upload,
    Other,
}

/// One item of [`Index::export`]: the asset count first, then each asset.
#[derive(Debug)]
pub enum ExportItem {
    Count(u64),
    Asset(Box<AssetDetail>),
}

/// Handle to the index; cheap to clone.
#[derive(Debug, Clone)]
pub enum Index {
    Sqlite(SqliteIndex),
    Postgres(PgIndex),
}

impl Index {
    /// Open (creating or migrating as needed) the index `config` names:
    /// PostgreSQL when `[index] url` is set, else the SQLite file.
    pub async fn open(config: &Config) -> Result<Self, IndexError> {
        match PgOptions::from_config(config)? {
            Some(options) => Ok(Self::Postgres(PgIndex::open(options).await?)),
            None => Ok(Self::Sqlite(SqliteIndex::open(&config.index_path()).await?)),
        }
    }

    /// Open (creating if needed) the SQLite index at `path`.
    pub async fn open_sqlite(path: &Path) -> Result<Self, IndexError> {
        Ok(Self::Sqlite(SqliteIndex::open(path).await?))
    }

    /// Open for `reindex`: an unreadable SQLite file is moved aside first
    /// (where it went is returned); PostgreSQL opens as usual.
    pub async fn open_for_rebuild(config: &Config) -> Result<(Self, Option<PathBuf>), IndexError> {
        match PgOptions::from_config(config)? {
            Some(options) => Ok((Self::Postgres(PgIndex::open(options).await?), None)),
            None => {
                let (index, aside) = SqliteIndex::open_or_move_aside(&config.index_path()).await?;
                Ok((Self::Sqlite(index), aside))
            }
        }
    }

    /// Open for a command-line tool (finish with [`Index::finish_tool`]);
    /// when opening fails, SQLite files it created are given back too.
    pub async fn open_tool(config: &Config) -> Result<Self, IndexError> {
        match Self::open(config).await {
            Ok(index) => Ok(index),
            Err(e) => {
                if config.index.url.is_none() {
                    sqlite::restore_ownership(&config.index_path())?;
                }
                Err(e)
            }
        }
    }

    /// Done with an index opened by a command-line tool: SQLite files it
    /// created as root are given back to the state directory's owner.
    pub fn finish_tool(&self) -> Result<(), IndexError> {
        match self {
            Self::Sqlite(i) => i.restore_ownership(),
            Self::Postgres(_) => Ok(()),
        }
    }

    /// Where the index lives, for logs (never a password).
    pub fn describe(&self) -> String {
        match self {
            Self::Sqlite(i) => i.path().display().to_string(),
            Self::Postgres(i) => i.describe().to_owned(),
        }
    }

    /// Can several servers share this index?
    pub fn is_shared(&self) -> bool {
        matches!(self, Self::Postgres(_))
    }

    /// Liveness check: a constant-cost query.
    pub async fn ping(&self) -> Result<(), IndexError> {
        each!(self, i => i.ping().await)
    }

    /// Number of assets (a full count: for start-up and tools, not probes).
    pub async fn count(&self) -> Result<u64, IndexError> {
        each!(self, i => i.count().await)
    }

    /// One asset.
    pub async fn get(&self, sha: &Sha256Hex) -> Result<Option<Asset>, IndexError> {
        each!(self, i => i.get(sha).await)
    }

    /// One asset with one page of its sightings, most recent first.
    pub async fn detail(
        &self,
        sha: &Sha256Hex,
        page: SightingPage,
    ) -> Result<Option<AssetDetail>, IndexError> {
        each!(self, i => i.detail(sha, page).await)
    }

    /// Who deleted `sha` and when, oldest first.
    pub async fn deletions(
        &self,
        sha: &Sha256Hex,
    ) -> Result<Vec<(Option<String>, OffsetDateTime)>, IndexError> {
        each!(self, i => i.deletions(sha).await)
    }

    /// The hashes of `wanted` the index does not have, in request order, without duplicates.
    pub async fn missing(&self, wanted: Vec<Sha256Hex>) -> Result<Vec<Sha256Hex>, IndexError> {
        each!(self, i => i.missing(wanted).await)
    }

    /// One page of assets matching `filter`.
    pub async fn list(&self, filter: ListFilter) -> Result<AssetPage, IndexError> {
        each!(self, i => i.list(filter).await)
    }

    /// Insert `asset` unless the hash is known, then record `sighting`.
    pub async fn insert(
        &self,
        asset: NewAsset,
        sighting: SightingRecord,
        cap: u64,
    ) -> Result<Inserted, IndexError> {
        each!(self, i => i.insert(asset, sighting, cap).await)
    }

    /// Record a sighting of known content; `None` when the hash is unknown,
    /// else the asset and whether the sighting was recorded (not at the cap).
    pub async fn record_sighting(
        &self,
        sha: &Sha256Hex,
        sighting: SightingRecord,
        cap: u64,
    ) -> Result<Option<(Asset, bool)>, IndexError> {
        each!(self, i => i.record_sighting(sha, sighting, cap).await)
    }

    /// Remove an asset and its sightings, noting who did it; `false` when it was not there.
    pub async fn delete(&self, sha: &Sha256Hex, token: Option<&str>) -> Result<bool, IndexError> {
        each!(self, i => i.delete(sha, token).await)
    }

    /// Replace the whole index with the records received from `rx`, in one
    /// transaction; nothing changes unless the sender ends with `None`.
    pub async fn rebuild(
        &self,
        rx: tokio::sync::mpsc::Receiver<Option<RebuildRecord>>,
    ) -> Result<Option<u64>, IndexError> {
        each!(self, i => i.rebuild(rx).await)
    }

    /// Index content found in the bucket (`fsck --repair`); `false` when
    /// the hash was indexed meanwhile.
    pub async fn adopt(&self, record: RebuildRecord) -> Result<bool, IndexError> {
        each!(self, i => i.adopt(record).await)
    }

    /// Point an asset at another key (`fsck --repair`).
    pub async fn set_key(&self, sha: &Sha256Hex, key: &str) -> Result<bool, IndexError> {
        each!(self, i => i.set_key(sha, key).await)
    }

    /// Up to `limit` assets' keys after `after`, in hash order (`fsck`).
    pub async fn key_page(
        &self,
        after: Option<Sha256Hex>,
        limit: usize,
    ) -> Result<Vec<KeyRow>, IndexError> {
        each!(self, i => i.key_page(after, limit).await)
    }

    /// Send every asset with its sightings to `tx`, from one consistent
    /// snapshot: the count first, then the assets oldest first.
    pub async fn export(
        &self,
        tx: tokio::sync::mpsc::Sender<ExportItem>,
    ) -> Result<(), IndexError> {
        each!(self, i => i.export(tx).await)
    }

    /// Hold `sha` against other servers for `purpose`, waiting at most `wait`.
    pub async fn claim(
        &self,
        sha: &Sha256Hex,
        purpose: Purpose,
        wait: Duration,
    ) -> Result<Claim, IndexError> {
        match self {
            Self::Sqlite(_) => Ok(Claim::Local),
            Self::Postgres(i) => i.claim(sha, purpose, wait).await,
        }
    }

    /// Of `hashes`, those some server is uploading now (held for `Upload`).
    pub async fn arriving(&self, hashes: &[Sha256Hex]) -> Result<Vec<Sha256Hex>, IndexError> {
        match self {
            Self::Sqlite(_) => Ok(Vec::new()),
            Self::Postgres(i) => i.arriving(hashes).await,
        }
    }

    /// Store a new token's hash; returns the token (its text is shown once).
    pub async fn create_token(
        &self,
        name: &str,
        scopes: &Scopes,
        limits: &TokenLimits,
    ) -> Result<NewToken, IndexError> {
        each!(self, i => i.create_token(name, scopes, limits).await)
    }

    /// Every token, oldest first.
    pub async fn list_tokens(&self) -> Result<Vec<TokenRow>, IndexError> {
        each!(self, i => i.list_tokens().await)
    }

    /// Revoke by id; `false` when no such (unrevoked) token exists.
    pub async fn revoke_token(&self, id: &str) -> Result<bool, IndexError> {
        each!(self, i => i.revoke_token(id).await)
    }

    /// Check a presented token against its row (on every request).
    pub async fn verify_token(
        &self,
        presented: &Presented<'_>,
    ) -> Result<TokenVerdict, IndexError> {
        each!(self, i => i.verify_token(presented).await)
    }

    /// Bytes of content token `id` stored first.
    pub async fn token_stored_bytes(&self, id: &str) -> Result<u64, IndexError> {
        each!(self, i => i.token_stored_bytes(id).await)
    }

    /// Record that a token was used (callers rate-limit this).
    pub async fn touch_token(&self, id: &str) -> Result<(), IndexError> {
        each!(self, i => i.touch_token(id).await)
    }
}
