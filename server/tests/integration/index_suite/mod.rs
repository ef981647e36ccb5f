//! One conformance suite for the index interface, run over both backends:
//! SQLite in a temp dir and a private PostgreSQL 15 cluster (testkit). Every
//! case talks only to `Index`, so a behaviour that differs between the two
//! fails here. The cases: `records` (assets, sightings, listing, tokens),
//! `search` (the name search past the newest-first walk), `tools` (rebuild, export, fsck's calls, coordination),
//! `jobs` (the job queue and the columns jobs fill), `sessions` (the web
//! UI's sessions, sign-in links and overview) and `uploads` (resumable
//! upload sessions).

mod jobs;
mod records;
mod search;
mod sessions;
mod tools;
mod uploads;

pub use jobs::job_queue;
pub use records::{assets_and_sightings, listing, tokens};
pub use search::name_search;
pub use sessions::sessions;
pub use tools::{coordination, tools};
pub use uploads::uploads;

use std::time::Duration;

use asset_catalog_proto::Sha256Hex;
use asset_catalog_server::config::SecretString;
use asset_catalog_server::index::{Index, NewAsset, PgIndex, PgOptions, SightingRecord, SslMode};
use time::OffsetDateTime;

/// An open index and what keeps its backend alive.
pub struct Backend {
    pub index: Index,
    _sqlite: Option<tempfile::TempDir>,
    _pg: Option<testkit::pg::PgCluster>,
}

/// Which backend a case runs on.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    Sqlite,
    Postgres,
}

impl Backend {
    pub async fn open(kind: Kind) -> Self {
        match kind {
            Kind::Sqlite => {
                let dir = tempfile::tempdir().expect("tempdir");
                let index = Index::open_sqlite(&dir.path().join("index.sqlite3"))
                    .await
                    .expect("open sqlite");
                Self {
                    index,
                    _sqlite: Some(dir),
                    _pg: None,
                }
            }
            Kind::Postgres => {
                let pg = tokio::task::spawn_blocking(testkit::pg::PgCluster::start)
                    .await
                    .expect("start PostgreSQL");
                let index = Index::Postgres(
                    PgIndex::open(pg_options(&pg, "catalog"))
                        .await
                        .expect("open postgres"),
                );
                Self {
                    index,
                    _sqlite: None,
                    _pg: Some(pg),
                }
            }
        }
    }
}

/// Options for database `db` of `pg` (created here), password from the cluster.
pub fn pg_options(pg: &testkit::pg::PgCluster, db: &str) -> PgOptions {
    let url = pg.create_database(db);
    PgOptions {
        config: url.parse().expect("url"),
        password: Some(SecretString::new(pg.superuser_password())),
        ssl: SslMode::Disable,
        pool_size: 8,
        connect_timeout: Duration::from_secs(5),
    }
}

pub fn sha(i: u32) -> Sha256Hex {
    let mut bytes = [0u8; 32];
    bytes[..4].copy_from_slice(&i.to_be_bytes());
    Sha256Hex::from_digest(bytes)
}

pub fn at(secs: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_700_000_000 + secs).expect("time")
}

pub fn asset(i: u32, name: &str, content_type: &str, secs: i64) -> NewAsset {
    NewAsset {
        sha256: sha(i),
        key: format!("{}.{}", sha(i), name.rsplit('.').next().unwrap_or("bin")),
        size: u64::from(i) * 10,
        content_type: content_type.into(),
        name: name.into(),
        first_seen: at(secs),
        uploaded_by: None,
        verified_at: None,
    }
}

pub fn place(client: &str, path: &str, secs: i64) -> SightingRecord {
    SightingRecord {
        client: client.into(),
        path: path.into(),
        name: path.rsplit('/').next().unwrap_or(path).into(),
        mtime: Some(at(secs - 5)),
        seen_at: at(secs),
        token: None,
    }
}
