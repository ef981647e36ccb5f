//! Resumable uploads (the tus 1.0.0 protocol's core, creation, termination
//! and expiration, spoken by `http::uploads`): a session in the index that
//! any server can continue, over a multipart upload in storage.
//!
//! A session is created with the content's declared SHA-256 and length.
//! Content already present is answered at once (its sighting recorded), so
//! no byte is sent twice. Each `PATCH` body is cut into parts of
//! `[storage] part_size_bytes`; every part is stored, then committed to the
//! index together with the SHA-256 state after it, under the content's lock
//! (the lease every server honours) and with a compare-and-set on the
//! offset, so two requests cannot both advance one session. The lock is
//! held per part, not per PATCH: a slow sender or a killed server blocks
//! the content for one part's store at most. A crash or a
//! cut connection therefore loses at most the part in flight, and the
//! committed offset is what `HEAD` reports. A body that ends before a part
//! boundary keeps its tail only when that tail is a valid part (S3's 5 MiB
//! minimum); otherwise the tail is dropped and the client resends it.
//!
//! On the last byte the hash must equal the declared one: then the
//! multipart upload is completed (the object becomes visible) and the asset
//! indexed; otherwise it is aborted and nothing is visible. Abandoned
//! sessions are aborted and removed after `[uploads] expire_secs` (a day).

use std::time::Duration;

use asset_catalog_proto::{Sha256Hex, UploadResponse};
use bytes::{Bytes, BytesMut};
use futures_util::{Stream, StreamExt};
use rand::RngCore;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::hash_state;
use super::ingest::{describe, sighting};
use super::upload::BodyError;
use super::{Caller, Catalog, ServiceError, UploadMeta};
use crate::config::MIN_PART_SIZE_BYTES;
use crate::index::{NewAsset, NewUpload, Purpose, StoredPart, UploadRow};
use crate::storage::{ObjectAttrs, ResumableUpload, Sidecar, keys};

/// What creating a session gave.
#[derive(Debug)]
pub enum Created {
    /// A new session: its id and when it expires.
    Session { id: String, expires: OffsetDateTime },
    /// The content is already stored (or was empty): nothing to send.
    Present(Box<UploadResponse>),
}

/// Where a session stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    pub offset: u64,
    pub length: u64,
    pub expires: OffsetDateTime,
}

/// What a `PATCH` achieved.
#[derive(Debug)]
pub struct Appended {
    /// The committed offset now.
    pub offset: u64,
    /// Set when this was the last byte: the stored asset.
    pub done: Option<UploadResponse>,
}

impl Catalog {
    /// Begin a session for `length` bytes of content `meta.sha256` declares.
    pub async fn create_upload(
        &self,
        caller: &Caller,
        sha: Sha256Hex,
        mut meta: UploadMeta,
        length: u64,
        lifetime: Duration,
    ) -> Result<Created, ServiceError> {
        caller.bind_client(&mut meta)?;
        let limit = self.inner.limits.max_upload_bytes;
        if length > limit {
            return Err(ServiceError::PayloadTooLarge { limit });
        }
        if self.inner.index.get(&sha).await?.is_some() {
            let asset = self.add_sighting(caller, &sha, meta).await?;
            return Ok(Created::Present(Box::new(UploadResponse {
                created: false,
                asset,
            })));
        }
        if length == 0 {
            // Nothing to resume: stored (and verified) at once.
            let empty = futures_util::stream::empty::<Result<Bytes, BodyError>>();
            return Ok(Created::Present(Box::new(
                self.upload(caller, sha, meta, Some(0), empty).await?,
            )));
        }
        if let (Some(_), Some(stored)) = (
            caller.limits().max_bytes,
            caller.token_id().map(str::to_owned),
        ) {
            let used = self.inner.index.token_stored_bytes(&stored).await?;
            self.inner.quotas.reserve(caller, used, length)?;
        }
        let key = keys::data_key(&sha, keys::extension_of(&meta.name).as_deref());
        let now = OffsetDateTime::now_utc();
        let description = describe(&meta, now);
        let attrs = ObjectAttrs {
            content_type: &description.content_type,
            description: None,
        };
        let resumable = self.inner.storage.begin_resumable(&key, attrs).await?;
        let mut id = [0u8; 16];
        rand::rng().fill_bytes(&mut id);
        let new = NewUpload {
            id: hex::encode(id),
            token_id: caller.token_id().map(str::to_owned),
            sha256: sha,
            length,
            name: meta.name.clone(),
            path: Some(meta.path.clone()),
            mtime: meta.mtime.and_then(|t| t.format(&Rfc3339).ok()),
            client: meta.client.clone(),
            key,
            multipart_id: resumable.upload_id,
            hash_state: hash_state::save(&Sha256::new()),
            created: now,
            expires: now + lifetime,
        };
        self.inner.index.create_upload(&new).await?;
        tracing::info!(upload.id = new.id, asset.sha256 = %new.sha256, upload.length = length, token.id = caller.log_id(), "upload session created");
        Ok(Created::Session {
            id: new.id,
            expires: new.expires,
        })
    }

