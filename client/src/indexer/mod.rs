//! The indexer: one thread with its own state connection that walks
//! directory trees and records what it finds (`State::observe`), so the
//! event loop never waits on a big scan. A directory is watched before it is
//! listed, which closes the race with files created meanwhile. Unchanged
//! files cost one `lstat` and one indexed lookup: they are never read. Every
//! listing and `lstat` resolves beneath the watched root without following a
//! symlink (`walk.rs`, `beneath`).

mod walk;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use tokio::sync::{Notify, mpsc::UnboundedSender};

use rustix::fs::FileType;

use crate::beneath::RootDir;
use crate::config::Root;
use crate::ignore::IgnoreSet;
use crate::shown;
use crate::state::{FileStat, Observed, State, StateError, counters, now_ms};
use crate::watch::WatchRegistry;

/// Files recorded per write transaction.
const BATCH: usize = 512;
/// Vanished rows are kept this long for rename detection.
const KEEP_GONE: Duration = Duration::from_secs(600);

/// Work for the indexer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IndexCmd {
    /// Count directories against the inotify watch limit.
    CountDirs,
    /// Watch and scan one root completely (start, or the root reappeared).
    ScanRoot(PathBuf),
    /// Watch and scan every root (overflow, periodic).
    FullRescan,
    /// A directory appeared: watch and scan it; with `settle`, its files are
    /// handed back (`Discovered`) to wait for their quiet period first.
    ScanDir {
        dir: PathBuf,
        settle: bool,
    },
    /// These paths settled: record what is there now.
    Observe(Vec<PathBuf>),
    Vanish(PathBuf),
    VanishUnder(PathBuf),
}

/// Counts of one walk.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WalkStats {
    pub dirs: u64,
    pub files: u64,
    pub queued: u64,
    pub renamed: u64,
    pub vanished: u64,
    pub unwatched_dirs: u64,
}

/// What the indexer reports back.
#[derive(Debug, Clone, PartialEq)]
pub enum IndexEvent {
    DirCount {
        dirs: u64,
    },
    RootScanned {
        root: PathBuf,
        stats: WalkStats,
        elapsed: Duration,
    },
    RootMissing(PathBuf),
    RescanDone {
        stats: WalkStats,
        elapsed: Duration,
    },
    Discovered(Vec<PathBuf>),
    Failed(String),
}

/// The indexer's handles, owned by its thread.
#[derive(Debug)]
pub struct Indexer {
    pub state: State,
    pub roots: Vec<Root>,
    pub ignore: IgnoreSet,
    pub registry: Option<WatchRegistry>,
    pub events: UnboundedSender<IndexEvent>,
    /// Notified whenever something was queued for upload.
    pub work: Arc<Notify>,
    /// Cleared when a full rescan starts (so one requested during it runs again).
    pub rescan_pending: Arc<AtomicBool>,
    pub cancel: Arc<AtomicBool>,
}

impl Indexer {
    /// Run on a new thread until the command channel closes.
    pub fn spawn(
        self,
        rx: mpsc::Receiver<IndexCmd>,
    ) -> std::io::Result<std::thread::JoinHandle<()>> {
        std::thread::Builder::new()
            .name("indexer".into())
            .spawn(move || {
                while let Ok(cmd) = rx.recv() {
                    if let Err(e) = self.handle(cmd) {
                        tracing::error!(error = %e, "indexer");
                        let _ = self.events.send(IndexEvent::Failed(e.to_string()));
                    }
                }
            })
    }

    fn send(&self, ev: IndexEvent) {
        let _ = self.events.send(ev);
    }

