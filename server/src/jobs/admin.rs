//! The operator's commands on jobs, run against the index (and for
//! `scrub --now`, the bucket) directly, safe while servers run:
//! `jobs status|failed|retry` and `scrub [--now] [SHA256…]`.

use asset_catalog_proto::{Integrity, Sha256Hex};
use time::OffsetDateTime;

use super::scrub::{Pace, scrub_one};
use crate::Config;
use crate::admin::AdminError;
use crate::index::Index;
use crate::index::jobs::{FailedJob, JobCount, JobKind, RetrySelection};
use crate::metrics::Metrics;
use crate::storage::Storage;

/// Hashes per page when scrubbing everything.
const PAGE: usize = 1000;

/// Run `f` on the index `config` names, giving SQLite files back after.
async fn with_index<T, F, Fut>(config: &Config, f: F) -> Result<T, AdminError>
where
    F: FnOnce(Index) -> Fut,
    Fut: std::future::Future<Output = Result<T, AdminError>>,
{
    let index = Index::open_tool(config).await?;
    let out = f(index.clone()).await;
    index.finish_tool()?;
    out
}

/// `jobs status`: jobs by kind and state, and the assets due for scrub.
pub async fn status(config: &Config) -> Result<(Vec<JobCount>, u64), AdminError> {
    let due = OffsetDateTime::now_utc() - config.jobs.scrub_period();
    with_index(config, |index| async move {
        Ok((index.job_counts().await?, index.scrub_due(due).await?))
    })
    .await
}

/// `jobs failed`: the latest failures.
pub async fn failed(config: &Config, limit: usize) -> Result<Vec<FailedJob>, AdminError> {
    with_index(config, |index| async move {
        Ok(index.failed_jobs(limit).await?)
    })
    .await
}

/// `jobs retry`: queue failed jobs again; how many.
pub async fn retry(config: &Config, which: RetrySelection) -> Result<u64, AdminError> {
    with_index(
        config,
        |index| async move { Ok(index.retry_jobs(which).await?) },
    )
    .await
}

/// `scrub SHA256…` (without `--now`): queue scrubs for the servers; how
/// many were queued (the others were queued already).
pub async fn queue_scrubs(config: &Config, hashes: Vec<Sha256Hex>) -> Result<u64, AdminError> {
    with_index(config, |index| async move {
        let mut queued = 0;
        for sha in &hashes {
            queued += u64::from(index.enqueue_job(JobKind::Scrub, sha).await?);
        }
        Ok(queued)
    })
    .await
}

/// What `scrub --now` found.
#[derive(Debug, Default)]
pub struct ScrubReport {
    pub checked: u64,
    pub ok: u64,
    pub corrupt: Vec<Sha256Hex>,
    pub missing: Vec<Sha256Hex>,
    /// Named hashes the index does not have.
    pub unknown: Vec<Sha256Hex>,
}

impl ScrubReport {
    pub fn clean(&self) -> bool {
        self.corrupt.is_empty() && self.missing.is_empty() && self.unknown.is_empty()
    }
}

/// `scrub --now [SHA256…]`: re-read and hash the named assets (all when
/// none is named) here and now, at `bytes_per_sec` (0: unthrottled),
/// recording what is found as the scrub job does; `each` sees every result.
pub async fn scrub_now(
    config: &Config,
    hashes: Vec<Sha256Hex>,
    bytes_per_sec: u64,
    mut each: impl FnMut(&Sha256Hex, Option<Integrity>),
) -> Result<ScrubReport, AdminError> {
    let storage = Storage::open(config)?;
    storage.probe().await?;
    let pace = Pace::new(bytes_per_sec);
    let metrics = Metrics::new();
    with_index(config, |index| async move {
        let mut report = ScrubReport::default();
        let mut one = |sha: Sha256Hex, found: Option<Integrity>| {
            each(&sha, found);
            match found {
                None => report.unknown.push(sha),
                Some(i) => {
                    report.checked += 1;
                    match i {
                        Integrity::Corrupt => report.corrupt.push(sha),
                        Integrity::Missing => report.missing.push(sha),
                        _ => report.ok += 1,
                    }
                }
            }
        };
        if !hashes.is_empty() {
            for sha in hashes {
                let found = scrub_one(&storage, &index, &sha, &pace, &metrics)
                    .await
                    .map_err(scrub_error)?;
                one(sha, found);
            }
            return Ok(report);
        }
        let mut after = None;
        loop {
            let page = index.key_page(after.take(), PAGE).await?;
            let more = page.len() == PAGE;
            after = page.last().map(|r| r.sha256.clone());
            for row in page {
                let found = scrub_one(&storage, &index, &row.sha256, &pace, &metrics)
                    .await
                    .map_err(scrub_error)?;
                if found.is_some() {
                    one(row.sha256, found);
                }
            }
            if !more {
                return Ok(report);
            }
        }
    })
    .await
}

fn scrub_error(e: super::scrub::ScrubError) -> AdminError {
    match e {
        super::scrub::ScrubError::Storage(e) => AdminError::Storage(e),
        super::scrub::ScrubError::Index(e) => AdminError::Index(e),
    }
}
