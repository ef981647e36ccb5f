//! The job queue and what jobs record, on SQLite. One process owns the
//! file, so claims need no row locks: the writer connection serialises
//! them. Every write joins the group commit (`group.rs`): beside a stream
//! of uploads, a job's claim and its results ride in the uploads' commits
//! instead of costing a WAL fsync each. Heartbeats and reclaim work as on PostgreSQL, so a job whose
//! server was killed runs again after the next start.

use asset_catalog_proto::{Integrity, Media, Sha256Hex};
use rusqlite::{OptionalExtension, params};
use time::OffsetDateTime;

use super::SqliteIndex;
use crate::index::IndexError;
use crate::index::jobs::{ClaimedJob, FailedJob, JobCount, JobKind, JobOutcome, RetrySelection};
use crate::index::types::{from_nanos, to_i64, to_nanos};

impl SqliteIndex {
    /// Queue `kind` for `sha` unless such a job exists; `true` when queued.
    pub async fn enqueue_job(&self, kind: JobKind, sha: &Sha256Hex) -> Result<bool, IndexError> {
        let sha = sha.clone();
        let now = to_nanos(OffsetDateTime::now_utc());
        self.write_grouped(move |conn| {
            conn.prepare_cached(
                "INSERT OR IGNORE INTO jobs (kind, sha256, created) VALUES (?, ?, ?)",
            )?
            .execute(params![kind.as_str(), sha.as_str(), now])
            .map(|n| n == 1)
        })
        .await
    }