    /// A session of `caller`'s (another caller's reads as unknown).
    async fn own_upload(&self, caller: &Caller, id: &str) -> Result<UploadRow, ServiceError> {
        match self.inner.index.upload(id).await? {
            Some(row) if row.token_id.as_deref() == caller.token_id() => Ok(row),
            _ => Err(ServiceError::UnknownUpload(id.to_owned())),
        }
    }

    /// The committed offset of a session.
    pub async fn upload_progress(
        &self,
        caller: &Caller,
        id: &str,
    ) -> Result<Progress, ServiceError> {
        let row = self.own_upload(caller, id).await?;
        Ok(Progress {
            offset: row.offset,
            length: row.length,
            expires: row.expires,
        })
    }

    /// Append a `PATCH` body at `offset` (which must be the committed one).
    pub async fn append_upload<S>(
        &self,
        caller: &Caller,
        id: &str,
        offset: u64,
        declared: Option<u64>,
        mut body: S,
    ) -> Result<Appended, ServiceError>
    where
        S: Stream<Item = Result<Bytes, BodyError>> + Unpin,
    {
        let row = self.own_upload(caller, id).await?;
        // A request still storing a part of this session (its client cut
        // off, now resuming here) finishes that part first: then the offset
        // checked is the one it committed, and a stale resume is refused
        // before its body is read, not a part later.
        let row = {
            let _held = self.lock(&row.sha256, Purpose::Upload).await?;
            self.own_upload(caller, id).await?
        };
        if offset != row.offset {
            return Err(ServiceError::OffsetMismatch {
                sent: offset,
                committed: row.offset,
            });
        }
        if declared.is_some_and(|n| offset.saturating_add(n) > row.length) {
            return Err(ServiceError::BadRequest(format!(
                "the body goes past Upload-Length ({} bytes); send at most {} bytes from offset {offset}",
                row.length,
                row.length - offset
            )));
        }
        let mut session = Session::resume(self, row)?;
        let mut tail = BytesMut::new();
        while let Some(chunk) = body.next().await {
            let chunk = match chunk {
                Ok(chunk) => chunk,
                // What was committed stays; the tail is lost (the client resends it).
                Err(e) => return Err(e.into()),
            };
            self.inner
                .metrics
                .upload_session_received(chunk.len() as u64);
            if session.offset + (tail.len() + chunk.len()) as u64 > session.row.length {
                return Err(ServiceError::BadRequest(format!(
                    "the body goes past Upload-Length ({} bytes); nothing past offset {} was kept",
                    session.row.length, session.offset
                )));
            }
            session.take(chunk, &mut tail).await?;
        }
        if session.offset + tail.len() as u64 == session.row.length {
            let done = session.finish(caller, tail.freeze()).await?;
            return Ok(Appended {
                offset: session.row.length,
                done: Some(done),
            });
        }
        if tail.len() as u64 >= MIN_PART_SIZE_BYTES {
            session.commit(tail.freeze()).await?;
        }
        Ok(Appended {
            offset: session.offset,
            done: None,
        })
    }

