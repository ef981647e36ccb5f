//! The job queue and what jobs record, on PostgreSQL, shared by every
//! server: a claim takes due rows with `FOR UPDATE SKIP LOCKED`, so two
//! servers never claim one job and neither waits for the other; a worker
//! heartbeats the rows it holds, and any server puts back those whose
//! worker stopped (killed, or cut off from the database).

use asset_catalog_proto::{Integrity, Media, Sha256Hex};
use time::OffsetDateTime;
use tokio_postgres::types::ToSql;

use super::{PgFail, PgIndex};
use crate::index::IndexError;
use crate::index::jobs::{ClaimedJob, FailedJob, JobCount, JobKind, JobOutcome, RetrySelection};
use crate::index::types::{from_nanos, to_i64, to_nanos};

impl PgIndex {
    /// Run one statement; the number of rows it touched.
    async fn exec(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<u64, IndexError> {
        let client = self.client().await?;
        let run = async {
            let stmt = client.prepare_cached(sql).await?;
            Ok::<_, PgFail>(client.execute(&stmt, params).await?)
        };
        run.await.map_err(|e| self.fail(e))
    }

    /// Run one query; its rows.
    async fn rows(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<tokio_postgres::Row>, IndexError> {
        let client = self.client().await?;
        let run = async {
            let stmt = client.prepare_cached(sql).await?;
            Ok::<_, PgFail>(client.query(&stmt, params).await?)
        };
        run.await.map_err(|e| self.fail(e))
    }

    /// Queue `kind` for `sha` unless such a job exists; `true` when queued.
    pub async fn enqueue_job(&self, kind: JobKind, sha: &Sha256Hex) -> Result<bool, IndexError> {
        let now = to_nanos(OffsetDateTime::now_utc());
        self.exec(
            "INSERT INTO jobs (kind, sha256, created) VALUES ($1, $2, $3) \
             ON CONFLICT (kind, sha256) DO NOTHING",
            &[&kind.as_str(), &sha.as_str(), &now],
        )
        .await
        .map(|n| n == 1)
    }

    /// Claim up to `n` due jobs of `kind` for `owner`, skipping rows another
    /// server is claiming at this moment.
    pub async fn claim_jobs(
        &self,
        owner: &str,
        kind: JobKind,
        n: usize,
    ) -> Result<Vec<ClaimedJob>, IndexError> {
        let now = to_nanos(OffsetDateTime::now_utc());
        let rows = self
            .rows(
                "UPDATE jobs SET state = 'running', owner = $1, heartbeat = $2, attempts = attempts + 1 \
                 WHERE id IN (SELECT id FROM jobs WHERE kind = $3 AND state = 'queued' AND run_after <= $2 \
                              ORDER BY run_after, id LIMIT $4 FOR UPDATE SKIP LOCKED) \
                 RETURNING id, sha256, attempts",
                &[&owner, &now, &kind.as_str(), &to_i64(n as u64)],
            )
            .await?;
        Ok(rows
            .iter()
            .filter_map(|r| {
                Some(ClaimedJob {
                    id: r.get(0),
                    kind,
                    sha256: r.get::<_, String>(1).parse().ok()?,
                    attempts: u32::try_from(r.get::<_, i32>(2)).unwrap_or(u32::MAX),
                })
            })
            .collect())
    }

    /// Tell the others `owner` is still working on its jobs.
    pub async fn heartbeat_jobs(&self, owner: &str) -> Result<u64, IndexError> {
        let now = to_nanos(OffsetDateTime::now_utc());
        self.exec(
            "UPDATE jobs SET heartbeat = $2 WHERE owner = $1 AND state = 'running'",
            &[&owner, &now],
        )
        .await
    }

    /// Put back `owner`'s running jobs (it is stopping), the run not counted.
    pub async fn release_jobs(&self, owner: &str) -> Result<u64, IndexError> {
        self.exec(
            "UPDATE jobs SET state = 'queued', owner = NULL, heartbeat = NULL, \
             attempts = greatest(attempts - 1, 0) WHERE owner = $1 AND state = 'running'",
            &[&owner],
        )
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
        let max = i32::try_from(max_attempts).unwrap_or(i32::MAX);
        self.exec(
            "UPDATE jobs SET state = CASE WHEN attempts >= $2 THEN 'failed' ELSE 'queued' END, \
                 owner = NULL, heartbeat = NULL, run_after = $3, \
                 error = 'its worker (' || owner || ') stopped during the run' \
             WHERE state = 'running' AND heartbeat < $1",
            &[&stale, &max, &now],
        )
        .await
    }

    /// Record how `owner`'s job `id` ended (nothing if it was reclaimed).
    pub async fn end_job(
        &self,
        id: i64,
        owner: &str,
        outcome: JobOutcome,
    ) -> Result<(), IndexError> {
        let now = to_nanos(OffsetDateTime::now_utc());
        const END: &str = "UPDATE jobs SET state = $3, run_after = $4, error = $5, owner = NULL, \
                           heartbeat = NULL WHERE id = $1 AND owner = $2";
        match outcome {
            JobOutcome::Done => {
                self.exec(
                    "DELETE FROM jobs WHERE id = $1 AND owner = $2",
                    &[&id, &owner],
                )
                .await?
            }
            JobOutcome::Retry { at, error } => {
                self.exec(END, &[&id, &owner, &"queued", &to_nanos(at), &error])
                    .await?
            }
            JobOutcome::Failed { error } => {
                self.exec(END, &[&id, &owner, &"failed", &now, &error])
                    .await?
            }
        };
        Ok(())
    }

    /// Queue scrubs of up to `n` assets last verified before `due`, the
    /// longest unverified first; returns how many were queued.
    pub async fn enqueue_scrubs(&self, due: OffsetDateTime, n: usize) -> Result<u64, IndexError> {
        let (due, now) = (to_nanos(due), to_nanos(OffsetDateTime::now_utc()));
        self.exec(
            "INSERT INTO jobs (kind, sha256, created) \
             SELECT 'scrub', sha256, $3 FROM assets WHERE verified_at < $1 \
             ORDER BY verified_at LIMIT $2 ON CONFLICT (kind, sha256) DO NOTHING",
            &[&due, &to_i64(n as u64), &now],
        )
        .await
    }

    /// Assets last verified before `due`.
    pub async fn scrub_due(&self, due: OffsetDateTime) -> Result<u64, IndexError> {
        let rows = self
            .rows(
                "SELECT count(*) FROM assets WHERE verified_at < $1",
                &[&to_nanos(due)],
            )
            .await?;
        Ok(rows
            .first()
            .map_or(0, |r| u64::try_from(r.get::<_, i64>(0)).unwrap_or_default()))
    }

    /// Jobs by kind and state.
    pub async fn job_counts(&self) -> Result<Vec<JobCount>, IndexError> {
        let rows = self
            .rows(
                "SELECT kind, state, count(*), min(created) FROM jobs \
                 GROUP BY kind, state ORDER BY kind, state",
                &[],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| JobCount {
                kind: r.get(0),
                state: r.get(1),
                count: u64::try_from(r.get::<_, i64>(2)).unwrap_or_default(),
                oldest: from_nanos(r.get(3)),
            })
            .collect())
    }

    /// Up to `limit` failed jobs, the latest failures first.
    pub async fn failed_jobs(&self, limit: usize) -> Result<Vec<FailedJob>, IndexError> {
        let rows = self
            .rows(
                "SELECT id, kind, sha256, attempts, coalesce(error, ''), run_after FROM jobs \
                 WHERE state = 'failed' ORDER BY run_after DESC, id DESC LIMIT $1",
                &[&to_i64(limit as u64)],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| FailedJob {
                id: r.get(0),
                kind: r.get(1),
                sha256: r.get(2),
                attempts: u32::try_from(r.get::<_, i32>(3)).unwrap_or(u32::MAX),
                error: r.get(4),
                failed_at: from_nanos(r.get(5)),
            })
            .collect())
    }

