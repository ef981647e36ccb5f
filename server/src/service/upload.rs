//! The verified upload pipeline. The body is hashed while it streams; bodies
//! up to [`SMALL_BODY_MAX`] are held in memory and stored with one PUT after
//! the hash matched; larger ones go into a multipart upload on the final key
//! that is completed only when the hash matches and aborted otherwise (a
//! multipart upload is invisible until completed). Either way no unverified
//! byte is ever visible, and memory per upload stays bounded.

use asset_catalog_proto::Sha256Hex;
use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use sha2::{Digest, Sha256};

use super::ServiceError;
use crate::storage::{MultipartWriter, ObjectAttrs, Storage};

/// Bodies up to this size are stored with a single PUT.
pub const SMALL_BODY_MAX: usize = 8 * 1024 * 1024;

/// A failure reading the request body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    /// The client stopped sending before the declared end.
    #[error("the request body ended early: {0}")]
    Incomplete(String),
    /// The body could not be decoded (bad chunked encoding, …).
    #[error("the request body is malformed: {0}")]
    Malformed(String),
    /// No bytes arrived for this many seconds (a slow or stuck sender).
    #[error("the request body stalled for {0} s")]
    Stalled(u64),
    /// Fewer than `min_rate` bytes per second arrived over `window` seconds.
    #[error(
        "the request body arrived at less than {min_rate} bytes/s over {window} s ([server] min_upload_bytes_per_sec)"
    )]
    TooSlow { min_rate: u64, window: u64 },
    /// The upload took longer than this many seconds in all.
    #[error("the upload took longer than {0} s ([server] upload_deadline_secs)")]
    Deadline(u64),
}

/// Counts and hashes a body as it streams, refusing it past `limit` bytes.
/// Every path that reads an upload body (store, drain, spool) meters it here.
#[derive(Debug, Clone)]
pub(super) struct Metered {
    hasher: Sha256,
    size: u64,
    limit: u64,
}

impl Metered {
    pub(super) fn new(limit: u64) -> Self {
        Self {
            hasher: Sha256::new(),
            size: 0,
            limit,
        }
    }

    /// Account for one chunk; 413 once the body is larger than the limit.
    pub(super) fn absorb(&mut self, chunk: &[u8]) -> Result<(), ServiceError> {
        self.size += chunk.len() as u64;
        if self.size > self.limit {
            return Err(ServiceError::PayloadTooLarge { limit: self.limit });
        }
        self.hasher.update(chunk);
        Ok(())
    }

    /// Bytes seen so far.
    pub(super) fn size(&self) -> u64 {
        self.size
    }

    /// The digest of everything absorbed.
    pub(super) fn digest(&self) -> Sha256Hex {
        Sha256Hex::from_digest(self.hasher.clone().finalize().into())
    }

    /// The size, if the digest is `expected`; 422 otherwise.
    pub(super) fn verify(&self, expected: &Sha256Hex) -> Result<u64, ServiceError> {
        let actual = self.digest();
        if &actual != expected {
            return Err(ServiceError::HashMismatch {
                expected: expected.clone(),
                actual,
            });
        }
        Ok(self.size)
    }
}

/// Where the bytes of one verified upload go.
#[derive(Debug, Clone, Copy)]
pub(super) struct Target<'a> {
    pub key: &'a str,
    pub attrs: ObjectAttrs<'a>,
    pub expected: &'a Sha256Hex,
    pub limit: u64,
}

struct Pipeline<'a> {
    storage: &'a Storage,
    target: Target<'a>,
    meter: Metered,
    held: Vec<Bytes>,
    held_len: usize,
    multipart: Option<MultipartWriter>,
}

/// Stream `body` into `target.key`, visible only if it hashes to `target.expected`.
/// Returns the size stored.
pub(super) async fn store_verified<S>(
    storage: &Storage,
    target: Target<'_>,
    body: S,
) -> Result<u64, ServiceError>
where
    S: Stream<Item = Result<Bytes, BodyError>> + Unpin,
{
    let mut pipeline = Pipeline {
        storage,
        target,
        meter: Metered::new(target.limit),
        held: Vec::new(),
        held_len: 0,
        multipart: None,
    };
    match pipeline.consume(body).await {
        Ok(()) => pipeline.commit().await,
        Err(e) => {
            if let Some(upload) = pipeline.multipart.take() {
                upload.abort().await;
            }
            Err(e)
        }
    }
}

impl Pipeline<'_> {
    async fn consume<S>(&mut self, mut body: S) -> Result<(), ServiceError>
    where
        S: Stream<Item = Result<Bytes, BodyError>> + Unpin,
    {
        while let Some(chunk) = body.next().await {
            let chunk = chunk?;
            self.meter.absorb(&chunk)?;
            if let Some(upload) = self.multipart.as_mut() {
                upload.write(chunk).await?;
                continue;
            }
            self.held_len += chunk.len();
            self.held.push(chunk);
            if self.held_len > SMALL_BODY_MAX {
                self.switch_to_multipart().await?;
            }
        }
        self.meter.verify(self.target.expected)?;
        Ok(())
    }

    async fn switch_to_multipart(&mut self) -> Result<(), ServiceError> {
        let upload = self
            .storage
            .start_multipart(self.target.key, self.target.attrs)
            .await?;
        let upload = self.multipart.insert(upload);
        for chunk in std::mem::take(&mut self.held) {
            upload.write(chunk).await?;
        }
        self.held_len = 0;
        Ok(())
    }

    async fn commit(mut self) -> Result<u64, ServiceError> {
        match self.multipart.take() {
            Some(upload) => upload.finish().await?,
            None => {
                let held = std::mem::take(&mut self.held);
                self.storage
                    .put(self.target.key, held, self.target.attrs)
                    .await?;
            }
        }
        Ok(self.meter.size())
    }
}

/// Read and discard `body`, checking its size and hash (content already stored).
pub(super) async fn drain_verified<S>(
    expected: &Sha256Hex,
    limit: u64,
    mut body: S,
) -> Result<u64, ServiceError>
where
    S: Stream<Item = Result<Bytes, BodyError>> + Unpin,
{
    let mut meter = Metered::new(limit);
    while let Some(chunk) = body.next().await {
        meter.absorb(&chunk?)?;
    }
    meter.verify(expected)
}
