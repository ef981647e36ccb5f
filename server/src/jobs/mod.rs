//! Background jobs: scrub every stored byte, learn what each asset is, make
//! thumbnails. The queue is the `jobs` table of the index (see
//! `index/jobs.rs`), so jobs survive restarts and, on PostgreSQL, any number
//! of servers share it: a claim skips rows another server holds, a worker
//! heartbeats what it runs, and a job whose server died is put back after
//! `[jobs] lease_secs` and runs elsewhere. A job that succeeds is removed;
//! one that fails is retried with backoff, then kept as failed with its
//! error (`asset-catalog-server jobs failed|retry`).
//!
//! Jobs run off the request path, on a runtime of their own: `[jobs]
//! workers` metadata and thumbnail jobs at once, plus one scrub lane paced
//! to `[jobs] scrub_bytes_per_sec`. Their CPU-heavy part (parsing, decoding,
//! resizing) runs on threads of its own at `[jobs] nice`, below requests;
//! those threads hold no lock a request waits for (index calls and I/O run
//! at normal priority), so a lower priority cannot stall a request.

pub mod admin;
mod lane;
mod media;
mod metrics;
pub mod scrub;

use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;
use tokio::sync::watch;

pub use metrics::JobMetrics;

use crate::config::JobsConfig;
use crate::index::jobs::{JobCount, JobKind};
use crate::service::Catalog;

/// How often the queue is counted for `/metrics` and `STATUS=`.
const STATUS_EVERY: Duration = Duration::from_secs(15);
/// How long a stop lets the jobs under way finish; those still running
/// then are dropped unrecorded and put back in the queue.
const STOP_GRACE: Duration = Duration::from_secs(3);

/// Why a job failed.
#[derive(Debug)]
pub(crate) enum JobError {
    /// Trying again cannot help (a corrupt image, a missing object).
    Permanent(String),
    /// It may work later (storage or index unavailable, a timeout).
    Transient(String),
}

impl From<crate::index::IndexError> for JobError {
    fn from(e: crate::index::IndexError) -> Self {
        Self::Transient(e.to_string())
    }
}

/// What every job of this server shares.
#[derive(Debug)]
pub(crate) struct Ctx {
    catalog: Catalog,
    config: JobsConfig,
    /// This process, as the `jobs.owner` of what it runs.
    owner: String,
    pace: scrub::Pace,
    /// Where the CPU-heavy work runs: blocking threads at `[jobs] nice`.
    cpu: tokio::runtime::Handle,
    stop: watch::Receiver<bool>,
    /// Every task of the jobs, so that a stop can wait for them.
    tasks: tokio_util::task::TaskTracker,
}

/// The jobs this server runs; stop with [`Jobs::stop`].
#[derive(Debug)]
pub struct Jobs {
    runtime: tokio::runtime::Runtime,
    cpu: tokio::runtime::Runtime,
    stop: watch::Sender<bool>,
    ctx: Arc<Ctx>,
}

impl Jobs {
    /// Start the workers (unless `[jobs] enabled = false`); `status` is the
    /// start of the `STATUS=` line the queue's state is appended to.
    pub fn start(
        catalog: &Catalog,
        config: &JobsConfig,
        status: String,
    ) -> std::io::Result<Option<Self>> {
        if !config.enabled {
            tracing::info!("[jobs] enabled = false: this server runs no background jobs");
            return Ok(None);
        }
        let nice = i32::from(config.nice);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("asset-catalog-jobs")
            .enable_all()
            .build()?;
        // Only its blocking pool is used (spawn_blocking), one thread per worker.
        let cpu = tokio::runtime::Builder::new_current_thread()
            .max_blocking_threads(config.workers)
            .thread_name("asset-catalog-jobs-cpu")
            .on_thread_start(move || lower_priority(nice))
            .build()?;
        let (stop, stopped) = watch::channel(false);
        let owner = format!(
            "{}:{}:{:08x}",
            rustix::system::uname().nodename().to_string_lossy(),
            std::process::id(),
            rand::random::<u32>()
        );
        let ctx = Arc::new(Ctx {
            catalog: catalog.clone(),
            config: config.clone(),
            owner,
            pace: scrub::Pace::new(config.scrub_bytes_per_sec),
            cpu: cpu.handle().clone(),
            stop: stopped,
            tasks: tokio_util::task::TaskTracker::new(),
        });
        tracing::info!(owner = %ctx.owner, workers = config.workers, nice, scrub_bytes_per_sec = config.scrub_bytes_per_sec, "background jobs started");
        let handle = runtime.handle();
        ctx.tasks.spawn_on(lane::media(Arc::clone(&ctx)), handle);
        ctx.tasks.spawn_on(lane::scrub(Arc::clone(&ctx)), handle);
        ctx.tasks.spawn_on(heartbeat(Arc::clone(&ctx)), handle);
        ctx.tasks.spawn_on(report(Arc::clone(&ctx), status), handle);
        Ok(Some(Self {
            runtime,
            cpu,
            stop,
            ctx,
        }))
    }

