//! One queued file from start to finish: hash it (unless the hash is
//! known), ask the server whether it has the content, then either record a
//! sighting (no bytes) or stream the bytes; identical content queued twice
//! is sent once and the second path becomes a sighting. A file that changes
//! underneath is hashed again, up to a limit. Large files go up as resumable
//! uploads (`resume.rs`); a failed try that moved such an upload forward
//! is retried as after a first failure. Requests the server holds back
//! (rate limit, quota: `hold.rs`) are not sent; such files wait in the queue.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::atomic::Ordering;

use asset_catalog_proto::Sha256Hex;
use tokio::sync::{Mutex, Semaphore};

use super::hold::Holds;
use super::outage::Outage;
use super::resume::{Mark, advanced, attempts_after};
use super::{Counters, PipelineSettings};
use crate::api::{ApiClient, FileMeta, file_meta};
use crate::config::{Root, SMALL_FILE_BYTES};
use crate::error::{Disposition, TransferError};
use crate::hasher::{Hasher, open_regular};
use crate::pipeline::check::Checker;
use crate::shown;
use crate::state::{FileStat, Job, JobUpdate, State, Status, now_ms};

/// How many times one job re-hashes a file that keeps changing.
const MAX_REHASH: u32 = 3;
/// A job whose root is no longer configured: its file is as good as gone.
const NOT_FOUND: std::io::ErrorKind = std::io::ErrorKind::NotFound;

/// Everything a job needs, shared by all jobs of a pipeline.
#[derive(Debug)]
pub(super) struct Worker {
    pub state: Rc<State>,
    pub api: ApiClient,
    pub hasher: Hasher,
    pub checker: Checker,
    pub roots: Vec<Root>,
    pub upload_permits: Semaphore,
    /// Uploads of files under `SMALL_FILE_BYTES`, a wider window of their own.
    pub small_permits: Semaphore,
    pub sighting_permits: Semaphore,
    /// One lock per hash being sent, holding "the server has it now".
    pub hash_locks: RefCell<HashMap<Sha256Hex, Rc<Mutex<bool>>>>,
    pub counters: Rc<Counters>,
    pub outage: Outage,
    pub holds: Holds,
    pub settings: PipelineSettings,
    /// Files of at least this size go up as resumable uploads (`resume.rs`).
    pub resumable_from: u64,
}

/// The end of one job, as reported to the scheduler.
#[derive(Debug)]
pub(super) struct JobDone {
    pub id: i64,
    pub update: JobUpdate,
    /// The row version the job ran for, when its end is to be recorded
    /// (the pipeline records the ends of jobs finishing together in one
    /// transaction before it fetches more work).
    pub record: Option<i64>,
    /// The server holds this file back (rate limit, quota): its retry is
    /// not a failure of the file.
    pub held: bool,
}

enum Outcome {
    Done,
    Superseded,
    NoRoot,
}

impl Worker {
    /// Run `job`; its end is recorded by the pipeline (see [`JobDone`]).
    pub async fn process(self: Rc<Self>, mut job: Job) -> JobDone {
        let before = self.session_mark(&job);
        let result = self.transfer(&mut job).await;
        let (update, error) = match result {
            Ok(Outcome::Done) => (JobUpdate::Synced, None),
            Ok(Outcome::Superseded) => {
                return JobDone {
                    id: job.id,
                    update: JobUpdate::Drop,
                    record: None,
                    held: false,
                };
            }
            Ok(Outcome::NoRoot) => (JobUpdate::Drop, None),
            Err(e) => {
                let reached = advanced(before.as_ref(), self.session_mark(&job).as_ref());
                let attempts = attempts_after(job.attempts, reached);
                let update = self.update_for(&e, attempts);
                if let Some(offset) = reached {
                    self.note_progress(&job, &e, offset, &update);
                }
                self.note_failure(&job, &e, &update, attempts);
                (update, Some(e))
            }
        };
        let held = error
            .as_ref()
            .is_some_and(|e| matches!(e.disposition(), Disposition::Hold(_)));
        if error.is_none() && update == JobUpdate::Synced {
            self.outage.succeeded(&self.state);
            tracing::debug!(file.path = %shown::path(&job.path), "synced");
        }
        JobDone {
            id: job.id,
            update,
            record: Some(job.version),
            held,
        }
    }

    /// The session of `job`'s file if it goes up resumably (see [`advanced`]).
    fn session_mark(&self, job: &Job) -> Option<Mark> {
        (job.stat.size >= self.resumable_from)
            .then(|| self.mark(job.id))
            .flatten()
    }

