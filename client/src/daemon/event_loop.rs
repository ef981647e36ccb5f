//! The daemon's event loop: turns inotify events into debounced paths for
//! the indexer, reacts to directory creation, moves and deletion, overflow
//! (full rescan) and vanished roots (wait for them to come back), keeps
//! systemd informed (READY, STATUS, WATCHDOG, STOPPING) and, on SIGTERM,
//! hands every pending path to the indexer before it stops.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::signal::unix::{SignalKind, signal};
use tokio::time::{Instant, Interval};

use super::startup::Core;
use super::{Context, DaemonError};
use crate::config::Settings;
use crate::debounce::{Activity, Debouncer};
use crate::indexer::{IndexCmd, IndexEvent};
use crate::pipeline::Mode;
use crate::shown;
use crate::state::{counters, now_ms};
use crate::systemd::Notifier;
use crate::watch::{FsEvent, Watcher, max_user_watches, watch_limit_advice};

/// A file written without a close is settled after this long anyway.
const WRITE_GRACE: Duration = Duration::from_secs(30);
/// A directory moved away without a matching arrival is gone after this.
const MOVE_PAIRING: Duration = Duration::from_secs(1);

enum Wake {
    Fs(Option<std::io::Result<inotify::EventOwned>>),
    Due,
    Index(Option<IndexEvent>),
    Tick,
    Watchdog,
    Rescan,
    Stop(&'static str),
}

struct EventLoop {
    core: Core,
    settings: Settings,
    watcher: Watcher,
    debouncer: Debouncer<PathBuf>,
    notifier: Notifier,
    pending_moves: Vec<(u32, PathBuf, Instant)>,
    missing: HashSet<PathBuf>,
    initial: HashSet<PathBuf>,
    ready: bool,
    ticks: u64,
    last_status: String,
    reported: [u64; 5],
}

async fn tick_opt(i: &mut Option<Interval>) {
    match i {
        Some(i) => {
            i.tick().await;
        }
        None => std::future::pending().await,
    }
}

fn log_config(ctx: &Context) {
    match &ctx.config_file {
        Some(f) => tracing::info!(config = %f.display(), "configuration loaded"),
        None => tracing::info!(
            config = %ctx.paths.config_file.display(),
            "no config file; using the defaults (`asset-watcher init` writes one there)"
        ),
    }
    if ctx.settings.roots.is_empty() {
        tracing::warn!(
            "no directories to watch: run `asset-watcher init --watch DIR` (or add `watch = [...]` to {}) \
             and restart",
            ctx.paths.config_file.display()
        );
    }
    tracing::info!(server = %ctx.settings.server, client = %ctx.settings.client_id, "asset-watcher starting");
}

/// Run the daemon until a signal stops it.
pub(super) async fn run(ctx: Context) -> Result<(), DaemonError> {
    let roots: Vec<PathBuf> = ctx.settings.roots.iter().map(|r| r.path.clone()).collect();
    let watcher = Watcher::new(roots.clone()).map_err(DaemonError::Inotify)?;
    let core = Core::start(&ctx, Some(watcher.registry.clone()), Mode::Daemon)?;
    log_config(&ctx);
    core.indexer.send(IndexCmd::CountDirs);
    for r in &roots {
        core.indexer.send(IndexCmd::ScanRoot(r.clone()));
    }
    let mut lp = EventLoop {
        core,
        debouncer: Debouncer::new(ctx.settings.quiet_period, WRITE_GRACE),
        settings: ctx.settings,
        watcher,
        notifier: Notifier::from_env(),
        pending_moves: Vec::new(),
        missing: HashSet::new(),
        initial: roots.into_iter().collect(),
        ready: false,
        ticks: 0,
        last_status: String::new(),
        reported: [0; 5],
    };
    let why = lp.run().await?;
    tracing::info!(signal = why, "stopping");
    lp.shutdown().await;
    match (&mut lp.core.pipeline).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => return Err(e.into()),
        Err(e) => tracing::error!(error = %e, "pipeline task failed"),
    }
    tracing::info!(
        queued = lp.core.state.queue_depth().unwrap_or(0),
        "stopped; the queue is saved"
    );
    Ok(())
}