    /// Stop the workers; the jobs they were running go back to the queue
    /// at once (not after the lease), so another server or the next start
    /// runs them.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        self.ctx.tasks.close();
        let grace = STOP_GRACE + Duration::from_secs(1);
        if tokio::time::timeout(grace, self.ctx.tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!("stopping: background jobs did not stop in time");
        }
        self.runtime.shutdown_background();
        self.cpu.shutdown_background();
        let index = self.ctx.catalog.index();
        match index.release_jobs(&self.ctx.owner).await {
            Ok(0) => {}
            Ok(n) => tracing::info!("stopping: {n} running jobs put back in the queue"),
            Err(e) => tracing::warn!(
                "stopping: cannot put the running jobs back ({e}); they run again after [jobs] lease_secs"
            ),
        }
    }
}

/// Run this thread at `nice` (Linux schedules threads one by one).
fn lower_priority(nice: i32) {
    let me = rustix::thread::gettid();
    if let Err(e) = rustix::process::setpriority_process(Some(me), nice) {
        tracing::debug!("cannot lower the jobs' thread priority: {e}");
    }
}

/// Sleep `d`, or less when the jobs stop; `false` when they stopped.
async fn pause(ctx: &Ctx, d: Duration) -> bool {
    let mut stop = ctx.stop.clone();
    tokio::select! {
        _ = tokio::time::sleep(d) => !*stop.borrow(),
        _ = stop.changed() => false,
    }
}

/// Resolves [`STOP_GRACE`] after the jobs were told to stop.
async fn grace_over(ctx: &Ctx) {
    let mut stop = ctx.stop.clone();
    if stop.wait_for(|stopped| *stopped).await.is_ok() {
        tokio::time::sleep(STOP_GRACE).await;
    } else {
        std::future::pending::<()>().await;
    }
}

/// Keep this server's running jobs, and put back those of servers that
/// stopped heartbeating.
async fn heartbeat(ctx: Arc<Ctx>) {
    let lease = ctx.config.lease();
    let index = ctx.catalog.index();
    while pause(&ctx, lease / 4).await {
        if let Err(e) = index.heartbeat_jobs(&ctx.owner).await {
            tracing::warn!("jobs: heartbeat failed: {e}");
        }
        let stale = OffsetDateTime::now_utc() - lease;
        match index.reclaim_jobs(stale, ctx.config.max_attempts).await {
            Ok(0) => {}
            Ok(n) => tracing::warn!(
                "jobs: {n} jobs whose worker stopped heartbeating for {} s were put back",
                lease.as_secs()
            ),
            Err(e) => tracing::warn!("jobs: reclaiming stale jobs failed: {e}"),
        }
    }
}

/// Count the queue for `/metrics` and the `STATUS=` line.
async fn report(ctx: Arc<Ctx>, status: String) {
    let index = ctx.catalog.index();
    let metrics = &ctx.catalog.metrics().jobs;
    loop {
        let due = OffsetDateTime::now_utc() - ctx.config.scrub_period();
        match (index.job_counts().await, index.scrub_due(due).await) {
            (Ok(counts), Ok(scrub_due)) => {
                metrics.set_queue(&counts);
                metrics.set_scrub_due(scrub_due);
                crate::notify::status(&format!("{status}; {}", backlog(&counts, scrub_due)));
            }
            (Err(e), _) | (_, Err(e)) => tracing::debug!("jobs: cannot count the queue: {e}"),
        }
        if !pause(&ctx, STATUS_EVERY).await {
            return;
        }
    }
}

/// `jobs: 12 queued, 1 running, 0 failed; 40 assets due for scrub`.
pub fn backlog(counts: &[JobCount], scrub_due: u64) -> String {
    let sum = |state: &str| -> u64 {
        counts
            .iter()
            .filter(|c| c.state == state && JobKind::parse(&c.kind).is_some())
            .map(|c| c.count)
            .sum()
    };
    format!(
        "jobs: {} queued, {} running, {} failed; {scrub_due} assets due for scrub",
        sum("queued"),
        sum("running"),
        sum("failed")
    )
}
