//! Scrub: re-read an asset's stored bytes, hash them, and compare with the
//! key. A mismatch or a missing object marks the asset (`integrity`), counts
//! in `/metrics` and is logged once at error level; nothing is ever deleted
//! or repaired here (the bytes may be the only copy; `fsck` and an operator
//! decide). Reads are paced by a byte-rate limiter shared by the server's
//! scrubs (`[jobs] scrub_bytes_per_sec`).

use std::num::NonZeroU32;

use asset_catalog_proto::{Asset, Integrity, Sha256Hex};
use futures_util::StreamExt;
use governor::{DefaultDirectRateLimiter, Quota};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::index::{Index, IndexError};
use crate::metrics::Metrics;
use crate::storage::{Storage, StorageError};

/// Bytes handed to the limiter at once (a chunk larger than this waits in
/// pieces).
const PACE_STEP: u32 = 1 << 20;

/// Paces scrub reads to a number of bytes per second.
#[derive(Debug)]
pub struct Pace {
    limiter: Option<DefaultDirectRateLimiter>,
    step: u32,
}

impl Pace {
    /// `bytes_per_sec` 0 (or beyond 4 GiB/s): no limit.
    pub fn new(bytes_per_sec: u64) -> Self {
        let Some(rate) = u32::try_from(bytes_per_sec).ok().and_then(NonZeroU32::new) else {
            return Self {
                limiter: None,
                step: PACE_STEP,
            };
        };
        let step = rate.get().min(PACE_STEP);
        let burst = NonZeroU32::new(step).unwrap_or(rate);
        Self {
            limiter: Some(DefaultDirectRateLimiter::direct(
                Quota::per_second(rate).allow_burst(burst),
            )),
            step,
        }
    }

    /// Wait until `bytes` more may be read.
    async fn take(&self, bytes: usize) {
        let Some(limiter) = &self.limiter else {
            return;
        };
        let mut left = u64::try_from(bytes).unwrap_or(u64::MAX);
        while left > 0 {
            let n = u32::try_from(left.min(u64::from(self.step))).unwrap_or(self.step);
            if let Some(n) = NonZeroU32::new(n) {
                // n never exceeds the burst, so this cannot fail.
                let _ = limiter.until_n_ready(n).await;
            }
            left -= u64::from(n);
        }
    }
}

/// Hash `asset`'s stored bytes: `Ok`, `Corrupt` (other bytes, or another
/// size), or `Missing`. Storage that does not answer is an error (nothing
/// is known).
pub async fn verify(
    storage: &Storage,
    asset: &Asset,
    pace: &Pace,
    metrics: &Metrics,
) -> Result<Integrity, StorageError> {
    let body = match storage.get(&asset.key, None).await {
        Ok(body) => body,
        Err(StorageError::NotFound { .. }) => return Ok(Integrity::Missing),
        Err(e) => return Err(e),
    };
    let mut stream = body.stream;
    let mut hasher = Sha256::new();
    let mut read = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = match chunk {
            Ok(chunk) => chunk,
            Err(StorageError::NotFound { .. }) => return Ok(Integrity::Missing),
            Err(e) => return Err(e),
        };
        pace.take(chunk.len()).await;
        hasher.update(&chunk);
        read += chunk.len() as u64;
        metrics.jobs.scrub_read(chunk.len() as u64);
    }
    let actual = Sha256Hex::from_digest(hasher.finalize().into());
    Ok(if actual == asset.sha256 && read == asset.size {
        Integrity::Ok
    } else {
        Integrity::Corrupt
    })
}

/// Why one asset could not be scrubbed.
#[derive(Debug, thiserror::Error)]
pub enum ScrubError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Index(#[from] IndexError),
}

/// Scrub one asset and record what was found; `None` when the asset is
/// gone (deleted meanwhile). A problem is logged at error level and
/// counted once, when it is first found.
pub async fn scrub_one(
    storage: &Storage,
    index: &Index,
    sha: &Sha256Hex,
    pace: &Pace,
    metrics: &Metrics,
) -> Result<Option<Integrity>, ScrubError> {
    let Some(asset) = index.get(sha).await? else {
        return Ok(None);
    };
    scrub_asset(storage, index, &asset, pace, metrics).await
}

/// [`scrub_one`] of an asset row already read.
pub async fn scrub_asset(
    storage: &Storage,
    index: &Index,
    asset: &Asset,
    pace: &Pace,
    metrics: &Metrics,
) -> Result<Option<Integrity>, ScrubError> {
    let sha = &asset.sha256;
    let found = verify(storage, asset, pace, metrics).await?;
    if found != Integrity::Ok {
        // A delete (object first, then row) or an fsck repair (another key)
        // may have run meanwhile: only the row as it is now counts.
        match index.get(sha).await? {
            Some(now) if now.key == asset.key => {}
            _ => return Ok(None),
        }
    }
    let before = index
        .record_integrity(sha, found, OffsetDateTime::now_utc())
        .await?;
    match (before, found) {
        (None, _) => return Ok(None),
        (Some(before), Integrity::Corrupt | Integrity::Missing) if before != found => {
            metrics.jobs.scrub_problem(found);
            tracing::error!(
                asset.sha256 = %sha,
                asset.key = %asset.key,
                integrity = found.as_str(),
                "scrub: the stored object is {}; nothing was changed (restore it from a copy, or see `fsck`)",
                if found == Integrity::Missing { "missing" } else { "corrupt: its bytes no longer hash to its key" }
            );
        }
        (Some(Integrity::Corrupt | Integrity::Missing), Integrity::Ok) => {
            tracing::info!(asset.sha256 = %sha, "scrub: the stored object is whole again");
        }
        _ => {}
    }
    Ok(Some(found))
}