    /// Do one command.
    pub fn handle(&self, cmd: IndexCmd) -> Result<(), StateError> {
        match cmd {
            IndexCmd::CountDirs => {
                let dirs = self.roots.iter().map(|r| self.count_dirs(r)).sum();
                self.send(IndexEvent::DirCount { dirs });
            }
            IndexCmd::ScanRoot(path) => {
                let Some(root) = self.roots.iter().find(|r| r.path == path) else {
                    return Ok(());
                };
                let t0 = Instant::now();
                if let Some(stats) = self.scan_root(root)? {
                    self.send(IndexEvent::RootScanned {
                        root: path,
                        stats,
                        elapsed: t0.elapsed(),
                    });
                }
            }
            IndexCmd::FullRescan => self.full_rescan()?,
            IndexCmd::ScanDir { dir, settle } => self.scan_dir(&dir, settle)?,
            IndexCmd::Observe(paths) => self.observe_paths(&paths)?,
            IndexCmd::Vanish(p) => {
                self.state.vanish(&p, now_ms())?;
            }
            IndexCmd::VanishUnder(p) => {
                self.state.vanish_under(&p, now_ms())?;
            }
        }
        Ok(())
    }

    fn root_of(&self, path: &Path) -> Option<&Root> {
        self.roots.iter().find(|r| path.starts_with(&r.path))
    }

    fn full_rescan(&self) -> Result<(), StateError> {
        self.rescan_pending.store(false, Ordering::SeqCst);
        let t0 = Instant::now();
        let started = now_ms();
        let mut total = WalkStats::default();
        for root in &self.roots {
            if let Some(s) = self.scan_root(root)? {
                total = add(total, s);
            }
        }
        let keep = i64::try_from(KEEP_GONE.as_millis()).unwrap_or(i64::MAX);
        self.state.purge_gone(started - keep)?;
        self.send(IndexEvent::RescanDone {
            stats: total,
            elapsed: t0.elapsed(),
        });
        Ok(())
    }

    /// Watch and walk one root, recording what is gone as it goes; `None`
    /// if it does not exist.
    fn scan_root(&self, root: &Root) -> Result<Option<WalkStats>, StateError> {
        if !root.path.is_dir() {
            self.send(IndexEvent::RootMissing(root.path.clone()));
            return Ok(None);
        }
        let mut stats = WalkStats::default();
        self.walk(root, &root.path, true, None, &mut stats)?;
        if self.cancel.load(Ordering::Relaxed) {
            return Ok(Some(stats));
        }
        self.state.set_counter(counters::LAST_SCAN_MS, now_ms())?;
        tracing::info!(
            root = %shown::path(&root.path), dirs = stats.dirs, files = stats.files, queued = stats.queued,
            renamed = stats.renamed, vanished = stats.vanished, "scanned"
        );
        Ok(Some(stats))
    }

    fn scan_dir(&self, dir: &Path, settle: bool) -> Result<(), StateError> {
        let Some(root) = self.root_of(dir) else {
            return Ok(());
        };
        let mut stats = WalkStats::default();
        if settle {
            let mut found = Vec::new();
            self.walk(root, dir, false, Some(&mut found), &mut stats)?;
            if !found.is_empty() {
                self.send(IndexEvent::Discovered(found));
            }
        } else {
            self.walk(root, dir, false, None, &mut stats)?;
        }
        tracing::debug!(dir = %shown::path(dir), dirs = stats.dirs, files = stats.files, "new directory scanned");
        Ok(())
    }

    /// Settled paths from events: record files, forget what is gone.
    fn observe_paths(&self, paths: &[PathBuf]) -> Result<(), StateError> {
        let mut stats = WalkStats::default();
        let roots: Vec<Option<RootDir>> = self
            .roots
            .iter()
            .map(|r| RootDir::open(&r.path).ok())
            .collect();
        for chunk in paths.chunks(BATCH) {
            let now = now_ms();
            self.state.in_transaction(|s| {
                for path in chunk {
                    self.observe_one(s, &roots, path, now, &mut stats)?;
                }
                Ok(())
            })?;
        }
        if stats.queued > 0 {
            self.work.notify_one();
        }
        Ok(())
    }

