//! The catalog's domain logic, free of HTTP types: verified uploads,
//! sightings, batch checks, listing, content reads and deletes, over
//! [`Storage`] and [`Index`]. Every operation on one hash holds that hash's
//! lock, so concurrent uploads of the same content cannot interleave.

mod caller;
pub mod hash_state;
mod inflight;
mod ingest;
mod locks;
pub mod meta;
mod overview;
mod quota;
mod ready;
mod resumable;
mod session;
mod spool;
mod thumbnail;
mod upload;

use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;

use asset_catalog_proto::{
    Asset, AssetDetail, AssetPage, CheckResponse, MAX_CHECK_BATCH, Sha256Hex,
};

use crate::index::{
    Claim, Index, IndexError, Lease, ListFilter, Purpose, SightingCursor, SightingPage,
};
use crate::metrics::{DedupVia, Metrics};
use crate::storage::{ObjectBody, Storage, StorageError};

pub use caller::Caller;
pub use inflight::InFlight;
pub use locks::HashLocks;
pub use meta::{RawMeta, UploadMeta};
pub use overview::{OVERVIEW_DAYS, OverviewReport};
pub use quota::Quotas;
pub use ready::{READY_TIMEOUT, Readiness, ReadyCache};
pub use resumable::{Appended, Created, Progress};
pub use session::{SignedIn, UiSession, secret_hash, store_sign_in_link};
pub use spool::Spooled;
pub use thumbnail::Thumbnail;
pub use upload::{BodyError, SMALL_BODY_MAX};

/// Default and largest page size of `GET /v1/assets`.
pub const DEFAULT_PAGE: usize = 100;
pub const MAX_PAGE: usize = 1000;

/// Why an operation failed, in terms the API maps to error codes.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    InvalidHash(String),
    /// A sign-in with an unknown or revoked token.
    #[error("{0}")]
    Unauthorized(String),
    /// A caller without the scope an operation needs.
    #[error("{0}")]
    Forbidden(String),
    #[error("the body hashes to {actual}, not to {expected}; nothing was stored")]
    HashMismatch {
        expected: Sha256Hex,
        actual: Sha256Hex,
    },
    #[error(transparent)]
    Body(#[from] BodyError),
    #[error("the body is larger than this server's limit of {limit} bytes")]
    PayloadTooLarge { limit: u64 },
    #[error("at most {max} hashes per check, got {got}; split the batch")]
    TooManyHashes { got: usize, max: usize },
    #[error("no asset with SHA-256 {0}")]
    NotFound(Sha256Hex),
    #[error(
        "no upload session {0} for this token (finished, terminated, expired, or another token's); create a new one with POST /v1/uploads"
    )]
    UnknownUpload(String),
    #[error(
        "Upload-Offset {sent} is not this session's offset {committed}; HEAD the session and continue from its Upload-Offset"
    )]
    OffsetMismatch { sent: u64, committed: u64 },
    #[error("asset {sha} has no thumbnail: {why}")]
    NoThumbnail { sha: Sha256Hex, why: &'static str },
    #[error("the range is outside the {size}-byte content")]
    RangeNotSatisfiable { size: u64 },
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Index(#[from] IndexError),
    #[error("spooling the upload to a temporary file failed: {0}")]
    Spool(#[source] std::io::Error),
    #[error(
        "token {token} is bound to client {bound:?} and cannot speak for client {named:?}; use that client's own token"
    )]
    WrongClient {
        token: String,
        bound: String,
        named: String,
    },
    #[error(
        "token {token} may store {max} bytes of new content; it holds {used} and this upload has {size}; delete content or ask for a larger quota"
    )]
    QuotaExceeded {
        token: String,
        max: u64,
        used: u64,
        size: u64,
    },
    #[error("this token may start {per_minute} uploads per minute; retry in {retry_after} s")]
    RateLimited { per_minute: u32, retry_after: u64 },
    #[error(
        "this content already has {cap} sightings ([server] max_sightings_per_asset); it is stored, but this place was not recorded"
    )]
    TooManySightings { cap: u64 },
    #[error(
        "another request on this content has held it for {secs} s (an upload of the same bytes still arriving); retry later"
    )]
    Busy { secs: u64 },
}

/// Held while working on one hash: this server's lock and, with a shared
/// index, the hash's lease.
#[derive(Debug)]
struct Held {
    _local: locks::HashGuard,
    _lease: Option<Lease>,
}