    /// Queue failed jobs again with fresh attempts; returns how many.
    pub async fn retry_jobs(&self, which: RetrySelection) -> Result<u64, IndexError> {
        const RETRY: &str = "UPDATE jobs SET state = 'queued', attempts = 0, run_after = 0, \
                             owner = NULL WHERE state = 'failed'";
        match which {
            RetrySelection::All => self.exec(RETRY, &[]).await,
            RetrySelection::Ids(ids) => {
                self.exec(&format!("{RETRY} AND id = ANY($1)"), &[&ids])
                    .await
            }
        }
    }

    /// Store what the metadata job read; `false` when the asset is gone.
    pub async fn record_media(&self, sha: &Sha256Hex, media: &Media) -> Result<bool, IndexError> {
        let json = serde_json::to_string(media).unwrap_or_default();
        let taken = media.taken_at.map(to_nanos);
        self.exec(
            "UPDATE assets SET media = $2::text::jsonb, kind = $3, taken_at = $4 WHERE sha256 = $1",
            &[&sha.as_str(), &json, &media.kind.as_str(), &taken],
        )
        .await
        .map(|n| n == 1)
    }

    /// Record the thumbnails' extension, or `""`: none can exist.
    pub async fn record_thumbnail(&self, sha: &Sha256Hex, ext: &str) -> Result<bool, IndexError> {
        self.exec(
            "UPDATE assets SET thumbnail = $2 WHERE sha256 = $1",
            &[&sha.as_str(), &ext],
        )
        .await
        .map(|n| n == 1)
    }

    /// The extension of `sha`'s thumbnails, when it has some.
    pub async fn thumbnail_ext(&self, sha: &Sha256Hex) -> Result<Option<String>, IndexError> {
        let rows = self
            .rows(
                "SELECT thumbnail FROM assets WHERE sha256 = $1 AND thumbnail <> ''",
                &[&sha.as_str()],
            )
            .await?;
        Ok(rows.first().map(|r| r.get(0)))
    }

    /// Record what a scrub found at `at`; the integrity it had before, or
    /// `None` when the asset is gone.
    pub async fn record_integrity(
        &self,
        sha: &Sha256Hex,
        found: Integrity,
        at: OffsetDateTime,
    ) -> Result<Option<Integrity>, IndexError> {
        let rows = self
            .rows(
                "UPDATE assets a SET integrity = $2, verified_at = $3 \
                 FROM (SELECT sha256, integrity FROM assets WHERE sha256 = $1 FOR UPDATE) old \
                 WHERE a.sha256 = old.sha256 RETURNING old.integrity",
                &[&sha.as_str(), &found.as_str(), &to_nanos(at)],
            )
            .await?;
        Ok(rows
            .first()
            .map(|r| Integrity::parse(r.get(0)).unwrap_or_default()))
    }
}