    /// Record what is at `path` now, looked at beneath its root (open in
    /// `roots`, in the order of `self.roots`); a path that is no longer a
    /// regular file inside the tree is forgotten.
    fn observe_one(
        &self,
        s: &State,
        roots: &[Option<RootDir>],
        path: &Path,
        now: i64,
        stats: &mut WalkStats,
    ) -> Result<(), StateError> {
        let Some(i) = self.roots.iter().position(|r| path.starts_with(&r.path)) else {
            return Ok(());
        };
        let rel = path.strip_prefix(&self.roots[i].path).unwrap_or(path);
        if self.ignore.is_ignored_path(rel, false) {
            return Ok(());
        }
        let st = roots[i].as_ref().and_then(|r| r.stat(path).ok());
        match st.map(|st| (FileType::from_raw_mode(st.st_mode), st)) {
            Some((FileType::RegularFile, st)) => {
                count(stats, &s.observe(path, &FileStat::from_stat(&st), now)?.1)
            }
            Some((FileType::Directory, _)) => {}
            _ => {
                s.vanish(path, now)?;
            }
        }
        Ok(())
    }
}

fn count(stats: &mut WalkStats, what: &Observed) {
    match what {
        Observed::Unchanged => {}
        Observed::Renamed { .. } => {
            stats.renamed += 1;
            stats.queued += 1;
        }
        _ => stats.queued += 1,
    }
}

