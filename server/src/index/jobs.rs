//! The job queue's values, the same for every backend (see `crate::jobs`
//! for what runs them). A job is a row per (kind, hash): queued, running
//! under one worker's heartbeat, or failed with its error; a job that
//! succeeds is removed, so the table holds only work still to do and
//! failures to look at.

use asset_catalog_proto::Sha256Hex;
use time::OffsetDateTime;

/// What a job does with its asset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobKind {
    /// Sniff the type and read dimensions, EXIF, duration.
    Metadata,
    /// Make the thumbnails of an image.
    Thumbnail,
    /// Re-read the stored bytes and compare their hash with the key.
    Scrub,
}

impl JobKind {
    pub const ALL: [Self; 3] = [Self::Metadata, Self::Thumbnail, Self::Scrub];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Metadata => "metadata",
            Self::Thumbnail => "thumbnail",
            Self::Scrub => "scrub",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == text)
    }
}

impl std::fmt::Display for JobKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A job a worker claimed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedJob {
    pub id: i64,
    pub kind: JobKind,
    pub sha256: Sha256Hex,
    /// Runs so far, this one included.
    pub attempts: u32,
}

/// How a job ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobOutcome {
    /// Done: the row goes.
    Done,
    /// Failed for now: run again at `at`.
    Retry { at: OffsetDateTime, error: String },
    /// Failed for good (or out of attempts): kept with its error for
    /// `jobs failed` and `jobs retry`.
    Failed { error: String },
}

/// How many jobs of one kind are in one state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobCount {
    pub kind: String,
    pub state: String,
    pub count: u64,
    /// The oldest one's creation time.
    pub oldest: OffsetDateTime,
}

/// A failed job, as `jobs failed` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedJob {
    pub id: i64,
    pub kind: String,
    pub sha256: String,
    pub attempts: u32,
    pub error: String,
    /// When it failed for the last time.
    pub failed_at: OffsetDateTime,
}

/// Which failed jobs `jobs retry` puts back in the queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RetrySelection {
    All,
    Ids(Vec<i64>),
}

use asset_catalog_proto::{Integrity, Media};

use super::{Index, IndexError};

/// The queue and what jobs record, on whichever backend the index is.
impl Index {
    /// Queue `kind` for `sha` unless such a job exists; `true` when queued.
    pub async fn enqueue_job(&self, kind: JobKind, sha: &Sha256Hex) -> Result<bool, IndexError> {
        each!(self, i => i.enqueue_job(kind, sha).await)
    }

    /// Claim up to `n` due jobs of `kind` for `owner`; no two workers
    /// (on any server) claim one job.
    pub async fn claim_jobs(
        &self,
        owner: &str,
        kind: JobKind,
        n: usize,
    ) -> Result<Vec<ClaimedJob>, IndexError> {
        each!(self, i => i.claim_jobs(owner, kind, n).await)
    }

    /// Tell the others `owner` is still working on its jobs.
    pub async fn heartbeat_jobs(&self, owner: &str) -> Result<u64, IndexError> {
        each!(self, i => i.heartbeat_jobs(owner).await)
    }

    /// Put back `owner`'s running jobs (it is stopping), the run not counted.
    pub async fn release_jobs(&self, owner: &str) -> Result<u64, IndexError> {
        each!(self, i => i.release_jobs(owner).await)
    }

    /// Put back running jobs whose worker stopped heartbeating before
    /// `stale`; those out of attempts fail.
    pub async fn reclaim_jobs(
        &self,
        stale: OffsetDateTime,
        max_attempts: u32,
    ) -> Result<u64, IndexError> {
        each!(self, i => i.reclaim_jobs(stale, max_attempts).await)
    }

    /// Record how `owner`'s job `id` ended (nothing if it was reclaimed).
    pub async fn end_job(
        &self,
        id: i64,
        owner: &str,
        outcome: JobOutcome,
    ) -> Result<(), IndexError> {
        each!(self, i => i.end_job(id, owner, outcome).await)
    }

    /// Queue scrubs of up to `n` assets last verified before `due`.
    pub async fn enqueue_scrubs(&self, due: OffsetDateTime, n: usize) -> Result<u64, IndexError> {
        each!(self, i => i.enqueue_scrubs(due, n).await)
    }

    /// Assets last verified before `due`.
    pub async fn scrub_due(&self, due: OffsetDateTime) -> Result<u64, IndexError> {
        each!(self, i => i.scrub_due(due).await)
    }

    /// Jobs by kind and state.
    pub async fn job_counts(&self) -> Result<Vec<JobCount>, IndexError> {
        each!(self, i => i.job_counts().await)
    }

    /// Up to `limit` failed jobs, the latest failures first.
    pub async fn failed_jobs(&self, limit: usize) -> Result<Vec<FailedJob>, IndexError> {
        each!(self, i => i.failed_jobs(limit).await)
    }

    /// Queue failed jobs again with fresh attempts; returns how many.
    pub async fn retry_jobs(&self, which: RetrySelection) -> Result<u64, IndexError> {
        each!(self, i => i.retry_jobs(which).await)
    }

    /// Store what the metadata job read; `false` when the asset is gone.
    pub async fn record_media(&self, sha: &Sha256Hex, media: &Media) -> Result<bool, IndexError> {
        each!(self, i => i.record_media(sha, media).await)
    }

    /// Record the thumbnails' extension, or `""`: none can exist.
    pub async fn record_thumbnail(&self, sha: &Sha256Hex, ext: &str) -> Result<bool, IndexError> {
        each!(self, i => i.record_thumbnail(sha, ext).await)
    }

    /// The extension of `sha`'s thumbnails, when it has some.
    pub async fn thumbnail_ext(&self, sha: &Sha256Hex) -> Result<Option<String>, IndexError> {
        each!(self, i => i.thumbnail_ext(sha).await)
    }

    /// Record what a scrub found at `at`; the integrity before, or `None`
    /// when the asset is gone.
    pub async fn record_integrity(
        &self,
        sha: &Sha256Hex,
        found: Integrity,
        at: OffsetDateTime,
    ) -> Result<Option<Integrity>, IndexError> {
        each!(self, i => i.record_integrity(sha, found, at).await)
    }
}
