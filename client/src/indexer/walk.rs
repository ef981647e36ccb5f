//! The indexer's directory walks, beneath the watched root: each directory
//! is opened through `beneath` (no symlink followed at any component), its
//! inotify watch goes on that very directory, and its entries are listed and
//! `stat`ed relative to its descriptor. So a directory swapped for a symlink
//! to somewhere else is refused, and nothing outside the tree is ever listed,
//! watched or recorded.

use std::ffi::{OsStr, OsString};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

use rustix::fs::{AtFlags, Dir, FileType};

use super::{BATCH, Indexer, WalkStats, count};
use crate::beneath::RootDir;
use crate::config::Root;
use crate::shown;
use crate::state::{FileStat, Known, StateError, now_ms};
use crate::watch::WatchError;

/// One open directory: its descriptor (for `statat`) and its entries.
struct Listing {
    fd: OwnedFd,
    entries: Dir,
}

impl Listing {
    /// Open `dir` beneath `root`; `None` (logged) when it cannot be.
    fn open(root: &RootDir, dir: &Path) -> Option<Self> {
        let opened = root.open_dir(dir).map_err(|e| {
            if e.is_refused() {
                tracing::debug!(dir = %shown::path(dir), "not listed: {e}");
            } else {
                tracing::warn!(dir = %shown::path(dir), error = %e, "cannot list directory");
            }
        });
        let fd = opened.ok()?;
        let entries = rustix::io::fcntl_dupfd_cloexec(&fd, 0)
            .and_then(Dir::new)
            .map_err(
                |e| tracing::warn!(dir = %shown::path(dir), error = %e, "cannot list directory"),
            )
            .ok()?;
        Some(Self { fd, entries })
    }

    /// The next entry's name and type (`.` and `..` left out; an unknown
    /// `d_type` asked of the file system, without following a symlink).
    fn next_entry(&mut self) -> Option<(OsString, FileType)> {
        loop {
            let entry = match self.entries.read()? {
                Ok(e) => e,
                Err(e) => {
                    tracing::warn!(error = %e, "listing a directory failed");
                    return None;
                }
            };
            let name = OsStr::from_bytes(entry.file_name().to_bytes());
            if name == "." || name == ".." {
                continue;
            }
            let mut ft = entry.file_type();
            if ft == FileType::Unknown {
                match self.stat(name) {
                    Some(st) => ft = FileType::from_raw_mode(st.st_mode),
                    None => continue,
                }
            }
            return Some((name.to_os_string(), ft));
        }
    }

    /// `lstat` of one entry, relative to the directory's descriptor.
    fn stat(&self, name: &OsStr) -> Option<rustix::fs::Stat> {
        rustix::fs::statat(&self.fd, name, AtFlags::SYMLINK_NOFOLLOW).ok()
    }
}

/// `path` relative to `root`, which it is inside of (a byte slice, not
/// `Path::strip_prefix`'s walk over components: that was 7% of a rescan).
fn beneath_root<'a>(root: &Path, path: &'a Path) -> &'a Path {
    let bytes = path.as_os_str().as_bytes();
    let root = root.as_os_str().as_bytes();
    match bytes.strip_prefix(root) {
        Some(rest) if root.ends_with(b"/") => Path::new(OsStr::from_bytes(rest)),
        Some([b'/', rest @ ..]) => Path::new(OsStr::from_bytes(rest)),
        _ => path,
    }
}

/// What one walk gathers: the files it records or only collects, and, in a
/// sweeping walk, what it finds gone.
struct Gather<'a> {
    sweep: bool,
    collect: Option<&'a mut Vec<PathBuf>>,
    batch: Vec<(PathBuf, FileStat)>,
    stats: &'a mut WalkStats,
}