fn add(a: WalkStats, b: WalkStats) -> WalkStats {
    WalkStats {
        dirs: a.dirs + b.dirs,
        files: a.files + b.files,
        queued: a.queued + b.queued,
        renamed: a.renamed + b.renamed,
        vanished: a.vanished + b.vanished,
        unwatched_dirs: a.unwatched_dirs + b.unwatched_dirs,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    fn indexer(
        root: &Path,
        state_dir: &Path,
    ) -> (Indexer, tokio::sync::mpsc::UnboundedReceiver<IndexEvent>) {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let ignore = IgnoreSet::new(&["*.part".to_owned(), "skip/".to_owned()]).expect("ignore");
        let ix = Indexer {
            state: State::open(&state_dir.join("s.sqlite3")).expect("state"),
            roots: vec![Root {
                path: root.to_path_buf(),
                label: "r".into(),
            }],
            ignore,
            registry: None,
            events: tx,
            work: Arc::new(Notify::new()),
            rescan_pending: Arc::new(AtomicBool::new(false)),
            cancel: Arc::new(AtomicBool::new(false)),
        };
        (ix, rx)
    }

    fn rescan_stats(
        ix: &Indexer,
        rx: &mut tokio::sync::mpsc::UnboundedReceiver<IndexEvent>,
    ) -> WalkStats {
        ix.handle(IndexCmd::FullRescan).expect("rescan");
        loop {
            match rx.try_recv().expect("event") {
                IndexEvent::RescanDone { stats, .. } => return stats,
                _ => continue,
            }
        }
    }

    #[test]
    fn scans_queue_new_files_and_skip_unchanged_and_ignored_ones() {
        let root = tempfile::tempdir().expect("root");
        let state = tempfile::tempdir().expect("state");
        std::fs::create_dir_all(root.path().join("a/b")).expect("mkdir");
        std::fs::create_dir_all(root.path().join("skip")).expect("mkdir");
        std::fs::write(root.path().join("a/b/1.jpg"), b"1").expect("write");
        std::fs::write(root.path().join("2.txt"), b"2").expect("write");
        std::fs::write(root.path().join("3.part"), b"3").expect("write");
        std::fs::write(root.path().join("skip/4"), b"4").expect("write");
        let (ix, mut rx) = indexer(root.path(), state.path());
        let s = rescan_stats(&ix, &mut rx);
        assert_eq!((s.files, s.queued), (2, 2));
        let s = rescan_stats(&ix, &mut rx);
        assert_eq!((s.files, s.queued), (2, 0));
        // Pretend the pipeline hashed them: renames need a known hash.
        for job in ix
            .state
            .due_jobs(i64::MAX, 10, &HashSet::new())
            .expect("jobs")
        {
            let sha = asset_catalog_proto::Sha256Hex::from_digest([job.id as u8; 32]);
            assert!(
                ix.state
                    .record_hash(&job, &job.stat, &sha, 1)
                    .expect("hash")
            );
        }
        std::fs::rename(root.path().join("2.txt"), root.path().join("a/2.txt")).expect("mv");
        std::fs::remove_file(root.path().join("a/b/1.jpg")).expect("rm");
        // The root is listed first: 2.txt is gone from there (as is 1.jpg),
        // and a/2.txt is then recognised as its rename by the inode.
        let s = rescan_stats(&ix, &mut rx);
        assert_eq!((s.files, s.renamed, s.vanished), (1, 1, 2));
    }

    #[test]
    fn one_pass_rescan_records_every_kind_of_disappearance() {
        let root = tempfile::tempdir().expect("root");
        let state = tempfile::tempdir().expect("state");
        let r = root.path();
        for d in ["keep/deep", "gone/deeper", "becomes-file", "skip-later"] {
            std::fs::create_dir_all(r.join(d)).expect("mkdir");
        }
        for f in [
            "keep/a",
            "keep/deep/b",
            "gone/c",
            "gone/deeper/d",
            "becomes-file/e",
            "becomes-dir",
            "skip-later/f",
            "deleted",
        ] {
            std::fs::write(r.join(f), f).expect("write");
        }
        let (ix, mut rx) = indexer(r, state.path());
        let s = rescan_stats(&ix, &mut rx);
        assert_eq!((s.files, s.vanished), (8, 0));
        std::fs::remove_dir_all(r.join("gone")).expect("rm -r");
        std::fs::remove_dir_all(r.join("becomes-file")).expect("rm -r");
        std::fs::write(r.join("becomes-file"), b"now a file").expect("write");
        std::fs::remove_file(r.join("becomes-dir")).expect("rm");
        std::fs::create_dir(r.join("becomes-dir")).expect("mkdir");
        std::fs::rename(r.join("skip-later"), r.join("skip")).expect("mv");
        std::fs::remove_file(r.join("deleted")).expect("rm");
        let s = rescan_stats(&ix, &mut rx);
        // gone/c, gone/deeper/d, becomes-file/e, becomes-dir, skip-later/f
        // (now under an ignored directory) and deleted.
        assert_eq!((s.files, s.queued, s.vanished), (3, 1, 6));
        let s = rescan_stats(&ix, &mut rx);
        assert_eq!((s.files, s.queued, s.vanished), (3, 0, 0));
        let known = ix.state.known_children(r).expect("known");
        let mut names: Vec<_> = known.files.into_keys().collect();
        names.sort();
        assert_eq!(names, ["becomes-file"]);
    }

    #[test]
    fn settle_mode_hands_files_back_instead_of_recording_them() {
        let root = tempfile::tempdir().expect("root");
        let state = tempfile::tempdir().expect("state");
        std::fs::create_dir_all(root.path().join("n/m")).expect("mkdir");
        std::fs::write(root.path().join("n/m/x"), b"x").expect("write");
        let (ix, mut rx) = indexer(root.path(), state.path());
        let dir = root.path().join("n");
        ix.handle(IndexCmd::ScanDir { dir, settle: true })
            .expect("scan dir");
        assert_eq!(
            rx.try_recv().expect("event"),
            IndexEvent::Discovered(vec![root.path().join("n/m/x")])
        );
        assert_eq!(ix.state.queue_depth().expect("depth"), 0);
        ix.handle(IndexCmd::Observe(vec![
            root.path().join("n/m/x"),
            root.path().join("gone"),
        ]))
        .expect("observe");
        assert_eq!(ix.state.queue_depth().expect("depth"), 1);
    }
}
