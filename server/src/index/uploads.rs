//! Resumable uploads (tus 1.0.0, issue 16), the same for every backend:
//! one row per upload session, so any server behind the load balancer can
//! continue a session another one began, and a crash loses at most the
//! part in flight. The tus protocol itself is the HTTP layer's; the index
//! keeps what it needs to go on: the declared content and where it goes,
//! the store's resumable (S3 multipart) upload, the parts stored so far,
//! the offset they reach and the SHA-256 state at that offset.
//!
//! Progress is committed at part boundaries with a compare-and-set on the
//! offset ([`Index::advance_upload`]): of two servers writing the same
//! session, one advances it and the other is told the offset moved.
//!
//! Parts are rows of their own (`upload_parts`), not a list in a column:
//! a 50 GB file in 16 MiB parts has about 3,200 of them, and a list that
//! is rewritten on every append grows with the session. Measured over
//! 3,200 appends, each its own commit: SQLite (WAL, without fsync to see
//! past it) wrote 482 MB of WAL with a JSON column, whose append cost rose
//! from 0.04 to 0.9 ms, and 29 MB with the table, at a constant 0.02-0.04
//! ms; PostgreSQL 15 (with fsync) wrote
//! 210 MB of WAL and left a 198 MB table with a JSONB column (random
//! ETags; TOAST rewrites the whole value), 1.5 MB and 360 kB with the
//! table, and took 23.6 s against 11.5 s. Through this module (debug
//! build, a shared 2-core machine) an advance took the same at the 3,200th
//! part as at the first (SQLite 0.4-1 ms with its fsync, PostgreSQL 0.2-0.3
//! ms with `fsync = off`), and reading the session with its 3,200 parts
//! 1.5-2.3 ms on SQLite and 3.6-8 ms on PostgreSQL.

use asset_catalog_proto::Sha256Hex;
use time::OffsetDateTime;

use super::{Index, IndexError};

/// One part the store holds for a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPart {
    /// The part's number in the store's upload (S3: 1 to 10,000).
    pub number: u32,
    /// The store's id of the part (S3: its ETag), needed to complete it.
    pub id: String,
}

/// A new upload session, as `POST /v1/uploads` creates it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewUpload {
    /// Random and URL-safe: the session's URL is `/v1/uploads/{id}`.
    pub id: String,
    /// The token that created it (`None` with auth off); only it may continue it.
    pub token_id: Option<String>,
    /// The content's hash, declared in `Upload-Metadata`.
    pub sha256: Sha256Hex,
    /// `Upload-Length`: the content's size in bytes.
    pub length: u64,
    pub name: String,
    pub path: Option<String>,
    /// As the client reported it (RFC 3339).
    pub mtime: Option<String>,
    pub client: String,
    /// The final object key, `<sha256>.<ext>`.
    pub key: String,
    /// The store's resumable upload id (S3: the multipart upload id).
    pub multipart_id: String,
    /// The serialised SHA-256 state at offset 0.
    pub hash_state: Vec<u8>,
    pub created: OffsetDateTime,
    pub expires: OffsetDateTime,
}

/// A stored upload session: what created it and how far it got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadRow {
    pub id: String,
    pub token_id: Option<String>,
    pub sha256: Sha256Hex,
    pub length: u64,
    pub name: String,
    pub path: Option<String>,
    pub mtime: Option<String>,
    pub client: String,
    pub key: String,
    pub multipart_id: String,
    /// The serialised SHA-256 state at `offset`.
    pub hash_state: Vec<u8>,
    pub created: OffsetDateTime,
    pub expires: OffsetDateTime,
    /// Bytes stored so far: the sum of the parts' lengths.
    pub offset: u64,
    /// The parts stored so far, by number.
    pub parts: Vec<StoredPart>,
    /// When the session last advanced (`created` until then).
    pub updated: OffsetDateTime,
}

/// The `uploads` columns every backend reads, in [`UploadRow`]'s order
/// (`offset` is a reserved word, quoted).
pub(crate) const UPLOAD_COLUMNS: &str = "id, token_id, sha256, length, name, path, mtime, client, \
     key, multipart_id, hash_state, created, expires, \"offset\", updated";

/// Upload sessions, on whichever backend the index is.
impl Index {
    /// Store a new session at offset 0 with no parts (`updated` = `created`).
    pub async fn create_upload(&self, new: &NewUpload) -> Result<(), IndexError> {
        each!(self, i => i.create_upload(new).await)
    }

    /// The session `id` with its parts, from one snapshot; expired or not
    /// (the caller compares `expires`). `None` when there is none.
    pub async fn upload(&self, id: &str) -> Result<Option<UploadRow>, IndexError> {
        each!(self, i => i.upload(id).await)
    }

    /// Record one more stored part, only if the session's offset is still
    /// `from` (compare-and-set: of two servers writing the same session,
    /// one advances it): sets the offset to `from + part_len`, appends
    /// `part`, replaces the hash state and sets `updated` to `now`, in one
    /// transaction. `false` when the offset moved (or the session is gone):
    /// nothing changed. An error when the new offset passes the length or
    /// the part's number is already stored.
    pub async fn advance_upload(
        &self,
        id: &str,
        from: u64,
        part: &StoredPart,
        part_len: u64,
        hash_state: &[u8],
        now: OffsetDateTime,
    ) -> Result<bool, IndexError> {
        each!(self, i => i.advance_upload(id, from, part, part_len, hash_state, now).await)
    }

    /// Delete the session (finished, terminated or expired) with its parts;
    /// returns it as it was, when it existed. Waits for an advance under
    /// way, so the row returned has every part committed.
    pub async fn end_upload(&self, id: &str) -> Result<Option<UploadRow>, IndexError> {
        each!(self, i => i.end_upload(id).await)
    }

    /// Up to `limit` sessions expired by `now` (`expires <= now`), those
    /// that expired first first, for the expiry job to abort and end.
    pub async fn expired_uploads(
        &self,
        now: OffsetDateTime,
        limit: usize,
    ) -> Result<Vec<UploadRow>, IndexError> {
        each!(self, i => i.expired_uploads(now, limit).await)
    }

    /// Open sessions and the bytes they hold, for metrics: (count, sum of offsets).
    pub async fn upload_totals(&self) -> Result<(u64, u64), IndexError> {
        each!(self, i => i.upload_totals().await)
    }
}
