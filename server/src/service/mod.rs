//! The catalog's domain logic, free of HTTP types: verified uploads,
//! sightings, batch checks, listing, content reads and deletes, over
//! [`Storage`] and [`Index`]. Every operation on one hash holds that hash's
//! lock, so concurrent uploads of the same content cannot interleave.

mod inflight;
mod locks;
pub mod meta;
mod spool;
mod upload;

use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;

use asset_catalog_proto::{
    Asset, AssetDetail, AssetPage, CheckResponse, MAX_CHECK_BATCH, Sha256Hex, UploadResponse,
};
use bytes::Bytes;
use futures_util::Stream;
use time::OffsetDateTime;

use crate::index::{Index, IndexError, ListFilter, NewAsset, SightingRecord};
use crate::metrics::{DedupVia, Metrics};
use crate::storage::{
    Description, ObjectAttrs, ObjectBody, Sidecar, SidecarSighting, Storage, StorageError, keys,
};

pub use inflight::InFlight;
pub use locks::HashLocks;
pub use meta::{RawMeta, UploadMeta};
pub use spool::Spooled;
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
    #[error("the range is outside the {size}-byte content")]
    RangeNotSatisfiable { size: u64 },
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Index(#[from] IndexError),
    #[error("spooling the upload to a temporary file failed: {0}")]
    Spool(#[source] std::io::Error),
}

/// Limits that apply to every request.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_upload_bytes: u64,
    pub spool_dir: PathBuf,
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
    limits: Limits,
    metrics: Arc<Metrics>,
}

/// Outcome of the readiness probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Readiness {
    pub storage: Result<(), String>,
    pub index: Result<u64, String>,
}

impl Readiness {
    pub fn is_ready(&self) -> bool {
        self.storage.is_ok() && self.index.is_ok()
    }
}