    /// Terminate a session: abort its multipart upload, remove it.
    pub async fn terminate_upload(&self, caller: &Caller, id: &str) -> Result<(), ServiceError> {
        let row = self.own_upload(caller, id).await?;
        self.drop_upload(&row).await?;
        tracing::info!(
            upload.id = id,
            token.id = caller.log_id(),
            "upload session terminated"
        );
        Ok(())
    }

    async fn drop_upload(&self, row: &UploadRow) -> Result<(), ServiceError> {
        let resumable = ResumableUpload {
            key: row.key.clone(),
            upload_id: row.multipart_id.clone(),
        };
        if let Err(e) = self.inner.storage.abort_resumable(&resumable).await {
            tracing::warn!(upload.id = row.id, error = %e, "aborting the multipart upload failed; the bucket's lifecycle rule or fsck cleans it");
        }
        self.inner.index.end_upload(&row.id).await?;
        Ok(())
    }

    /// Abort and remove sessions past their expiry; returns how many.
    pub async fn expire_uploads(&self) -> Result<usize, ServiceError> {
        let now = OffsetDateTime::now_utc();
        let expired = self.inner.index.expired_uploads(now, 100).await?;
        for row in &expired {
            self.drop_upload(row).await?;
            tracing::info!(
                upload.id = row.id,
                upload.offset = row.offset,
                "upload session expired"
            );
        }
        Ok(expired.len())
    }
}

/// One session being appended to.
struct Session<'a> {
    catalog: &'a Catalog,
    row: UploadRow,
    /// The hash of every byte taken: the committed ones and the tail's.
    hasher: Sha256,
    /// The committed offset.
    offset: u64,
    part_size: usize,
}

impl<'a> Session<'a> {
    fn resume(catalog: &'a Catalog, row: UploadRow) -> Result<Self, ServiceError> {
        let hasher = hash_state::restore(&row.hash_state).map_err(|e| {
            ServiceError::BadRequest(format!(
                "upload {} cannot continue: {e}; start it again",
                row.id
            ))
        })?;
        Ok(Self {
            catalog,
            hasher,
            offset: row.offset,
            part_size: catalog.inner.storage.part_size(),
            row,
        })
    }

    fn resumable(&self) -> ResumableUpload {
        ResumableUpload {
            key: self.row.key.clone(),
            upload_id: self.row.multipart_id.clone(),
        }
    }

    /// Hash and keep `chunk` as it arrives (the hash runs beside the
    /// network, not before each store), committing each part it completes;
    /// a chunk is split at a part boundary, so the hash state saved with a
    /// part is the state after exactly its last byte.
    async fn take(&mut self, mut chunk: Bytes, tail: &mut BytesMut) -> Result<(), ServiceError> {
        while !chunk.is_empty() {
            let room = self.part_size - tail.len();
            let piece = chunk.split_to(room.min(chunk.len()));
            self.hasher.update(&piece);
            tail.extend_from_slice(&piece);
            if tail.len() == self.part_size {
                self.commit(tail.split().freeze()).await?;
            }
        }
        Ok(())
    }

    /// Store one part (already hashed by [`Self::take`]) and commit it with
    /// the hash state after it, holding
    /// the content's lock (lease) for just that: a PATCH whose sender is
    /// slow, or whose server was killed, blocks nobody for longer than one
    /// part takes to store.
    async fn commit(&mut self, part: Bytes) -> Result<StoredPart, ServiceError> {
        let _held = self.catalog.lock(&self.row.sha256, Purpose::Upload).await?;
        self.commit_held(part).await
    }