impl Indexer {
    /// Depth-first walk from `start`: watch each directory, then list it.
    /// Files are recorded or, with `collect`, only collected. With `sweep`
    /// (a complete walk of a root), every row the walk does not meet is
    /// recorded gone as its directory is done, so a rescan reads each row
    /// of the state once.
    pub(super) fn walk(
        &self,
        root: &Root,
        start: &Path,
        sweep: bool,
        collect: Option<&mut Vec<PathBuf>>,
        stats: &mut WalkStats,
    ) -> Result<(), StateError> {
        let rootdir = match RootDir::open(&root.path) {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(root = %shown::path(&root.path), error = %e, "cannot open the watched directory");
                return Ok(());
            }
        };
        let mut g = Gather {
            sweep: sweep && collect.is_none(),
            collect,
            batch: Vec::with_capacity(BATCH),
            stats,
        };
        let mut stack = vec![start.to_path_buf()];
        while let Some(dir) = stack.pop() {
            if self.cancel.load(Ordering::Relaxed) {
                break;
            }
            let Some(mut listing) = Listing::open(&rootdir, &dir) else {
                if g.sweep {
                    g.stats.vanished += self.state.vanish_under(&dir, now_ms())? as u64;
                }
                continue;
            };
            self.watch(&dir, &listing.fd, g.stats);
            g.stats.dirs += 1;
            // What the state already knows here: an unchanged file then costs
            // its lstat and a map lookup, with no query of its own.
            let mut known = if g.collect.is_none() {
                self.state.known_children(&dir)?
            } else {
                Known::default()
            };
            let mut subdirs = Vec::new();
            while let Some((name, ft)) = listing.next_entry() {
                let path = dir.join(&name);
                let rel = beneath_root(&root.path, &path);
                match ft {
                    FileType::Directory if !self.ignore.is_ignored(rel, true) => {
                        subdirs.push(name);
                        stack.push(path);
                    }
                    FileType::Directory => {}
                    FileType::RegularFile if !self.ignore.is_ignored(rel, false) => {
                        self.file_entry(&listing, &mut known, (name, path), &mut g)?;
                    }
                    FileType::RegularFile => {}
                    other => crate::special::note_skipped(&path, other),
                }
            }
            if g.sweep {
                self.sweep_dir(&dir, known, &subdirs, g.stats)?;
            }
        }
        self.record(&mut g.batch, g.stats)
    }

    /// A regular file met by a walk: collected, skipped when the state
    /// knows it unchanged, or added to the batch to record. Either way it
    /// leaves `known`, which ends up holding what the walk did not meet.
    fn file_entry(
        &self,
        listing: &Listing,
        known: &mut Known,
        (name, path): (OsString, PathBuf),
        g: &mut Gather<'_>,
    ) -> Result<(), StateError> {
        g.stats.files += 1;
        if let Some(found) = g.collect.as_deref_mut() {
            found.push(path);
            return Ok(());
        }
        let Some(st) = listing.stat(&name) else {
            return Ok(());
        };
        if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
            return Ok(());
        }
        let stat = FileStat::from_stat(&st);
        if known.files.remove(&name).is_some_and(|k| k.1 == stat) {
            return Ok(());
        }
        g.batch.push((path, stat));
        if g.batch.len() >= BATCH {
            self.record(&mut g.batch, g.stats)?;
        }
        Ok(())
    }

    /// After a complete listing of `dir`: the files the state holds there
    /// that it did not meet are gone, and so is everything under a
    /// subdirectory the state knows that is no longer listed (deleted,
    /// replaced by a file, or ignored now).
    fn sweep_dir(
        &self,
        dir: &Path,
        known: Known,
        listed: &[OsString],
        stats: &mut WalkStats,
    ) -> Result<(), StateError> {
        let gone_dirs: Vec<&OsString> = known.dirs.iter().filter(|d| !listed.contains(d)).collect();
        if known.files.is_empty() && gone_dirs.is_empty() {
            return Ok(());
        }
        let now = now_ms();
        self.state.in_transaction(|s| {
            for name in known.files.keys() {
                stats.vanished += u64::from(s.vanish(&dir.join(name), now)?);
            }
            for name in gone_dirs {
                stats.vanished += s.vanish_under(&dir.join(name), now)? as u64;
            }
            Ok(())
        })
    }

    /// Watch the directory open as `fd` (at `dir`).
    fn watch(&self, dir: &Path, fd: &OwnedFd, stats: &mut WalkStats) {
        let Some(reg) = &self.registry else { return };
        match reg.add_dir(dir, fd.as_fd()) {
            Ok(()) => {}
            Err(WatchError::NoSpace) => {
                if stats.unwatched_dirs == 0 {
                    tracing::error!(dir = %shown::path(dir), "out of inotify watches; see the advice logged at start");
                }
                stats.unwatched_dirs += 1;
            }
            Err(e) => tracing::warn!(error = %e, "directory not watched"),
        }
    }

    /// Record a batch of observed files in one transaction.
    pub(super) fn record(
        &self,
        batch: &mut Vec<(PathBuf, FileStat)>,
        stats: &mut WalkStats,
    ) -> Result<(), StateError> {
        if batch.is_empty() {
            return Ok(());
        }
        let now = now_ms();
        let queued_before = stats.queued;
        self.state.in_transaction(|s| {
            for (path, stat) in batch.iter() {
                count(stats, &s.observe(path, stat, now)?.1);
            }
            Ok(())
        })?;
        batch.clear();
        if stats.queued > queued_before {
            self.work.notify_one();
        }
        Ok(())
    }

    /// Directories under `root` that would be watched.
    pub(super) fn count_dirs(&self, root: &Root) -> u64 {
        let Ok(rootdir) = RootDir::open(&root.path) else {
            return 0;
        };
        let mut n = 0;
        let mut stack = vec![root.path.clone()];
        while let Some(d) = stack.pop() {
            n += 1;
            let Some(mut listing) = Listing::open(&rootdir, &d) else {
                continue;
            };
            while let Some((name, ft)) = listing.next_entry() {
                let p = d.join(name);
                let rel = p.strip_prefix(&root.path).unwrap_or(&p);
                if ft == FileType::Directory && !self.ignore.is_ignored(rel, true) {
                    stack.push(p);
                }
            }
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_beneath_a_root_are_cut_after_its_slash() {
        let cut = |root: &str, path: &str| {
            beneath_root(Path::new(root), Path::new(path))
                .to_string_lossy()
                .into_owned()
        };
        assert_eq!(cut("/w", "/w/a/b.jpg"), "a/b.jpg");
        assert_eq!(cut("/", "/a/b.jpg"), "a/b.jpg");
        assert_eq!(cut("/w", "/wx/b.jpg"), "/wx/b.jpg", "not inside");
        assert_eq!(cut("/w", "/w"), "/w", "the root itself");
    }
}
