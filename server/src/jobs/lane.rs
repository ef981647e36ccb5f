//! The lanes that claim and run jobs: one for metadata and thumbnails
//! (`[jobs] workers` at once), one for scrub (one at a time, paced). A lane
//! with nothing to do polls the queue with a growing pause (up to a
//! second); the scrub lane, finding nothing, queues the next assets due.

use std::sync::Arc;
use std::time::{Duration, Instant};

use asset_catalog_proto::Asset;
use time::OffsetDateTime;
use tokio::sync::Semaphore;

use super::{Ctx, JobError, grace_over, media, pause, scrub};
use crate::index::jobs::{ClaimedJob, JobKind, JobOutcome};

const IDLE_MIN: Duration = Duration::from_millis(50);
const IDLE_MAX: Duration = Duration::from_secs(1);
/// A scrub lane that found nothing due looks again after this.
const SCRUB_IDLE: Duration = Duration::from_secs(5);
/// Scrubs queued at once by one server.
const SCRUB_BATCH: usize = 64;
/// Uploads count as paused after this long without one.
const QUIET: Duration = Duration::from_secs(1);
/// First retry delay; doubled for each further attempt, up to an hour.
const RETRY_BASE: Duration = Duration::from_secs(30);
const RETRY_MAX: Duration = Duration::from_secs(3600);

/// Metadata and thumbnails; thumbnails first, so an image's grid picture
/// follows its metadata instead of waiting behind a backfill.
pub(super) async fn media(ctx: Arc<Ctx>) {
    let slots = Arc::new(Semaphore::new(ctx.config.workers));
    let mut idle = IDLE_MIN;
    loop {
        let Ok(permit) = Arc::clone(&slots).acquire_owned().await else {
            return;
        };
        if *ctx.stop.borrow() || !yield_to_uploads(&ctx).await {
            return;
        }
        let mut claimed = None;
        for kind in [JobKind::Thumbnail, JobKind::Metadata] {
            match claim(&ctx, kind).await {
                Ok(Some(job)) => {
                    claimed = Some(job);
                    break;
                }
                Ok(None) => {}
                Err(()) => break,
            }
        }
        match claimed {
            Some(job) => {
                idle = IDLE_MIN;
                let task = Arc::clone(&ctx);
                ctx.tasks.spawn(async move {
                    run(&task, job).await;
                    drop(permit);
                });
            }
            None => {
                drop(permit);
                if !pause(&ctx, idle).await {
                    return;
                }
                idle = (idle * 2).min(IDLE_MAX);
            }
        }
    }
}

/// One scrub at a time, queueing the next due assets when none is queued.
pub(super) async fn scrub(ctx: Arc<Ctx>) {
    let index = ctx.catalog.index();
    loop {
        if *ctx.stop.borrow() || !yield_to_uploads(&ctx).await {
            return;
        }
        let wait = match claim(&ctx, JobKind::Scrub).await {
            Ok(Some(job)) => {
                run(&ctx, job).await;
                Duration::ZERO
            }
            Ok(None) => {
                let due = OffsetDateTime::now_utc() - ctx.config.scrub_period();
                match index.enqueue_scrubs(due, SCRUB_BATCH).await {
                    Ok(0) => SCRUB_IDLE,
                    Ok(_) => Duration::ZERO,
                    Err(e) => {
                        tracing::warn!("jobs: cannot queue scrubs: {e}");
                        SCRUB_IDLE
                    }
                }
            }
            Err(()) => IDLE_MAX,
        };
        if !pause(&ctx, wait).await {
            return;
        }
    }
}

/// Wait until this server has had no upload under way for [`QUIET`], at
/// most `[jobs] yield_to_uploads_secs`: jobs take what uploads leave, and a
/// server that never pauses still runs a job per lane that often. `false`
/// when the jobs stop meanwhile.
async fn yield_to_uploads(ctx: &Ctx) -> bool {
    let deadline = Instant::now() + ctx.config.yield_to_uploads();
    loop {
        let quiet = ctx.catalog.uploads_quiet_for();
        let now = Instant::now();
        if quiet >= QUIET || now >= deadline {
            return true;
        }
        let nap = (QUIET - quiet)
            .min(deadline - now)
            .max(Duration::from_millis(10));
        if !pause(ctx, nap).await {
            return false;
        }
    }
}

