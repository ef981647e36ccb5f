//! inotify, recursively: a registry of watched directories (shared with the
//! indexer thread, which adds a directory's watch *before* listing it, so no
//! file can slip between listing and watching), and the translation of raw
//! events into [`FsEvent`]s about paths. Also the startup check of
//! `fs.inotify.max_user_watches`.
//!
//! A watch is placed on the directory the indexer opened beneath the root
//! (through `/proc/self/fd/N`, which names exactly that inode), never on
//! whatever a path leads to at that moment; without `/proc`, on the path
//! with `IN_DONT_FOLLOW | IN_ONLYDIR`.

use std::collections::HashMap;
use std::ffi::OsString;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use inotify::{EventMask, EventStream, Inotify, WatchDescriptor, WatchMask, Watches};

use crate::debounce::Activity;

/// Events asked for on every watched directory.
fn dir_mask() -> WatchMask {
    WatchMask::CLOSE_WRITE
        | WatchMask::MOVED_TO
        | WatchMask::MOVED_FROM
        | WatchMask::CREATE
        | WatchMask::DELETE
        | WatchMask::MODIFY
        | WatchMask::DELETE_SELF
        | WatchMask::MOVE_SELF
        | WatchMask::ONLYDIR
        | WatchMask::EXCL_UNLINK
}

/// What happened, in terms of paths.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FsEvent {
    /// A file was written, closed, created or moved in.
    File(PathBuf, Activity),
    /// A file was deleted or moved away.
    FileGone(PathBuf),
    /// A directory appeared (created, or moved in from outside).
    DirCreated(PathBuf),
    /// A directory was deleted.
    DirGone(PathBuf),
    /// First half of a directory move; `cookie` pairs it with `DirMovedTo`.
    DirMovedFrom(u32, PathBuf),
    DirMovedTo(u32, PathBuf),
    /// A watched root itself was deleted or moved.
    RootGone(PathBuf),
    /// The kernel dropped events: everything must be rescanned.
    Overflow,
}

#[derive(Debug, Default)]
struct Map {
    by_wd: HashMap<i32, PathBuf>,
    by_path: HashMap<PathBuf, WatchDescriptor>,
}

/// The watched directories; cloneable and shareable across threads.
#[derive(Debug, Clone)]
pub struct WatchRegistry {
    inner: Arc<Mutex<(Watches, Map)>>,
}

/// Why a directory could not be watched.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    #[error("out of inotify watches (fs.inotify.max_user_watches)")]
    NoSpace,
    #[error("cannot watch {0}: {1}")]
    Io(PathBuf, io::Error),
}

