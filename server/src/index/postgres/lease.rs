//! Leases: how servers sharing the index take turns on one hash.
//!
//! An upload of new content and a delete must not interleave across
//! servers (a delete between another server's object PUT and its row insert
//! would leave an object without a row). Each takes a lease first: a row in
//! `leases` keyed by the hash, owned by one request, expiring after
//! [`LEASE`] unless renewed. Taking one is a single statement that inserts
//! the row or takes over an expired one; a request that finds a live lease
//! polls (backing off to 250 ms) until it is free or its wait is over. A
//! heartbeat renews the lease every [`LEASE`]/3 while it is held, and
//! dropping the [`Lease`] deletes the row. A server killed while holding
//! one blocks that hash for at most [`LEASE`]. Expiry is judged by
//! PostgreSQL's clock (`now()`), never by the servers' clocks.
//!
//! No connection is held while a lease is: a slow upload costs a row, not a
//! pooled connection.
//!
//! Content under an `upload` lease counts as present for `check` (its bytes
//! are arriving), as the single-process in-flight set does.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use asset_catalog_proto::Sha256Hex;
use deadpool_postgres::Pool;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::PgIndex;
use crate::index::{Claim, IndexError, Purpose};

/// How long a lease lives without a heartbeat.
pub const LEASE: Duration = Duration::from_secs(30);

/// Longest pause between two attempts to take a busy lease.
const MAX_POLL: Duration = Duration::from_millis(250);

/// A held lease; released (its row deleted) when dropped.
#[derive(Debug)]
pub struct Lease {
    pool: Pool,
    sha: String,
    owner: String,
    heartbeat: JoinHandle<()>,
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.heartbeat.abort();
        let (pool, sha, owner) = (self.pool.clone(), self.sha.clone(), self.owner.clone());
        // Dropped outside a runtime (at exit), the row simply expires.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                if let Err(e) = release(&pool, &sha, &owner).await {
                    tracing::debug!(asset.sha256 = %sha, "lease left to expire: {e}");
                }
            });
        }
    }
}

async fn release(pool: &Pool, sha: &str, owner: &str) -> Result<(), String> {
    let client = pool.get().await.map_err(|e| e.to_string())?;
    client
        .execute(
            "DELETE FROM leases WHERE sha256 = $1 AND owner = $2",
            &[&sha, &owner],
        )
        .await
        .map(drop)
        .map_err(|e| e.to_string())
}

/// A name no other request of any server uses.
fn new_owner() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    static PROCESS: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let process = PROCESS.get_or_init(|| {
        let host = rustix::system::uname()
            .nodename()
            .to_string_lossy()
            .into_owned();
        format!(
            "{host}/{}/{:08x}",
            std::process::id(),
            rand::random::<u32>()
        )
    });
    format!("{process}/{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

impl PgIndex {
    /// Take the lease of `sha`, waiting at most `wait` for another holder.
    pub async fn claim(
        &self,
        sha: &Sha256Hex,
        purpose: Purpose,
        wait: Duration,
    ) -> Result<Claim, IndexError> {
        let owner = new_owner();
        let purpose = match purpose {
            Purpose::Upload => "upload",
            Purpose::Other => "other",
        };
        let deadline = Instant::now() + wait;
        let mut pause = Duration::from_millis(10);
        loop {
            if self.try_take(sha.as_str(), &owner, purpose).await? {
                return Ok(Claim::Held(self.held(sha.as_str(), owner)));
            }
            if Instant::now() + pause > deadline {
                return Ok(Claim::Busy);
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(MAX_POLL);
        }
    }

    async fn try_take(&self, sha: &str, owner: &str, purpose: &str) -> Result<bool, IndexError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "INSERT INTO leases (sha256, owner, purpose, expires_at) \
                 VALUES ($1, $2, $3, now() + make_interval(secs => $4)) \
                 ON CONFLICT (sha256) DO UPDATE SET owner = EXCLUDED.owner, \
                 purpose = EXCLUDED.purpose, expires_at = EXCLUDED.expires_at \
                 WHERE leases.expires_at < now() RETURNING 1",
            )
            .await
            .map_err(|e| self.fail(e))?;
        let secs = LEASE.as_secs_f64();
        let row = client
            .query_opt(&stmt, &[&sha, &owner, &purpose, &secs])
            .await
            .map_err(|e| self.fail(e))?;
        Ok(row.is_some())
    }

    fn held(&self, sha: &str, owner: String) -> Lease {
        let (pool, sha, renew_owner) = (self.pool.clone(), sha.to_owned(), owner.clone());
        let heartbeat = tokio::spawn({
            let (pool, sha) = (pool.clone(), sha.clone());
            async move {
                let mut tick = tokio::time::interval(LEASE / 3);
                tick.tick().await;
                loop {
                    tick.tick().await;
                    if let Err(e) = renew(&pool, &sha, &renew_owner).await {
                        tracing::warn!(asset.sha256 = %sha, "cannot renew a lease: {e}");
                    }
                }
            }
        });
        Lease {
            pool,
            sha,
            owner,
            heartbeat,
        }
    }

    /// Of `hashes`, those under a live `upload` lease.
    pub async fn arriving(&self, hashes: &[Sha256Hex]) -> Result<Vec<Sha256Hex>, IndexError> {
        let client = self.client().await?;
        let texts: Vec<&str> = hashes.iter().map(Sha256Hex::as_str).collect();
        let rows = client
            .query(
                "SELECT sha256 FROM leases WHERE sha256 = ANY($1) \
                 AND purpose = 'upload' AND expires_at > now()",
                &[&texts],
            )
            .await
            .map_err(|e| self.fail(e))?;
        Ok(rows
            .iter()
            .filter_map(|r| r.get::<_, String>(0).parse().ok())
            .collect())
    }
}

async fn renew(pool: &Pool, sha: &str, owner: &str) -> Result<(), String> {
    let client = pool.get().await.map_err(|e| e.to_string())?;
    let secs = LEASE.as_secs_f64();
    client
        .execute(
            "UPDATE leases SET expires_at = now() + make_interval(secs => $3) \
             WHERE sha256 = $1 AND owner = $2",
            &[&sha, &owner, &secs],
        )
        .await
        .map(drop)
        .map_err(|e| e.to_string())
}
