//! The write paths: a verified upload (PUT, and a spooled form upload), a
//! sighting of known content, and a delete. Each holds its hash's lock (for
//! at most `[server] same_hash_wait_secs` of waiting), is attributed to the
//! caller's token in the index and in the log line it writes, and applies
//! the caller's client binding and byte quota.

use asset_catalog_proto::{Asset, Sha256Hex, UploadResponse};
use bytes::Bytes;
use futures_util::Stream;
use time::OffsetDateTime;

use super::quota::Reservation;
use super::spool::{self, Spooled};
use super::upload::{self, BodyError};
use super::{Caller, Catalog, ServiceError, UploadMeta};
use crate::index::{NewAsset, Purpose, SightingRecord};
use crate::metrics::DedupVia;
use crate::storage::{Description, ObjectAttrs, Sidecar, SidecarSighting, keys};

impl Catalog {
    /// `PUT /v1/assets/{sha256}`: store the body if new (verified), record the sighting.
    pub async fn upload<S>(
        &self,
        caller: &Caller,
        sha: Sha256Hex,
        mut meta: UploadMeta,
        declared_len: Option<u64>,
        body: S,
    ) -> Result<UploadResponse, ServiceError>
    where
        S: Stream<Item = Result<Bytes, BodyError>> + Unpin,
    {
        caller.bind_client(&mut meta)?;
        let limit = self.inner.limits.max_upload_bytes;
        if declared_len.is_some_and(|n| n > limit) {
            return Err(ServiceError::PayloadTooLarge { limit });
        }
        // In flight before the lock and the first body byte: from here on a
        // check calls this hash present (see `inflight`).
        let _arriving = self.inner.inflight.begin(&sha);
        let _guard = self.lock(&sha, Purpose::Upload).await?;
        if self.inner.index.get(&sha).await?.is_some() {
            upload::drain_verified(&sha, limit, body).await?;
            let asset = self.record(caller, &sha, &meta).await?;
            self.inner.metrics.upload_existing();
            tracing::info!(asset.sha256 = %sha, token.id = caller.log_id(), created = false, "upload");
            return Ok(UploadResponse {
                created: false,
                asset,
            });
        }
        let (_reserved, limit) = self.quota_for(caller, declared_len, limit).await?;
        let stored = self.store_new(&sha, &meta, limit, body).await;
        let (size, description, key) = match stored {
            Err(ServiceError::PayloadTooLarge { limit: room })
                if room < self.inner.limits.max_upload_bytes =>
            {
                return Err(self.over_quota(caller, room + 1).await);
            }
            other => other?,
        };
        let asset = NewAsset {
            sha256: sha.clone(),
            key,
            size,
            content_type: description.content_type,
            name: description.name,
            first_seen: description.first_seen,
            uploaded_by: caller.token_id().map(str::to_owned),
            verified_at: Some(description.first_seen),
        };
        let record = sighting(caller, &meta, description.first_seen);
        let cap = self.inner.limits.max_sightings;
        let inserted = self.inner.index.insert(asset, record, cap).await?;
        if inserted.created {
            self.inner.metrics.upload_created(size);
        } else {
            self.inner.metrics.upload_existing();
        }
        tracing::info!(asset.sha256 = %sha, asset.size = size, token.id = caller.log_id(), created = inserted.created, "upload");
        if !inserted.sighted {
            return Err(ServiceError::TooManySightings { cap });
        }
        let now = OffsetDateTime::now_utc();
        Ok(UploadResponse {
            created: inserted.created,
            asset: caller.shown(inserted.asset, &meta, now),
        })
    }

    /// Hold the caller's byte quota for an upload of `declared` bytes; for a
    /// body of unknown length, the limit becomes the room the quota leaves.
    async fn quota_for(
        &self,
        caller: &Caller,
        declared: Option<u64>,
        limit: u64,
    ) -> Result<(Option<Reservation>, u64), ServiceError> {
        let Some(id) = caller
            .token_id()
            .filter(|_| caller.limits().max_bytes.is_some())
        else {
            return Ok((None, limit));
        };
        let stored = self.inner.index.token_stored_bytes(id).await?;
        match declared {
            Some(size) => {
                let held = self.inner.quotas.reserve(caller, stored, size)?;
                // A second look, held first, then stored (see `Quotas::confirm`).
                let holding = self.inner.quotas.held_for(caller);
                let stored = self.inner.index.token_stored_bytes(id).await?;
                self.inner.quotas.confirm(caller, holding, stored, size)?;
                Ok((held, limit))
            }
            None => {
                let room = self.inner.quotas.room(caller, stored).unwrap_or(limit);
                Ok((None, room.min(limit)))
            }
        }
    }