    /// [`Self::commit`] under the lock already held. The committed offset
    /// is read again first: another request on this session (on any
    /// server) may have stored this part number meanwhile, and storing it
    /// again could replace those bytes under the hash state committed.
    async fn commit_held(&mut self, part: Bytes) -> Result<StoredPart, ServiceError> {
        let index = &self.catalog.inner.index;
        let committed = index.upload(&self.row.id).await?.map(|r| r.offset);
        if committed != Some(self.offset) {
            return Err(match committed {
                Some(committed) => ServiceError::OffsetMismatch {
                    sent: self.offset,
                    committed,
                },
                None => ServiceError::UnknownUpload(self.row.id.clone()),
            });
        }
        let number = u32::try_from(self.row.parts.len() + 1).unwrap_or(u32::MAX);
        let len = part.len() as u64;
        let stored = self
            .catalog
            .inner
            .storage
            .put_resumable_part(&self.resumable(), number, part)
            .await?;
        let part = StoredPart {
            number,
            id: stored.id,
        };
        let state = hash_state::save(&self.hasher);
        let now = OffsetDateTime::now_utc();
        if !index
            .advance_upload(&self.row.id, self.offset, &part, len, &state, now)
            .await?
        {
            return Err(ServiceError::OffsetMismatch {
                sent: self.offset,
                committed: index
                    .upload(&self.row.id)
                    .await?
                    .map_or(self.offset, |r| r.offset),
            });
        }
        self.offset += len;
        self.row.parts.push(part.clone());
        Ok(part)
    }

    /// The last part: verify the whole hash, then complete and index, or abort.
    async fn finish(
        &mut self,
        caller: &Caller,
        last: Bytes,
    ) -> Result<UploadResponse, ServiceError> {
        let _held = self.catalog.lock(&self.row.sha256, Purpose::Upload).await?;
        // Every byte up to the end is hashed already (`take`).
        let actual = Sha256Hex::from_digest(self.hasher.clone().finalize().into());
        if actual != self.row.sha256 {
            self.catalog.drop_upload(&self.row).await?;
            return Err(ServiceError::HashMismatch {
                expected: self.row.sha256.clone(),
                actual,
            });
        }
        if !last.is_empty() || self.row.parts.is_empty() {
            self.commit_held(last).await?;
        }
        let storage = &self.catalog.inner.storage;
        let parts: Vec<_> = self
            .row
            .parts
            .iter()
            .map(|p| crate::storage::StoredPart {
                number: p.number,
                id: p.id.clone(),
            })
            .collect();
        storage
            .complete_resumable(&self.resumable(), &parts)
            .await?;
        self.catalog.index_finished(caller, &self.row).await
    }
}

impl Catalog {
    /// Index the content a finished session stored, and end the session.
    async fn index_finished(
        &self,
        caller: &Caller,
        row: &UploadRow,
    ) -> Result<UploadResponse, ServiceError> {
        let meta = UploadMeta::from_upload(row)?;
        let description = describe(&meta, row.created);
        // The multipart upload's attributes were fixed at its creation, so
        // the description goes in a sidecar (what `reindex` reads back).
        let sidecar = Sidecar {
            version: crate::storage::sidecar::SIDECAR_VERSION,
            sha256: row.sha256.clone(),
            key: row.key.clone(),
            size: row.length,
            description: description.clone(),
        };
        self.inner.storage.put_sidecar(&sidecar).await?;
        let asset = NewAsset {
            sha256: row.sha256.clone(),
            key: row.key.clone(),
            size: row.length,
            content_type: description.content_type,
            name: description.name,
            first_seen: description.first_seen,
            uploaded_by: caller.token_id().map(str::to_owned),
            verified_at: Some(OffsetDateTime::now_utc()),
        };
        let record = sighting(caller, &meta, OffsetDateTime::now_utc());
        let cap = self.inner.limits.max_sightings;
        let inserted = self.inner.index.insert(asset, record, cap).await?;
        self.inner.index.end_upload(&row.id).await?;
        if inserted.created {
            self.inner.metrics.upload_created(row.length);
        }
        tracing::info!(upload.id = row.id, asset.sha256 = %row.sha256, asset.size = row.length, token.id = caller.log_id(), created = inserted.created, "upload session finished");
        let now = OffsetDateTime::now_utc();
        Ok(UploadResponse {
            created: inserted.created,
            asset: caller.shown(inserted.asset, &meta, now),
        })
    }
}