impl EventLoop {
    async fn run(&mut self) -> Result<&'static str, DaemonError> {
        let mut term = signal(SignalKind::terminate()).map_err(DaemonError::Signal)?;
        let mut int = signal(SignalKind::interrupt()).map_err(DaemonError::Signal)?;
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        let mut watchdog = self.notifier.watchdog_interval().map(tokio::time::interval);
        let mut rescan = self
            .settings
            .rescan_interval
            .map(|d| tokio::time::interval_at(Instant::now() + d, d));
        if self.initial.is_empty() {
            self.become_ready();
        }
        loop {
            let far = Instant::now() + Duration::from_secs(3600);
            let deadline = self.debouncer.next_deadline();
            let wake = tokio::select! {
                ev = self.watcher.stream.next() => Wake::Fs(ev),
                () = tokio::time::sleep_until(deadline.unwrap_or(far)), if deadline.is_some() => Wake::Due,
                ev = self.core.indexer.events.recv() => Wake::Index(ev),
                _ = tick.tick() => Wake::Tick,
                () = tick_opt(&mut watchdog) => Wake::Watchdog,
                () = tick_opt(&mut rescan) => Wake::Rescan,
                _ = term.recv() => Wake::Stop("SIGTERM"),
                _ = int.recv() => Wake::Stop("SIGINT"),
            };
            match wake {
                Wake::Fs(Some(Ok(ev))) => {
                    if let Some(fs) = self.watcher.translate(&ev) {
                        self.on_fs(fs);
                    }
                }
                Wake::Fs(Some(Err(e))) => {
                    tracing::error!(error = %e, "reading inotify events failed; rescanning");
                    self.request_rescan();
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                Wake::Fs(None) => {
                    return Err(DaemonError::Inotify(
                        std::io::ErrorKind::UnexpectedEof.into(),
                    ));
                }
                Wake::Due => {
                    let due = self.debouncer.pop_due(Instant::now());
                    self.send(IndexCmd::Observe(due));
                }
                Wake::Index(Some(ev)) => self.on_index(ev),
                Wake::Index(None) => return Ok("indexer stopped"),
                Wake::Tick => self.on_tick(),
                Wake::Watchdog => self.notifier.watchdog(),
                Wake::Rescan => self.request_rescan(),
                Wake::Stop(why) => return Ok(why),
            }
        }
    }

    /// Hand everything pending to the indexer, stop it and the pipeline.
    async fn shutdown(&mut self) {
        self.notifier.stopping("Stopping: saving pending work");
        self.drain_events().await;
        let pending = self.debouncer.drain();
        if !pending.is_empty() {
            self.send(IndexCmd::Observe(pending));
        }
        self.expire_moves(true);
        let _ = self.core.ctl.stop.send(true);
        self.core.indexer.stop().await;
    }

    /// Take in the events the kernel already queued (until it is quiet
    /// for a moment), so that a file closed just before SIGTERM is kept.
    async fn drain_events(&mut self) {
        let quiet = Duration::from_millis(100);
        let until = Instant::now() + Duration::from_secs(2);
        while Instant::now() < until {
            match tokio::time::timeout(quiet, self.watcher.stream.next()).await {
                Ok(Some(Ok(ev))) => {
                    if let Some(fs) = self.watcher.translate(&ev) {
                        self.on_fs(fs);
                    }
                }
                _ => break,
            }
        }
    }

    fn send(&self, cmd: IndexCmd) {
        self.core.indexer.send(cmd);
    }

    fn ignored(&self, path: &Path, is_dir: bool) -> bool {
        self.settings
            .roots
            .iter()
            .find(|r| path.starts_with(&r.path))
            .and_then(|r| path.strip_prefix(&r.path).ok())
            .is_none_or(|rel| self.settings.ignore.is_ignored_path(rel, is_dir))
    }