fn busy_of(wait: std::time::Duration) -> ServiceError {
    ServiceError::Busy {
        secs: wait.as_secs(),
    }
}

/// Limits that apply to every request.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_upload_bytes: u64,
    pub spool_dir: PathBuf,
    /// Places recorded per asset (`[server] max_sightings_per_asset`).
    pub max_sightings: u64,
    /// Longest wait for another request on the same hash (`[server] same_hash_wait_secs`).
    pub same_hash_wait: std::time::Duration,
}

/// The catalog service; cheap to clone.
#[derive(Debug, Clone)]
pub struct Catalog {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    storage: Storage,
    index: Index,
    locks: HashLocks,
    inflight: InFlight,
    ready: ReadyCache,
    quotas: Quotas,
    limits: Limits,
    metrics: Arc<Metrics>,
}

impl Catalog {
    pub fn new(storage: Storage, index: Index, limits: Limits, metrics: Arc<Metrics>) -> Self {
        Self {
            inner: Arc::new(Inner {
                storage,
                index,
                locks: HashLocks::default(),
                inflight: InFlight::default(),
                ready: ReadyCache::default(),
                quotas: Quotas::default(),
                limits,
                metrics,
            }),
        }
    }

    pub fn storage(&self) -> &Storage {
        &self.inner.storage
    }

    pub fn index(&self) -> &Index {
        &self.inner.index
    }

    pub fn limits(&self) -> &Limits {
        &self.inner.limits
    }

    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// May `caller` start an upload now? `storage_unavailable` at once while
    /// storage is known to be down (but for a trial every few seconds), so
    /// that an outage never holds upload slots or reads bodies it cannot
    /// store; `rate_limited` past the token's uploads per minute.
    pub fn admit_upload(&self, caller: &Caller) -> Result<(), ServiceError> {
        self.inner.storage.health().admit()?;
        self.inner.quotas.admit(caller)
    }

    /// Check a presented bearer token against the index (on every request:
    /// a revocation applies to the next one): its grant, or `Unauthorized`
    /// saying whether it is unknown or revoked.
    pub async fn verify_token(
        &self,
        presented: &crate::auth::Presented<'_>,
    ) -> Result<crate::index::TokenGrant, ServiceError> {
        use crate::index::TokenVerdict;
        match self.inner.index.verify_token(presented).await? {
            TokenVerdict::Valid(grant) => Ok(grant),
            TokenVerdict::Unknown => Err(ServiceError::Unauthorized("unknown token".into())),
            TokenVerdict::Revoked => Err(ServiceError::Unauthorized(
                "this token has been revoked".into(),
            )),
        }
    }

    /// Note in the background that token `id` was used (`token list`'s
    /// "last used"); callers rate-limit this.
    pub fn record_token_use(&self, id: &str) {
        let (index, id) = (self.inner.index.clone(), id.to_owned());
        tokio::spawn(async move {
            if let Err(e) = index.touch_token(&id).await {
                tracing::debug!(token.id = %id, "cannot record token use: {e}");
            }
        });
    }

    /// Where the bytes live, for operators (`file:///…`, `s3://bucket`).
    pub fn describe_storage(&self) -> String {
        self.inner.storage.describe()
    }

    /// Take `sha` for `purpose`: this server's lock, then (with a shared
    /// index) the lease every server honours; waiting at most `[server]
    /// same_hash_wait_secs` in all for another request on it (an upload
    /// whose sender is slow).
    async fn lock(&self, sha: &Sha256Hex, purpose: Purpose) -> Result<Held, ServiceError> {
        let wait = self.inner.limits.same_hash_wait;
        let busy = busy_of(wait);
        let started = tokio::time::Instant::now();
        let local = self
            .inner
            .locks
            .lock_within(sha, wait)
            .await
            .ok_or_else(|| busy_of(wait))?;
        let left = wait.saturating_sub(started.elapsed());
        match self.inner.index.claim(sha, purpose, left).await? {
            Claim::Busy => Err(busy),
            Claim::Local => Ok(Held {
                _local: local,
                _lease: None,
            }),
            Claim::Held(lease) => Ok(Held {
                _local: local,
                _lease: Some(lease),
            }),
        }
    }

