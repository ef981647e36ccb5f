//! `asset-watcher scan`: index every root once (no inotify), run the
//! pipeline until the queue is done, print a summary. A progress bar is
//! drawn only when stderr is a terminal. Files the server could not take in
//! this run stay queued for the daemon or the next scan.

use std::io::IsTerminal;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use tokio::signal::unix::{SignalKind, signal};

use super::startup::Core;
use super::{Context, DaemonError};
use crate::indexer::{IndexCmd, IndexEvent, WalkStats};
use crate::pipeline::{Mode, Summary};
use crate::state::{StateError, now_ms};

/// Retryable failures a file may have in one scan before it is left queued.
const RETRIES_PER_SCAN: u32 = 4;

/// Options of `scan`.
#[derive(Debug, Clone, Copy, Default)]
pub struct ScanOptions {
    /// Put permanently failed files back in the queue first.
    pub retry_failed: bool,
    /// Never draw a progress bar.
    pub no_progress: bool,
}

/// What one scan did.
#[derive(Debug, Clone, Default)]
pub struct ScanOutcome {
    pub walk: WalkStats,
    pub synced: u64,
    pub uploads: u64,
    pub sightings: u64,
    pub failed: u64,
    pub bytes_sent: u64,
    pub bytes_hashed: u64,
    /// Files still queued (server unreachable or erroring).
    pub still_queued: u64,
    pub last_error: Option<String>,
    pub elapsed: Duration,
}

impl std::fmt::Display for ScanOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "scanned {} files in {} directories in {:.2}s: {} queued ({} renamed), {} vanished; \
             {} synced ({} uploads, {} sightings), {} failed, {} still queued; \
             bytes_sent={} bytes_hashed={}",
            self.walk.files,
            self.walk.dirs,
            self.elapsed.as_secs_f64(),
            self.walk.queued,
            self.walk.renamed,
            self.walk.vanished,
            self.synced,
            self.uploads,
            self.sightings,
            self.failed,
            self.still_queued,
            self.bytes_sent,
            self.bytes_hashed,
        )
    }
}

fn progress_bar(enabled: bool) -> Option<ProgressBar> {
    if !enabled || !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = ProgressBar::new(0);
    let style = ProgressStyle::with_template(
        "{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} files {msg}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    Some(bar)
}

/// Run one scan.
pub(super) async fn run(ctx: Context, opts: ScanOptions) -> Result<ScanOutcome, DaemonError> {
    let t0 = Instant::now();
    let mode = Mode::Drain {
        retries: RETRIES_PER_SCAN,
    };
    // The pipeline task starts at the first await below, after the
    // failed files were queued again.
    let mut core = Core::start(&ctx, None, mode)?;
    if ctx.settings.roots.is_empty() {
        tracing::warn!("no directories to watch: run `asset-watcher init --watch DIR`");
    }
    if opts.retry_failed {
        let n = core.state.retry_failed(now_ms())?;
        tracing::info!(files = n, "failed files queued again");
    }
    core.indexer.send(IndexCmd::FullRescan);
    let bar = progress_bar(!opts.no_progress);
    let (summary, walk) = drive(&mut core, bar.as_ref()).await?;
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    core.indexer.stop().await;
    let summary = match summary {
        Ok(r) => r?,
        Err(e) => {
            tracing::error!(error = %e, "pipeline task failed");
            Summary::default()
        }
    };
    let counters = &core.counters;
    Ok(ScanOutcome {
        walk,
        synced: counters.synced.load(Ordering::Relaxed),
        uploads: counters.uploads.load(Ordering::Relaxed),
        sightings: counters.sightings.load(Ordering::Relaxed),
        failed: counters.failed.load(Ordering::Relaxed),
        bytes_sent: counters.bytes_sent.load(Ordering::Relaxed),
        bytes_hashed: counters.bytes_hashed.load(Ordering::Relaxed),
        still_queued: core.state.queue_depth()?,
        last_error: summary.last_error,
        elapsed: t0.elapsed(),
    })
}

type PipelineResult = Result<Result<Summary, StateError>, actix_rt::task::JoinError>;

/// Wait for the pipeline to drain, telling it when the scan is complete,
/// updating the progress bar and passing on SIGTERM/SIGINT.
async fn drive(
    core: &mut Core,
    bar: Option<&ProgressBar>,
) -> Result<(PipelineResult, WalkStats), DaemonError> {
    let mut term = signal(SignalKind::terminate()).map_err(DaemonError::Signal)?;
    let mut int = signal(SignalKind::interrupt()).map_err(DaemonError::Signal)?;
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    let mut walk = WalkStats::default();
    let Core {
        state,
        ctl,
        counters,
        indexer,
        pipeline,
        ..
    } = core;
    loop {
        tokio::select! {
            r = &mut *pipeline => return Ok((r, walk)),
            Some(ev) = indexer.events.recv() => match ev {
                IndexEvent::RescanDone { stats, .. } => {
                    walk = stats;
                    ctl.scan_done.set(true);
                    ctl.work.notify_one();
                }
                IndexEvent::Failed(e) => {
                    tracing::error!(error = %e, "indexing failed");
                    ctl.scan_done.set(true);
                    ctl.work.notify_one();
                }
                IndexEvent::RootMissing(r) => tracing::warn!(root = %crate::shown::path(&r), "watched directory does not exist"),
                _ => {}
            },
            _ = tick.tick() => {
                if let Some(bar) = bar {
                    let finished = counters.synced.load(Ordering::Relaxed) + counters.failed.load(Ordering::Relaxed);
                    bar.set_length(finished + state.queue_depth().unwrap_or(0));
                    bar.set_position(finished);
                }
            }
            _ = term.recv() => { let _ = ctl.stop.send(true); }
            _ = int.recv() => { let _ = ctl.stop.send(true); }
        }
    }
}