    fn on_fs(&mut self, ev: FsEvent) {
        match ev {
            FsEvent::File(p, activity) => {
                if !self.ignored(&p, false) {
                    self.debouncer.record(p, activity, Instant::now());
                }
            }
            FsEvent::FileGone(p) => {
                self.debouncer.remove(&p);
                self.send(IndexCmd::Vanish(p));
            }
            FsEvent::DirCreated(p) => {
                if !self.ignored(&p, true) {
                    self.send(IndexCmd::ScanDir {
                        dir: p,
                        settle: true,
                    });
                }
            }
            FsEvent::DirGone(p) => {
                self.watcher.registry.remove_under(&p);
                self.send(IndexCmd::VanishUnder(p));
            }
            FsEvent::DirMovedFrom(cookie, p) => {
                self.pending_moves.push((cookie, p, Instant::now()))
            }
            FsEvent::DirMovedTo(cookie, to) => self.on_dir_arrived(cookie, to),
            FsEvent::RootGone(root) => {
                tracing::warn!(root = %shown::path(&root), "watched directory was deleted or moved; waiting for it to come back");
                self.watcher.registry.remove_under(&root);
                self.send(IndexCmd::VanishUnder(root.clone()));
                self.missing.insert(root);
            }
            FsEvent::Overflow => {
                tracing::warn!(
                    "inotify queue overflowed (events were lost); rescanning everything"
                );
                self.request_rescan();
            }
        }
    }

    fn on_dir_arrived(&mut self, cookie: u32, to: PathBuf) {
        let from = self
            .pending_moves
            .iter()
            .position(|(c, _, _)| *c == cookie)
            .map(|i| self.pending_moves.swap_remove(i).1);
        let ignored = self.ignored(&to, true);
        match from {
            Some(from) if !ignored => {
                self.watcher.registry.rename_under(&from, &to);
                self.send(IndexCmd::ScanDir {
                    dir: to,
                    settle: false,
                });
                self.send(IndexCmd::VanishUnder(from));
            }
            Some(from) => {
                self.watcher.registry.remove_under(&from);
                self.send(IndexCmd::VanishUnder(from));
            }
            None if !ignored => self.send(IndexCmd::ScanDir {
                dir: to,
                settle: false,
            }),
            None => {}
        }
    }

    /// Directories moved away whose arrival never came left the tree.
    fn expire_moves(&mut self, all: bool) {
        let now = Instant::now();
        let (old, keep): (Vec<_>, Vec<_>) = std::mem::take(&mut self.pending_moves)
            .into_iter()
            .partition(|(_, _, at)| all || now.duration_since(*at) >= MOVE_PAIRING);
        self.pending_moves = keep;
        for (_, from, _) in old {
            self.watcher.registry.remove_under(&from);
            self.send(IndexCmd::VanishUnder(from));
        }
    }

    fn request_rescan(&self) {
        if !self
            .core
            .indexer
            .rescan_pending
            .swap(true, Ordering::SeqCst)
        {
            self.send(IndexCmd::FullRescan);
        }
    }

    fn on_index(&mut self, ev: IndexEvent) {
        match ev {
            IndexEvent::DirCount { dirs } => self.check_watch_budget(dirs),
            IndexEvent::RootScanned {
                root,
                stats,
                elapsed,
            } => {
                tracing::info!(root = %shown::path(&root), files = stats.files, queued = stats.queued, seconds = elapsed.as_secs_f64(), "startup scan done");
                self.missing.remove(&root);
                self.initial_done(&root);
            }
            IndexEvent::RootMissing(root) => {
                tracing::warn!(root = %shown::path(&root), "watched directory does not exist; it is picked up when it appears");
                self.missing.insert(root.clone());
                self.initial_done(&root);
            }
            IndexEvent::RescanDone { stats, elapsed } => {
                tracing::info!(
                    files = stats.files,
                    queued = stats.queued,
                    vanished = stats.vanished,
                    seconds = elapsed.as_secs_f64(),
                    "rescan done"
                );
            }
            IndexEvent::Discovered(paths) => {
                let now = Instant::now();
                for p in paths {
                    self.debouncer.record(p, Activity::Closed, now);
                }
            }
            IndexEvent::Failed(e) => tracing::error!(error = %e, "indexing failed"),
        }
    }