    /// `POST /v1/assets/check`: which of these hashes are missing — neither
    /// indexed nor arriving in an upload under way (whose client may be
    /// gone, but whose bytes are here; see `inflight`).
    pub async fn check(&self, hashes: Vec<String>) -> Result<CheckResponse, ServiceError> {
        if hashes.len() > MAX_CHECK_BATCH {
            return Err(ServiceError::TooManyHashes {
                got: hashes.len(),
                max: MAX_CHECK_BATCH,
            });
        }
        let parsed = hashes
            .iter()
            .enumerate()
            .map(|(i, h)| {
                h.parse::<Sha256Hex>()
                    .map_err(|e| ServiceError::InvalidHash(format!("hashes[{i}]: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let asked = parsed.len();
        // Snapshot first: an upload that ends after it is indexed by the time
        // the index is read, so no hash falls between the two.
        let mut arriving = self.inner.inflight.snapshot(&parsed);
        let mut missing = self.inner.index.missing(parsed).await?;
        if !missing.is_empty() && self.inner.index.is_shared() {
            // Arriving through another server: under its upload lease.
            arriving.extend(self.inner.index.arriving(&missing).await?);
        }
        missing.retain(|h| !arriving.contains(h));
        let present = asked.saturating_sub(missing.len()) as u64;
        if present > 0 {
            self.inner.metrics.dedup_hit(DedupVia::Check, present);
        }
        Ok(CheckResponse { missing })
    }

    /// `GET /v1/assets`.
    pub async fn list(&self, filter: ListFilter) -> Result<AssetPage, ServiceError> {
        if filter.limit == 0 || filter.limit > MAX_PAGE {
            return Err(ServiceError::BadRequest(format!(
                "limit must be between 1 and {MAX_PAGE}"
            )));
        }
        Ok(self.inner.index.list(filter).await?)
    }

    /// One asset's metadata.
    pub async fn asset(&self, sha: &Sha256Hex) -> Result<Asset, ServiceError> {
        self.inner
            .index
            .get(sha)
            .await?
            .ok_or_else(|| ServiceError::NotFound(sha.clone()))
    }

    /// `GET /v1/assets/{sha256}`: the asset and one page of its sightings;
    /// which token did what only for admin callers.
    pub async fn detail(
        &self,
        caller: &Caller,
        sha: &Sha256Hex,
        limit: Option<usize>,
        cursor: Option<&str>,
    ) -> Result<AssetDetail, ServiceError> {
        let limit = limit.unwrap_or(DEFAULT_PAGE);
        if limit == 0 || limit > MAX_PAGE {
            return Err(ServiceError::BadRequest(format!(
                "sightings_limit must be between 1 and {MAX_PAGE}"
            )));
        }
        let after = cursor
            .map(|c| {
                SightingCursor::decode(c).ok_or_else(|| {
                    ServiceError::BadRequest(
                        "sightings_cursor is not one this server handed out; start without it"
                            .into(),
                    )
                })
            })
            .transpose()?;
        let mut detail = self
            .inner
            .index
            .detail(sha, SightingPage { limit, after })
            .await?
            .ok_or_else(|| ServiceError::NotFound(sha.clone()))?;
        if !caller.scopes().allows(crate::auth::Scope::Admin) {
            detail.uploaded_by = None;
            detail.sightings.iter_mut().for_each(|s| s.token = None);
        }
        Ok(detail)
    }

    /// The bytes of `asset`, all or `range` (end exclusive).
    pub async fn open_content(
        &self,
        asset: &Asset,
        range: Option<Range<u64>>,
    ) -> Result<ObjectBody, ServiceError> {
        match self.inner.storage.get(&asset.key, range).await {
            Ok(body) => Ok(body),
            Err(StorageError::NotFound { key }) => {
                tracing::error!(asset.sha256 = %asset.sha256, key, "indexed asset is missing from the bucket; run `reindex`");
                Err(ServiceError::NotFound(asset.sha256.clone()))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Can storage and index serve requests right now?
    /// Cached for about a second (see [`ReadyCache`]).
    pub async fn readiness(&self) -> Readiness {
        self.inner
            .ready
            .get(async {
                self.inner.metrics.readiness_probe();
                let (storage, index) =
                    tokio::join!(self.inner.storage.probe(), self.inner.index.ping());
                Readiness {
                    storage: storage.map_err(|e| e.to_string()),
                    index: index.map_err(|e| e.to_string()),
                }
            })
            .await
    }

    /// How long this server has had no upload under way (zero while one is).
    pub fn uploads_quiet_for(&self) -> std::time::Duration {
        self.inner.inflight.quiet_for()
    }

    /// Readiness probes run so far (each answers `/readyz` for a second).
    pub fn readiness_probes(&self) -> u64 {
        self.inner.ready.probes()
    }
}