    /// The quota error for a body of at least `size` bytes.
    async fn over_quota(&self, caller: &Caller, size: u64) -> ServiceError {
        let stored = match caller.token_id() {
            Some(id) => self.inner.index.token_stored_bytes(id).await.unwrap_or(0),
            None => 0,
        };
        self.inner
            .quotas
            .reserve(caller, stored, size)
            .err()
            .unwrap_or(ServiceError::PayloadTooLarge { limit: size })
    }

    /// Stream a body of new content into storage, verified; its size,
    /// description and key.
    async fn store_new<S>(
        &self,
        sha: &Sha256Hex,
        meta: &UploadMeta,
        limit: u64,
        body: S,
    ) -> Result<(u64, Description, String), ServiceError>
    where
        S: Stream<Item = Result<Bytes, BodyError>> + Unpin,
    {
        let key = keys::data_key(sha, keys::extension_of(&meta.name).as_deref());
        let description = describe(meta, OffsetDateTime::now_utc());
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
            expected: sha,
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
        Ok((size, description, key))
    }

    async fn record(
        &self,
        caller: &Caller,
        sha: &Sha256Hex,
        meta: &UploadMeta,
    ) -> Result<Asset, ServiceError> {
        let now = OffsetDateTime::now_utc();
        let cap = self.inner.limits.max_sightings;
        let (asset, sighted) = self
            .inner
            .index
            .record_sighting(sha, sighting(caller, meta, now), cap)
            .await?
            .ok_or_else(|| ServiceError::NotFound(sha.clone()))?;
        if !sighted {
            return Err(ServiceError::TooManySightings { cap });
        }
        Ok(caller.shown(asset, meta, now))
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
        caller: &Caller,
        spooled: Spooled,
        meta: UploadMeta,
    ) -> Result<UploadResponse, ServiceError> {
        let sha = spooled.sha256.clone();
        let size = spooled.size;
        self.upload(caller, sha, meta, Some(size), spooled.into_stream())
            .await
    }

    /// `POST /v1/assets/{sha256}/sightings`: known content seen at another
    /// place. Indexed content is recorded at once (the index orders it
    /// against a delete of the same row). Otherwise it waits (bounded) for an
    /// upload of the same content under way on any server (it holds the
    /// hash): a client that `check` told "present" because the bytes were
    /// arriving gets that upload's outcome, the sighting recorded or 404
    /// when the upload failed.
    pub async fn add_sighting(
        &self,
        caller: &Caller,
        sha: &Sha256Hex,
        mut meta: UploadMeta,
    ) -> Result<Asset, ServiceError> {
        caller.bind_client(&mut meta)?;
        let asset = match self.record(caller, sha, &meta).await {
            Err(ServiceError::NotFound(_)) => {
                let _guard = self.lock(sha, Purpose::Other).await?;
                self.record(caller, sha, &meta).await?
            }
            other => other?,
        };
        self.inner.metrics.dedup_hit(DedupVia::Sighting, 1);
        tracing::info!(asset.sha256 = %sha, token.id = caller.log_id(), "sighting");
        Ok(asset)
    }

    /// `DELETE /v1/assets/{sha256}`: object, then index row, then sidecar.
    pub async fn delete(&self, caller: &Caller, sha: &Sha256Hex) -> Result<(), ServiceError> {
        let _guard = self.lock(sha, Purpose::Other).await?;
        let asset = self.asset(sha).await?;
        let thumbnails = self.inner.index.thumbnail_ext(sha).await?;
        self.inner.storage.delete(&asset.key).await?;
        self.inner.index.delete(sha, caller.token_id()).await?;
        if let Err(e) = self.inner.storage.delete(&keys::sidecar_key(sha)).await {
            tracing::warn!(asset.sha256 = %sha, error = %e, "deleting the sidecar failed; it is ignored by reindex");
        }
        if let Some(ext) = thumbnails {
            for size in asset_catalog_media::THUMBNAIL_SIZES {
                let key = keys::thumbnail_key(sha, size, &ext);
                if let Err(e) = self.inner.storage.delete(&key).await {
                    tracing::warn!(asset.sha256 = %sha, key, error = %e, "deleting a thumbnail failed; `fsck` reports it");
                }
            }
        }
        tracing::info!(asset.sha256 = %sha, asset.size = asset.size, token.id = caller.log_id(), "deleted");
        Ok(())
    }
}

/// The core metadata of content first seen now as `meta` describes it.
pub(super) fn describe(meta: &UploadMeta, now: OffsetDateTime) -> Description {
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

pub(super) fn sighting(
    caller: &Caller,
    meta: &UploadMeta,
    seen_at: OffsetDateTime,
) -> SightingRecord {
    SightingRecord {
        client: meta.client.clone(),
        path: meta.path.clone(),
        name: meta.name.clone(),
        mtime: meta.mtime,
        seen_at,
        token: caller.token_id().map(str::to_owned),
    }
}