impl Catalog {
    pub fn new(storage: Storage, index: Index, limits: Limits, metrics: Arc<Metrics>) -> Self {
        Self {
            inner: Arc::new(Inner {
                storage,
                index,
                locks: HashLocks::default(),
                inflight: InFlight::default(),
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

    /// May an upload start now? `storage_unavailable` at once while storage
    /// is known to be down (but for a trial every few seconds), so that an
    /// outage never holds upload slots or reads bodies it cannot store.
    pub fn admit_upload(&self) -> Result<(), ServiceError> {
        Ok(self.inner.storage.health().admit()?)
    }

    /// `PUT /v1/assets/{sha256}`: store the body if new (verified), record the sighting.
    pub async fn upload<S>(
        &self,
        sha: Sha256Hex,
        meta: UploadMeta,
        declared_len: Option<u64>,
        body: S,
    ) -> Result<UploadResponse, ServiceError>
    where
        S: Stream<Item = Result<Bytes, BodyError>> + Unpin,
    {
        let limit = self.inner.limits.max_upload_bytes;
        if declared_len.is_some_and(|n| n > limit) {
            return Err(ServiceError::PayloadTooLarge { limit });
        }
        // In flight before the lock and the first body byte: from here on a
        // check calls this hash present (see `inflight`).
        let _arriving = self.inner.inflight.begin(&sha);
        let _guard = self.inner.locks.lock(&sha).await;
        if self.inner.index.get(&sha).await?.is_some() {
            upload::drain_verified(&sha, limit, body).await?;
            let asset = self.record(&sha, &meta).await?;
            self.inner.metrics.upload_existing();
            return Ok(UploadResponse {
                created: false,
                asset,
            });
        }
        let key = keys::data_key(&sha, keys::extension_of(&meta.name).as_deref());
        let description = describe(&meta, OffsetDateTime::now_utc());
        // Where objects keep attributes the description rides on the content
        // object (one PUT); otherwise, or when too long, in a sidecar.
        let attribute = self
            .inner
            .storage
            .keeps_attributes()
            .then(|| description.to_attribute())
            .flatten();
        let target = upload::Target {
            key: &key,
            attrs: ObjectAttrs {
                content_type: &description.content_type,
                description: attribute.as_deref(),
            },
            expected: &sha,
            limit,
        };
        let size = upload::store_verified(&self.inner.storage, target, body).await?;
        if attribute.is_none() {
            let sidecar = Sidecar {
                version: crate::storage::sidecar::SIDECAR_VERSION,
                sha256: sha.clone(),
                key: key.clone(),
                size,
                description: description.clone(),
            };
            self.inner.storage.put_sidecar(&sidecar).await?;
        }
        let asset = NewAsset {
            sha256: sha.clone(),
            key,
            size,
            content_type: description.content_type,
            name: description.name,
            first_seen: description.first_seen,
        };
        let (asset, created) = self
            .inner
            .index
            .insert(asset, sighting(meta, description.first_seen))
            .await?;
        if created {
            self.inner.metrics.upload_created(size);
        } else {
            self.inner.metrics.upload_existing();
        }
        Ok(UploadResponse { created, asset })
    }

    async fn record(&self, sha: &Sha256Hex, meta: &UploadMeta) -> Result<Asset, ServiceError> {
        let record = sighting(meta.clone(), OffsetDateTime::now_utc());
        self.inner
            .index
            .record_sighting(sha, record)
            .await?
            .ok_or_else(|| ServiceError::NotFound(sha.clone()))
    }

    /// Receive a body of unknown hash into a temporary file (form uploads).
    pub async fn spool<S>(&self, body: S) -> Result<Spooled, ServiceError>
    where
        S: Stream<Item = Result<Bytes, BodyError>> + Unpin,
    {
        let limits = &self.inner.limits;
        spool::spool(&limits.spool_dir, limits.max_upload_bytes, body).await
    }

    /// Store a spooled body (its hash is now known).
    pub async fn upload_spooled(
        &self,
        spooled: Spooled,
        meta: UploadMeta,
    ) -> Result<UploadResponse, ServiceError> {
        let sha = spooled.sha256.clone();
        let size = spooled.size;
        self.upload(sha, meta, Some(size), spooled.into_stream())
            .await
    }

    /// `POST /v1/assets/{sha256}/sightings`: known content seen at another
    /// place. Waits for an upload of the same content under way (it holds
    /// the hash's lock): a client that `check` told "present" because the
    /// bytes were arriving gets that upload's outcome, the sighting recorded
    /// or 404 when the upload failed.
    pub async fn add_sighting(
        &self,
        sha: &Sha256Hex,
        meta: UploadMeta,
    ) -> Result<Asset, ServiceError> {
        let _guard = self.inner.locks.lock(sha).await;
        let asset = self.record(sha, &meta).await?;
        self.inner.metrics.dedup_hit(DedupVia::Sighting, 1);
        Ok(asset)
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
        let arriving = self.inner.inflight.snapshot(&parsed);
        let mut missing = self.inner.index.missing(parsed).await?;
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

    /// `GET /v1/assets/{sha256}`.
    pub async fn detail(&self, sha: &Sha256Hex) -> Result<AssetDetail, ServiceError> {
        self.inner
            .index
            .detail(sha)
            .await?
            .ok_or_else(|| ServiceError::NotFound(sha.clone()))
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

    /// `DELETE /v1/assets/{sha256}`: object, then index row, then sidecar.
    pub async fn delete(&self, sha: &Sha256Hex) -> Result<(), ServiceError> {
        let _guard = self.inner.locks.lock(sha).await;
        let asset = self.asset(sha).await?;
        self.inner.storage.delete(&asset.key).await?;
        self.inner.index.delete(sha).await?;
        if let Err(e) = self.inner.storage.delete(&keys::sidecar_key(sha)).await {
            tracing::warn!(asset.sha256 = %sha, error = %e, "deleting the sidecar failed; it is ignored by reindex");
        }
        Ok(())
    }

    /// Can storage and index serve requests right now?
    pub async fn readiness(&self) -> Readiness {
        let (storage, index) = tokio::join!(self.inner.storage.probe(), self.inner.index.ping());
        Readiness {
            storage: storage.map_err(|e| e.to_string()),
            index: index.map_err(|e| e.to_string()),
        }
    }
}

/// The core metadata of content first seen now as `meta` describes it.
fn describe(meta: &UploadMeta, now: OffsetDateTime) -> Description {
    Description {
        content_type: meta.effective_content_type(),
        name: meta.name.clone(),
        first_seen: now,
        first_sighting: Some(SidecarSighting {
            client: meta.client.clone(),
            path: meta.path.clone(),
            name: meta.name.clone(),
            mtime: meta.mtime,
        }),
    }
}

fn sighting(meta: UploadMeta, seen_at: OffsetDateTime) -> SightingRecord {
    SightingRecord {
        client: meta.client,
        path: meta.path,
        name: meta.name,
        mtime: meta.mtime,
        seen_at,
    }
}