    /// Log that this try took the upload to `offset` before it failed
    /// with `e`, and when the next try comes (a hold is logged as a hold).
    fn note_progress(&self, job: &Job, e: &TransferError, offset: u64, update: &JobUpdate) {
        let JobUpdate::Retry { next_try_ms, .. } = update else {
            return;
        };
        if matches!(e.disposition(), Disposition::Hold(_)) {
            return;
        }
        let (path, len) = (shown::path(&job.path), job.stat.size);
        let retry_in_ms = (next_try_ms - now_ms()).max(0);
        tracing::info!(file.path = %path, upload.offset = offset, upload.length = len,
            retry_in_ms, error = %e,
            "{path}: the upload got to {offset} of {len} bytes before this try ended ({e}); \
             trying again in {retry_in_ms} ms, as after a first failure");
    }

    /// Log a job's error (after `attempts` tries in a row without
    /// progress): per file, or, when the trouble is the server's, once for
    /// all files (outage, holds).
    fn note_failure(&self, job: &Job, e: &TransferError, update: &JobUpdate, attempts: u32) {
        let path = shown::path(&job.path);
        match e.disposition() {
            Disposition::Hold(hold) => {
                if matches!(e, TransferError::Http { .. }) {
                    self.holds.note_refusal(&self.state, hold, job.stat.size, e);
                }
                tracing::debug!(file.path = %path, error = %e, attempts, "held back");
            }
            Disposition::Settled => tracing::info!(
                file.path = %path, error = %e,
                "{path}: the server has this content but records no further place for it; \
                 done ({e})"
            ),
            _ if e.is_systemic() => {
                // For the daemon's summary once a minute.
                self.counters.last_error.replace(Some(e.to_string()));
                self.outage.failed(&self.state, e);
                tracing::debug!(file.path = %path, error = %e, attempts, "transfer failed");
            }
            _ => {
                tracing::warn!(file.path = %path, error = %e, attempts, ?update, "transfer failed");
            }
        }
    }

    /// How a job that failed with `e` ends, after `attempts` tries in a row
    /// without progress (the backoff grows with them).
    fn update_for(&self, e: &TransferError, attempts: u32) -> JobUpdate {
        let retry_in = |delay: std::time::Duration| JobUpdate::Retry {
            error: e.to_string(),
            next_try_ms: now_ms()
                .saturating_add(i64::try_from(delay.as_millis()).unwrap_or(i64::MAX)),
            attempts,
        };
        let jitter = rand::random::<f64>();
        match e.disposition() {
            Disposition::Retry | Disposition::NotOnServer | Disposition::Rehash => {
                retry_in(self.settings.backoff.delay(attempts, jitter))
            }
            Disposition::Hold(hold) => retry_in(hold.retry_delay(attempts, jitter)),
            Disposition::Permanent => JobUpdate::Failed {
                error: e.to_string(),
            },
            Disposition::Settled => JobUpdate::Synced,
            Disposition::Vanished => JobUpdate::Drop,
        }
    }

    pub(super) fn root_of(&self, job: &Job) -> Option<&Root> {
        self.roots.iter().find(|r| job.path.starts_with(&r.path))
    }

    async fn transfer(&self, job: &mut Job) -> Result<Outcome, TransferError> {
        let Some(root) = self.root_of(job) else {
            return Ok(Outcome::NoRoot);
        };
        let mut rehashes = 0;
        loop {
            let (sha, stat) = match (&job.sha256, job.status) {
                (Some(sha), Status::Hashed) => (sha.clone(), job.stat),
                _ => match self.hash(job).await? {
                    Some(known) => known,
                    None => return Ok(Outcome::Superseded),
                },
            };
            let meta = file_meta(&job.path, &root.path, &root.label, stat.mtime_ns);
            match self.announce(job, &sha, &stat, &meta).await {
                Err(e) if e.disposition() == Disposition::Rehash && rehashes < MAX_REHASH => {
                    rehashes += 1;
                    tracing::debug!(file.path = %shown::path(&job.path), error = %e, "hashing again");
                    job.status = Status::Pending;
                }
                Err(e) => return Err(e),
                Ok(()) => return Ok(Outcome::Done),
            }
        }
    }

