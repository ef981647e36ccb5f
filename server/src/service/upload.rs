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
use crate::storage::{MultipartWriter, Storage};

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
}

/// Where the bytes of one verified upload go.
#[derive(Debug, Clone, Copy)]
pub(super) struct Target<'a> {
    pub key: &'a str,
    pub content_type: &'a str,
    pub expected: &'a Sha256Hex,
    pub limit: u64,
}

struct Pipeline<'a> {
    storage: &'a Storage,
    target: Target<'a>,
    hasher: Sha256,
    size: u64,
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
        hasher: Sha256::new(),
        size: 0,
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
            self.size += chunk.len() as u64;
            if self.size > self.target.limit {
                return Err(ServiceError::PayloadTooLarge {
                    limit: self.target.limit,
                });
            }
            self.hasher.update(&chunk);
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
        let actual = Sha256Hex::from_digest(self.hasher.clone().finalize().into());
        if &actual != self.target.expected {
            return Err(ServiceError::HashMismatch {
                expected: self.target.expected.clone(),
                actual,
            });
        }
        Ok(())
    }

    async fn switch_to_multipart(&mut self) -> Result<(), ServiceError> {
        let upload = self
            .storage
            .start_multipart(self.target.key, self.target.content_type)
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
                    .put(self.target.key, held, self.target.content_type)
                    .await?;
            }
        }
        Ok(self.size)
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
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    while let Some(chunk) = body.next().await {
        let chunk = chunk?;
        size += chunk.len() as u64;
        if size > limit {
            return Err(ServiceError::PayloadTooLarge { limit });
        }
        hasher.update(&chunk);
    }
    let actual = Sha256Hex::from_digest(hasher.finalize().into());
    if &actual != expected {
        return Err(ServiceError::HashMismatch {
            expected: expected.clone(),
            actual,
        });
    }
    Ok(size)
}