    /// Claim up to `n` due jobs of `kind` for `owner`.
    pub async fn claim_jobs(
        &self,
        owner: &str,
        kind: JobKind,
        n: usize,
    ) -> Result<Vec<ClaimedJob>, IndexError> {
        let owner = owner.to_owned();
        let now = to_nanos(OffsetDateTime::now_utc());
        self.write_grouped(move |conn| {
            let mut stmt = conn.prepare_cached(
                "UPDATE jobs SET state = 'running', owner = ?1, heartbeat = ?2, attempts = attempts + 1 \
                 WHERE id IN (SELECT id FROM jobs WHERE kind = ?3 AND state = 'queued' AND run_after <= ?2 \
                              ORDER BY run_after, id LIMIT ?4) \
                 RETURNING id, sha256, attempts",
            )?;
            let rows = stmt.query_map(params![owner, now, kind.as_str(), to_i64(n as u64)], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get::<_, i64>(2)?))
            })?;
            let mut jobs = Vec::new();
            for row in rows {
                let (id, sha, attempts) = row?;
                if let Ok(sha256) = sha.parse() {
                    let attempts = u32::try_from(attempts).unwrap_or(u32::MAX);
                    jobs.push(ClaimedJob { id, kind, sha256, attempts });
                }
            }
            Ok(jobs)
        })
        .await
    }

    /// Tell the others `owner` is still working on its jobs.
    pub async fn heartbeat_jobs(&self, owner: &str) -> Result<u64, IndexError> {
        let owner = owner.to_owned();
        let now = to_nanos(OffsetDateTime::now_utc());
        self.write_grouped(move |conn| {
            conn.prepare_cached(
                "UPDATE jobs SET heartbeat = ?2 WHERE owner = ?1 AND state = 'running'",
            )?
            .execute(params![owner, now])
            .map(|n| n as u64)
        })
        .await
    }

    /// Put back `owner`'s running jobs (it is stopping), the run not counted.
    pub async fn release_jobs(&self, owner: &str) -> Result<u64, IndexError> {
        let owner = owner.to_owned();
        self.write_grouped(move |conn| {
            conn.prepare_cached(RELEASE_SQL)?
                .execute([owner])
                .map(|n| n as u64)
        })
        .await
    }

    /// Put back running jobs whose worker stopped heartbeating before
    /// `stale`; those out of attempts fail. Returns how many.
    pub async fn reclaim_jobs(
        &self,
        stale: OffsetDateTime,
        max_attempts: u32,
    ) -> Result<u64, IndexError> {
        let (stale, now) = (to_nanos(stale), to_nanos(OffsetDateTime::now_utc()));
        self.write_grouped(move |conn| {
            conn.prepare_cached(
                "UPDATE jobs SET state = iif(attempts >= ?2, 'failed', 'queued'), owner = NULL, \
                     heartbeat = NULL, run_after = ?3, \
                     error = 'its worker (' || owner || ') stopped during the run' \
                 WHERE state = 'running' AND heartbeat < ?1",
            )?
            .execute(params![stale, max_attempts, now])
            .map(|n| n as u64)
        })
        .await
    }

    /// Record how `owner`'s job `id` ended (nothing if it was reclaimed).
    pub async fn end_job(
        &self,
        id: i64,
        owner: &str,
        outcome: JobOutcome,
    ) -> Result<(), IndexError> {
        let owner = owner.to_owned();
        let now = to_nanos(OffsetDateTime::now_utc());
        self.write_grouped(move |conn| {
            match outcome {
                JobOutcome::Done => conn
                    .prepare_cached("DELETE FROM jobs WHERE id = ? AND owner = ?")?
                    .execute(params![id, owner])?,
                JobOutcome::Retry { at, error } => conn
                    .prepare_cached(END_SQL)?
                    .execute(params![id, owner, "queued", to_nanos(at), error])?,
                JobOutcome::Failed { error } => conn
                    .prepare_cached(END_SQL)?
                    .execute(params![id, owner, "failed", now, error])?,
            };
            Ok(())
        })
        .await
    }

    /// Queue scrubs of up to `n` assets last verified before `due`, the
    /// longest unverified first; returns how many were queued.
    pub async fn enqueue_scrubs(&self, due: OffsetDateTime, n: usize) -> Result<u64, IndexError> {
        let (due, now) = (to_nanos(due), to_nanos(OffsetDateTime::now_utc()));
        self.write_grouped(move |conn| {
            conn.prepare_cached(
                "INSERT OR IGNORE INTO jobs (kind, sha256, created) \
                 SELECT 'scrub', sha256, ?3 FROM assets WHERE verified_at < ?1 \
                 ORDER BY verified_at LIMIT ?2",
            )?
            .execute(params![due, to_i64(n as u64), now])
            .map(|n| n as u64)
        })
        .await
    }

    /// Assets last verified before `due`.
    pub async fn scrub_due(&self, due: OffsetDateTime) -> Result<u64, IndexError> {
        let due = to_nanos(due);
        self.read(move |conn| {
            conn.prepare_cached("SELECT count(*) FROM assets WHERE verified_at < ?")?
                .query_row([due], |r| r.get::<_, i64>(0))
                .map(|n| u64::try_from(n).unwrap_or_default())
        })
        .await
    }

    /// Jobs by kind and state.
    pub async fn job_counts(&self) -> Result<Vec<JobCount>, IndexError> {
        self.read(|conn| {
            conn.prepare_cached(
                "SELECT kind, state, count(*), min(created) FROM jobs GROUP BY kind, state ORDER BY kind, state",
            )?
            .query_map([], |r| {
                Ok(JobCount {
                    kind: r.get(0)?,
                    state: r.get(1)?,
                    count: u64::try_from(r.get::<_, i64>(2)?).unwrap_or_default(),
                    oldest: from_nanos(r.get(3)?),
                })
            })?
            .collect()
        })
        .await
    }

    /// Up to `limit` failed jobs, the latest failures first.
    pub async fn failed_jobs(&self, limit: usize) -> Result<Vec<FailedJob>, IndexError> {
        self.read(move |conn| {
            conn.prepare_cached(
                "SELECT id, kind, sha256, attempts, coalesce(error, ''), run_after FROM jobs \
                 WHERE state = 'failed' ORDER BY run_after DESC, id DESC LIMIT ?",
            )?
            .query_map([to_i64(limit as u64)], |r| {
                Ok(FailedJob {
                    id: r.get(0)?,
                    kind: r.get(1)?,
                    sha256: r.get(2)?,
                    attempts: u32::try_from(r.get::<_, i64>(3)?).unwrap_or(u32::MAX),
                    error: r.get(4)?,
                    failed_at: from_nanos(r.get(5)?),
                })
            })?
            .collect()
        })
        .await
    }

    /// Queue failed jobs again with fresh attempts; returns how many.
    pub async fn retry_jobs(&self, which: RetrySelection) -> Result<u64, IndexError> {
        self.write_grouped(move |conn| {
            let mut n = 0;
            match which {
                RetrySelection::All => n += conn.execute(RETRY_ALL, [])?,
                RetrySelection::Ids(ids) => {
                    let mut stmt = conn.prepare_cached(&format!("{RETRY_ALL} AND id = ?"))?;
                    for id in ids {
                        n += stmt.execute([id])?;
                    }
                }
            }
            Ok(n as u64)
        })
        .await
    }

    /// Store what the metadata job read; `false` when the asset is gone.
    pub async fn record_media(&self, sha: &Sha256Hex, media: &Media) -> Result<bool, IndexError> {
        let sha = sha.clone();
        let json = serde_json::to_string(media).unwrap_or_default();
        let (kind, taken) = (media.kind.as_str(), media.taken_at.map(to_nanos));
        self.write_grouped(move |conn| {
            conn.prepare_cached(
                "UPDATE assets SET media = ?2, kind = ?3, taken_at = ?4 WHERE sha256 = ?1",
            )?
            .execute(params![sha.as_str(), json, kind, taken])
            .map(|n| n == 1)
        })
        .await
    }

    /// Record the thumbnails' extension, or `""`: none can exist.
    pub async fn record_thumbnail(&self, sha: &Sha256Hex, ext: &str) -> Result<bool, IndexError> {
        let (sha, ext) = (sha.clone(), ext.to_owned());
        self.write_grouped(move |conn| {
            conn.prepare_cached("UPDATE assets SET thumbnail = ?2 WHERE sha256 = ?1")?
                .execute(params![sha.as_str(), ext])
                .map(|n| n == 1)
        })
        .await
    }

    /// The extension of `sha`'s thumbnails, when it has some.
    pub async fn thumbnail_ext(&self, sha: &Sha256Hex) -> Result<Option<String>, IndexError> {
        let sha = sha.clone();
        self.read(move |conn| {
            conn.prepare_cached(
                "SELECT thumbnail FROM assets WHERE sha256 = ? AND thumbnail <> ''",
            )?
            .query_row([sha.as_str()], |r| r.get(0))
            .optional()
        })
        .await
    }

    /// Record what a scrub found at `at`; the integrity it had before, or
    /// `None` when the asset is gone.
    pub async fn record_integrity(
        &self,
        sha: &Sha256Hex,
        found: Integrity,
        at: OffsetDateTime,
    ) -> Result<Option<Integrity>, IndexError> {
        let sha = sha.clone();
        let at = to_nanos(at);
        self.write_grouped(move |conn| {
            let before: Option<String> = conn
                .prepare_cached("SELECT integrity FROM assets WHERE sha256 = ?")?
                .query_row([sha.as_str()], |r| r.get(0))
                .optional()?;
            if before.is_some() {
                conn.prepare_cached(
                    "UPDATE assets SET integrity = ?2, verified_at = ?3 WHERE sha256 = ?1",
                )?
                .execute(params![sha.as_str(), found.as_str(), at])?;
            }
            Ok(before.map(|b| Integrity::parse(&b).unwrap_or_default()))
        })
        .await
    }
}

const RELEASE_SQL: &str = "UPDATE jobs SET state = 'queued', owner = NULL, heartbeat = NULL, \
                           attempts = max(attempts - 1, 0) WHERE owner = ?1 AND state = 'running'";

const END_SQL: &str = "UPDATE jobs SET state = ?3, run_after = ?4, error = ?5, owner = NULL, heartbeat = NULL \
                       WHERE id = ?1 AND owner = ?2";

const RETRY_ALL: &str = "UPDATE jobs SET state = 'queued', attempts = 0, run_after = 0, owner = NULL \
                         WHERE state = 'failed'";