    /// Hash the file and record it; `None` when the row changed meanwhile.
    async fn hash(&self, job: &mut Job) -> Result<Option<(Sha256Hex, FileStat)>, TransferError> {
        let root = self
            .root_of(job)
            .ok_or(TransferError::Io(NOT_FOUND.into()))?;
        let h = self
            .hasher
            .hash(root.path.clone(), job.path.clone())
            .await?;
        let recorded = self
            .state
            .record_hash(job, &h.stat, &h.sha256, now_ms())
            .map_err(|e| TransferError::State(e.to_string()))?;
        if !recorded {
            return Ok(None);
        }
        job.stat = h.stat;
        job.sha256 = Some(h.sha256.clone());
        job.status = Status::Hashed;
        Ok(Some((h.sha256, h.stat)))
    }

    /// Make the server know this content at this path.
    async fn announce(
        &self,
        job: &Job,
        sha: &Sha256Hex,
        stat: &FileStat,
        meta: &FileMeta,
    ) -> Result<(), TransferError> {
        // The hash's lock is held from before the check to the end: a second
        // job of the same content asks the server only after the first has
        // ended (or learns from it that the server has the content). Asking
        // first and locking after let a "missing" answer given before the
        // first upload landed arrive after it had landed, and the second job
        // sent the bytes again.
        let lock = Rc::clone(self.hash_locks.borrow_mut().entry(sha.clone()).or_default());
        let result = {
            let mut known = lock.lock().await;
            let r = self.sight_or_put(*known, job, sha, stat, meta).await;
            if r.is_ok() {
                *known = true;
            }
            r
        };
        if Rc::strong_count(&lock) == 2 {
            self.hash_locks.borrow_mut().remove(sha);
        }
        result
    }

    /// A sighting when the content is `known` to be on the server or the
    /// server says it has it (or is receiving it), else the bytes.
    async fn sight_or_put(
        &self,
        known: bool,
        job: &Job,
        sha: &Sha256Hex,
        stat: &FileStat,
        meta: &FileMeta,
    ) -> Result<(), TransferError> {
        if !known && self.checker.is_missing(sha.clone()).await? {
            return self.put(job, sha, stat, meta).await;
        }
        match self.sighting(sha, meta).await {
            Err(e) if e.disposition() == Disposition::NotOnServer => {
                self.put(job, sha, stat, meta).await
            }
            other => other,
        }
    }

    async fn sighting(&self, sha: &Sha256Hex, meta: &FileMeta) -> Result<(), TransferError> {
        let _permit = self
            .sighting_permits
            .acquire()
            .await
            .map_err(|_| TransferError::Worker)?;
        self.holds
            .gate(None, now_ms())
            .map_err(TransferError::Held)?;
        self.api.sighting(sha, meta).await?;
        self.counters.sightings.fetch_add(1, Ordering::Relaxed);
        let rel = shown::text(&meta.rel_path);
        tracing::info!(
            asset.sha256 = %sha,
            file.rel_path = %rel,
            "recorded {rel} (content already on the server, no bytes sent)",
        );
        Ok(())
    }

    async fn put(
        &self,
        job: &Job,
        sha: &Sha256Hex,
        stat: &FileStat,
        meta: &FileMeta,
    ) -> Result<(), TransferError> {
        let permits = if stat.size < SMALL_FILE_BYTES {
            &self.small_permits
        } else {
            &self.upload_permits
        };
        let _permit = permits.acquire().await.map_err(|_| TransferError::Worker)?;
        self.holds
            .gate(Some(stat.size), now_ms())
            .map_err(TransferError::Held)?;
        let refusals = self.holds.quota_refusals();
        let created = if stat.size >= self.resumable_from {
            match self.put_resumable(job, sha, stat, meta).await {
                Err(e) if super::resume::unsupported(&e) => {
                    self.put_whole(job, sha, stat, meta).await?
                }
                other => other?,
            }
        } else {
            self.put_whole(job, sha, stat, meta).await?
        };
        self.counters.uploads.fetch_add(1, Ordering::Relaxed);
        if created {
            self.holds.note_stored(&self.state, stat.size, refusals);
        }
        let path = shown::path(&job.path);
        tracing::info!(
            file.path = %path,
            asset.sha256 = %sha,
            asset.size = stat.size,
            created,
            "uploaded {path} ({} bytes)",
            stat.size
        );
        Ok(())
    }

    /// The file in one `PUT`; true when the server stored new content.
    async fn put_whole(
        &self,
        job: &Job,
        sha: &Sha256Hex,
        stat: &FileStat,
        meta: &FileMeta,
    ) -> Result<bool, TransferError> {
        let root = self
            .root_of(job)
            .ok_or(TransferError::Io(NOT_FOUND.into()))?;
        let (file, _) = open_regular(&root.path, &job.path)?;
        Ok(self.api.upload(file, stat, sha, meta).await?.created)
    }
}