/// One due job of `kind`, if any; `Err` (logged) when the index failed.
async fn claim(ctx: &Ctx, kind: JobKind) -> Result<Option<ClaimedJob>, ()> {
    match ctx.catalog.index().claim_jobs(&ctx.owner, kind, 1).await {
        Ok(mut jobs) => Ok(jobs.pop()),
        Err(e) => {
            tracing::warn!("jobs: cannot claim {kind} jobs: {e}");
            let _ = pause(ctx, IDLE_MAX).await;
            Err(())
        }
    }
}

/// Run `job` within its time limit and record how it ended; a job still
/// running when a stop's grace is over is dropped unrecorded (the stop
/// puts it back in the queue).
async fn run(ctx: &Ctx, job: ClaimedJob) {
    let started = Instant::now();
    let result = tokio::select! {
        result = execute(ctx, &job) => result,
        () = grace_over(ctx) => return,
    };
    let outcome = outcome_of(ctx, &job, result);
    let label = match &outcome {
        JobOutcome::Done => "done",
        JobOutcome::Retry { .. } => "retry",
        JobOutcome::Failed { .. } => "failed",
    };
    let secs = started.elapsed().as_secs_f64();
    ctx.catalog.metrics().jobs.job_ran(job.kind, label, secs);
    match &outcome {
        JobOutcome::Done => {
            tracing::debug!(job.id = job.id, job.kind = %job.kind, asset.sha256 = %job.sha256, secs, "job done")
        }
        JobOutcome::Retry { at, error } => {
            tracing::info!(job.id = job.id, job.kind = %job.kind, asset.sha256 = %job.sha256, attempt = job.attempts, retry_at = %at, "job failed, will retry: {error}")
        }
        JobOutcome::Failed { error } => {
            tracing::warn!(job.id = job.id, job.kind = %job.kind, asset.sha256 = %job.sha256, attempt = job.attempts, "job failed: {error}")
        }
    }
    if let Err(e) = ctx
        .catalog
        .index()
        .end_job(job.id, &ctx.owner, outcome)
        .await
    {
        tracing::warn!(
            job.id = job.id,
            "jobs: cannot record the end of a job ({e}); it runs again after the lease"
        );
    }
}

async fn execute(ctx: &Ctx, job: &ClaimedJob) -> Result<(), JobError> {
    let base = ctx.config.job_timeout();
    match job.kind {
        JobKind::Metadata => within(base, media::metadata(ctx, &job.sha256)).await,
        JobKind::Thumbnail => within(base, media::thumbnail(ctx, &job.sha256)).await,
        JobKind::Scrub => {
            let Some(asset) = ctx.catalog.index().get(&job.sha256).await? else {
                return Ok(());
            };
            // A scrub also gets the time its size takes at the scrub rate.
            let rate = ctx.config.scrub_bytes_per_sec;
            let limit = base + Duration::from_secs(asset.size.checked_div(rate).unwrap_or(0));
            within(limit, scrub_job(ctx, &asset)).await
        }
    }
}

/// `work`, failed as transient when it runs longer than `limit`.
async fn within(
    limit: Duration,
    work: impl std::future::Future<Output = Result<(), JobError>>,
) -> Result<(), JobError> {
    tokio::time::timeout(limit, work).await.unwrap_or_else(|_| {
        Err(JobError::Transient(format!(
            "it ran out of its time limit ({} s)",
            limit.as_secs()
        )))
    })
}

async fn scrub_job(ctx: &Ctx, asset: &Asset) -> Result<(), JobError> {
    let (storage, index) = (ctx.catalog.storage(), ctx.catalog.index());
    scrub::scrub_asset(storage, index, asset, &ctx.pace, ctx.catalog.metrics())
        .await
        .map(drop)
        .map_err(|e| JobError::Transient(e.to_string()))
}

fn outcome_of(ctx: &Ctx, job: &ClaimedJob, result: Result<(), JobError>) -> JobOutcome {
    match result {
        Ok(()) => JobOutcome::Done,
        Err(JobError::Permanent(error)) => JobOutcome::Failed { error },
        Err(JobError::Transient(error)) if job.attempts >= ctx.config.max_attempts => {
            JobOutcome::Failed {
                error: format!("{error} (after {} attempts)", job.attempts),
            }
        }
        Err(JobError::Transient(error)) => {
            let exp = job.attempts.saturating_sub(1).min(10);
            let delay = (RETRY_BASE * 2u32.pow(exp)).min(RETRY_MAX);
            JobOutcome::Retry {
                at: OffsetDateTime::now_utc() + delay,
                error,
            }
        }
    }
}