    fn check_watch_budget(&self, dirs: u64) {
        let Some(limit) = max_user_watches() else {
            return;
        };
        if dirs > limit {
            tracing::error!("{}", watch_limit_advice(dirs, limit));
        } else if dirs > limit / 10 * 8 {
            tracing::warn!("close to the limit: {}", watch_limit_advice(dirs, limit));
        } else {
            tracing::info!(dirs, max_user_watches = limit, "inotify watches suffice");
        }
    }

    fn initial_done(&mut self, root: &Path) {
        if self.initial.remove(root) && self.initial.is_empty() {
            self.become_ready();
        }
    }

    fn become_ready(&mut self) {
        self.ready = true;
        let status = self.status_line();
        tracing::info!(status = %status, "ready");
        self.notifier.ready(&status);
        self.last_status = status;
    }

    fn on_tick(&mut self) {
        self.ticks += 1;
        self.expire_moves(false);
        if self.ticks % 4 == 0 {
            let back: Vec<PathBuf> = self
                .missing
                .iter()
                .filter(|r| r.is_dir())
                .cloned()
                .collect();
            for root in back {
                tracing::info!(root = %shown::path(&root), "watched directory is back; scanning it");
                self.missing.remove(&root);
                self.send(IndexCmd::ScanRoot(root));
            }
        }
        if self.ticks % 120 == 0 {
            self.log_activity();
        }
        if self.ready && self.ticks % 10 == 0 {
            let status = self.status_line();
            if status != self.last_status {
                self.notifier.status(&status);
                self.last_status = status;
            }
        }
    }

    /// One line a minute about what was done, when something was.
    fn log_activity(&mut self) {
        let c = &self.core.counters;
        let now = [
            c.synced.load(Ordering::Relaxed),
            c.uploads.load(Ordering::Relaxed),
            c.sightings.load(Ordering::Relaxed),
            c.bytes_sent.load(Ordering::Relaxed),
            c.retried.load(Ordering::Relaxed),
        ];
        if now == self.reported {
            return;
        }
        let d: Vec<u64> = now.iter().zip(self.reported).map(|(n, r)| n - r).collect();
        let queued = self.core.state.queue_depth().unwrap_or(0);
        tracing::info!(
            synced = d[0],
            uploads = d[1],
            sightings = d[2],
            bytes_sent = d[3],
            retries = d[4],
            queued,
            "activity in the last minute"
        );
        if let Some(e) = c.last_error.borrow_mut().take() {
            if d[4] > 0 {
                tracing::warn!(error = %e, retries = d[4], queued, "transfers are failing and will be retried");
            }
        }
        self.reported = now;
    }

    fn status_line(&self) -> String {
        let queued = self.core.state.queue_depth().unwrap_or(0);
        let report = self.core.state.report(0).ok();
        let failed = report.as_ref().map_or(0, |r| r.failed);
        let last = self.core.state.counter(counters::LAST_SYNC_MS).unwrap_or(0);
        let ago = if last > 0 {
            format!("last upload {}s ago", (now_ms() - last).max(0) / 1000)
        } else {
            "nothing uploaded yet".to_owned()
        };
        let missing = if self.missing.is_empty() {
            String::new()
        } else {
            format!("; {} watched directories missing", self.missing.len())
        };
        let held = report
            .as_ref()
            .and_then(|r| crate::status::held_briefly(r, now_ms()))
            .map_or(String::new(), |h| format!("; {h}"));
        format!(
            "Watching {} directories: {queued} queued, {failed} failed, {ago}{missing}{held}",
            self.watcher.registry.len()
        )
    }
}