impl WatchRegistry {
    fn lock(&self) -> MutexGuard<'_, (Watches, Map)> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Watch `dir`, which is open as `fd` (idempotent; a directory that
    /// moved keeps its watch and gets its new path).
    pub fn add_dir(&self, dir: &Path, fd: BorrowedFd<'_>) -> Result<(), WatchError> {
        let mut guard = self.lock();
        let (watches, map) = &mut *guard;
        // The magic link is followed to the very directory `fd` is, so no
        // IN_DONT_FOLLOW here (it would watch the link itself).
        let by_fd = PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()));
        let added = match watches.add(&by_fd, dir_mask()) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                watches.add(dir, dir_mask() | WatchMask::DONT_FOLLOW)
            }
            other => other,
        };
        let wd = added.map_err(|e| {
            if e.raw_os_error() == Some(rustix::io::Errno::NOSPC.raw_os_error()) {
                WatchError::NoSpace
            } else {
                WatchError::Io(dir.to_path_buf(), e)
            }
        })?;
        let id = wd.get_watch_descriptor_id();
        if let Some(old) = map.by_wd.insert(id, dir.to_path_buf()) {
            if old != dir {
                map.by_path.remove(&old);
            }
        }
        map.by_path.insert(dir.to_path_buf(), wd);
        Ok(())
    }

    /// The directory a watch descriptor stands for.
    pub fn path_of(&self, wd: i32) -> Option<PathBuf> {
        self.lock().1.by_wd.get(&wd).cloned()
    }

    /// Stop watching `dir` and everything below it.
    pub fn remove_under(&self, dir: &Path) {
        let mut guard = self.lock();
        let (watches, map) = &mut *guard;
        let gone: Vec<PathBuf> = map
            .by_path
            .keys()
            .filter(|p| p.starts_with(dir))
            .cloned()
            .collect();
        for p in gone {
            if let Some(wd) = map.by_path.remove(&p) {
                map.by_wd.remove(&wd.get_watch_descriptor_id());
                // Fails harmlessly when the kernel already dropped it.
                let _ = watches.remove(wd);
            }
        }
    }

    /// `from` was renamed to `to`: re-key every watch below it.
    pub fn rename_under(&self, from: &Path, to: &Path) {
        let mut guard = self.lock();
        let map = &mut guard.1;
        let moved: Vec<PathBuf> = map
            .by_path
            .keys()
            .filter(|p| p.starts_with(from))
            .cloned()
            .collect();
        for old in moved {
            let Ok(rest) = old.strip_prefix(from) else {
                continue;
            };
            let new = if rest.as_os_str().is_empty() {
                to.to_path_buf()
            } else {
                to.join(rest)
            };
            if let Some(wd) = map.by_path.remove(&old) {
                map.by_wd.insert(wd.get_watch_descriptor_id(), new.clone());
                map.by_path.insert(new, wd);
            }
        }
    }

    /// The kernel removed this watch (IN_IGNORED).
    pub fn forget(&self, wd: i32) {
        let mut guard = self.lock();
        let map = &mut guard.1;
        if let Some(p) = map.by_wd.remove(&wd) {
            if map
                .by_path
                .get(&p)
                .is_some_and(|w| w.get_watch_descriptor_id() == wd)
            {
                map.by_path.remove(&p);
            }
        }
    }

    /// Number of watched directories.
    pub fn len(&self) -> usize {
        self.lock().1.by_wd.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The inotify instance: the event stream (on the event loop) plus the
/// registry (anywhere).
#[derive(Debug)]
pub struct Watcher {
    pub stream: EventStream<Vec<u8>>,
    pub registry: WatchRegistry,
    roots: Vec<PathBuf>,
}

impl Watcher {
    /// Create the inotify instance (inside a tokio runtime).
    pub fn new(roots: Vec<PathBuf>) -> io::Result<Self> {
        let stream = Inotify::init()?.into_event_stream(vec![0u8; 64 * 1024])?;
        let registry = WatchRegistry {
            inner: Arc::new(Mutex::new((stream.watches(), Map::default()))),
        };
        Ok(Self {
            stream,
            registry,
            roots,
        })
    }

    /// Turn one raw event into what it means for our paths.
    pub fn translate(&self, ev: &inotify::Event<OsString>) -> Option<FsEvent> {
        let m = ev.mask;
        if m.contains(EventMask::Q_OVERFLOW) {
            return Some(FsEvent::Overflow);
        }
        let wd = ev.wd.get_watch_descriptor_id();
        if m.contains(EventMask::IGNORED) {
            self.registry.forget(wd);
            return None;
        }
        let dir = self.registry.path_of(wd)?;
        if m.intersects(EventMask::DELETE_SELF | EventMask::MOVE_SELF) {
            return self.roots.contains(&dir).then_some(FsEvent::RootGone(dir));
        }
        let path = dir.join(ev.name.as_ref()?);
        let is_dir = m.contains(EventMask::ISDIR);
        Some(match (is_dir, m) {
            (true, m) if m.contains(EventMask::CREATE) => FsEvent::DirCreated(path),
            (true, m) if m.contains(EventMask::MOVED_TO) => FsEvent::DirMovedTo(ev.cookie, path),
            (true, m) if m.contains(EventMask::MOVED_FROM) => {
                FsEvent::DirMovedFrom(ev.cookie, path)
            }
            (true, m) if m.contains(EventMask::DELETE) => FsEvent::DirGone(path),
            (true, _) => return None,
            (false, m) if m.intersects(EventMask::CLOSE_WRITE | EventMask::MOVED_TO) => {
                FsEvent::File(path, Activity::Closed)
            }
            (false, m) if m.intersects(EventMask::CREATE | EventMask::MODIFY) => {
                FsEvent::File(path, Activity::Writing)
            }
            (false, m) if m.intersects(EventMask::DELETE | EventMask::MOVED_FROM) => {
                FsEvent::FileGone(path)
            }
            (false, _) => return None,
        })
    }
}

/// `fs.inotify.max_user_watches`, if readable.
pub fn max_user_watches() -> Option<u64> {
    std::fs::read_to_string("/proc/sys/fs/inotify/max_user_watches")
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// A plain-words instruction for raising the watch limit to fit `needed`.
pub fn watch_limit_advice(needed: u64, limit: u64) -> String {
    let suggested = (needed.saturating_mul(2)).max(524_288);
    format!(
        "asset-watcher needs one inotify watch per directory: {needed} directories, but \
         fs.inotify.max_user_watches is {limit} (shared by all your programs). Directories \
         beyond the limit are only picked up by the periodic rescan. To fix it, run as root: \
         echo fs.inotify.max_user_watches={suggested} > /etc/sysctl.d/60-asset-watcher.conf \
         && sysctl --system   then restart: systemctl --user restart asset-watcher"
    )
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsFd;

    use super::*;

    #[test]
    fn advice_names_the_numbers_and_the_fix() {
        let a = watch_limit_advice(10_000, 8192);
        assert!(a.contains("10000 directories"), "{a}");
        assert!(a.contains("is 8192"), "{a}");
        assert!(a.contains("fs.inotify.max_user_watches=524288"), "{a}");
        assert!(watch_limit_advice(1_000_000, 8192).contains("=2000000"));
    }

    #[tokio::test]
    async fn registry_tracks_adds_renames_and_removals() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = dir.path().join("a");
        std::fs::create_dir_all(a.join("b")).expect("mkdir");
        let w = Watcher::new(vec![dir.path().to_path_buf()]).expect("inotify");
        let r = &w.registry;
        let open = |d: &Path| {
            use rustix::fs::{Mode, OFlags};
            rustix::fs::open(d, OFlags::PATH | OFlags::DIRECTORY, Mode::empty()).expect("open")
        };
        for d in [dir.path(), a.as_path(), a.join("b").as_path()] {
            r.add_dir(d, open(d).as_fd()).expect("watch");
        }
        r.add_dir(&a, open(&a).as_fd()).expect("idempotent");
        assert_eq!(r.len(), 3);
        let c = dir.path().join("c");
        std::fs::rename(&a, &c).expect("mv");
        r.rename_under(&a, &c);
        let paths: Vec<PathBuf> = {
            let g = r.lock();
            let mut v: Vec<PathBuf> = g.1.by_wd.values().cloned().collect();
            v.sort();
            v
        };
        assert_eq!(
            paths,
            vec![dir.path().to_path_buf(), c.clone(), c.join("b")]
        );
        r.remove_under(&c);
        assert_eq!(r.len(), 1);
        let file = dir.path().join("f");
        std::fs::write(&file, b"x").expect("write");
        assert!(matches!(
            r.add_dir(&file, open_file(&file).as_fd()),
            Err(WatchError::Io(_, _))
        ));
    }

    fn open_file(p: &Path) -> std::os::fd::OwnedFd {
        use rustix::fs::{Mode, OFlags};
        rustix::fs::open(p, OFlags::PATH, Mode::empty()).expect("open")
    }
}
