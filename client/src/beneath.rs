//! Opening what lies beneath a watched root without ever leaving it. Every
//! directory listing, `stat` and file open of the watcher resolves its path
//! from the root's own descriptor and follows no symlink at any component:
//! `openat2` with `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS` (Linux ≥ 5.6), or,
//! where the kernel lacks it, `openat(O_NOFOLLOW)` one component at a time.
//! A directory swapped for a symlink between an event and its scan is refused,
//! never followed. (The root itself is opened as configured: a `watch` entry
//! may be a symlink the user made.)

use std::ffi::OsStr;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use rustix::fs::{AtFlags, FileType, Mode, OFlags, ResolveFlags, Stat};
use rustix::io::Errno;

use crate::shown;

/// Set once `openat2` answered ENOSYS: the kernel is older than 5.6.
static NO_OPENAT2: AtomicBool = AtomicBool::new(false);

/// Why a path beneath a root was not opened.
#[derive(Debug, thiserror::Error)]
pub enum BeneathError {
    #[error("{} not opened: a symlink is on the way, and symlinks are never followed", shown::path(.0))]
    Symlink(PathBuf),
    #[error("{} not opened: it is not a plain path inside the watched directory", shown::path(.0))]
    Outside(PathBuf),
    #[error("{}: {}", shown::path(.0), .1)]
    Io(PathBuf, io::Error),
}

impl BeneathError {
    /// As an `io::Error`. A refused path counts as not found: for the
    /// watcher, nothing is there inside the tree.
    pub fn into_io(self) -> io::Error {
        match self {
            Self::Io(_, e) => e,
            other => io::Error::new(io::ErrorKind::NotFound, other.to_string()),
        }
    }

    /// True when the path was refused (symlink, outside), not merely missing.
    pub fn is_refused(&self) -> bool {
        !matches!(self, Self::Io(..))
    }
}

/// A watched root, open, for resolving paths beneath it.
#[derive(Debug)]
pub struct RootDir {
    path: PathBuf,
    fd: OwnedFd,
}

impl RootDir {
    /// Open the root directory `path` (following the configured path itself).
    pub fn open(path: &Path) -> io::Result<Self> {
        let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
        let fd = rustix::fs::open(path, flags, Mode::empty())?;
        Ok(Self {
            path: path.to_path_buf(),
            fd,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Open `path` (absolute under the root, or relative to it) with
    /// `flags`, plus `O_NOFOLLOW | O_CLOEXEC`.
    pub fn open_at(&self, path: &Path, flags: OFlags) -> Result<OwnedFd, BeneathError> {
        let rel = path.strip_prefix(&self.path).unwrap_or(path);
        open_beneath(self.fd.as_fd(), rel, flags).map_err(|e| e.with_path(path))
    }

    /// Open the directory `path` for listing.
    pub fn open_dir(&self, path: &Path) -> Result<OwnedFd, BeneathError> {
        self.open_at(path, OFlags::RDONLY | OFlags::DIRECTORY)
    }

    /// `lstat` of `path`: a symlink at the end is described, not followed.
    pub fn stat(&self, path: &Path) -> Result<Stat, BeneathError> {
        let fd = self.open_at(path, OFlags::PATH)?;
        rustix::fs::fstat(&fd).map_err(|e| BeneathError::Io(path.to_path_buf(), e.into()))
    }
}

impl BeneathError {
    fn with_path(self, path: &Path) -> Self {
        let p = path.to_path_buf();
        match self {
            Self::Symlink(_) => Self::Symlink(p),
            Self::Outside(_) => Self::Outside(p),
            Self::Io(_, e) => Self::Io(p, e),
        }
    }
}

/// The names of `rel`, which must be a plain relative path (`.` is skipped;
/// `..`, `/` and prefixes are refused).
fn plain_components(rel: &Path) -> Result<Vec<&OsStr>, BeneathError> {
    let mut names = Vec::new();
    for c in rel.components() {
        match c {
            Component::Normal(name) => names.push(name),
            Component::CurDir => {}
            _ => return Err(BeneathError::Outside(rel.to_path_buf())),
        }
    }
    Ok(names)
}

/// Open `rel` beneath the directory `root`, following no symlink.
pub fn open_beneath(
    root: BorrowedFd<'_>,
    rel: &Path,
    flags: OFlags,
) -> Result<OwnedFd, BeneathError> {
    let names = plain_components(rel)?;
    let flags = flags | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    if !NO_OPENAT2.load(Ordering::Relaxed) {
        let path: PathBuf = if names.is_empty() {
            PathBuf::from(".")
        } else {
            names.iter().collect()
        };
        let how = ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS;
        match rustix::fs::openat2(root, &path, flags, Mode::empty(), how) {
            Ok(fd) => return Ok(fd),
            Err(Errno::LOOP) => return Err(BeneathError::Symlink(rel.to_path_buf())),
            Err(Errno::XDEV) => return Err(BeneathError::Outside(rel.to_path_buf())),
            // O_DIRECTORY | O_NOFOLLOW on a symlink at the end.
            Err(Errno::NOTDIR) if ends_in_symlink(root, &path) => {
                return Err(BeneathError::Symlink(rel.to_path_buf()));
            }
            Err(Errno::NOSYS) => {
                tracing::debug!(
                    "openat2 unavailable (Linux < 5.6); opening one component at a time"
                );
                NO_OPENAT2.store(true, Ordering::Relaxed);
            }
            // A seccomp filter that does not know openat2 may say EPERM.
            Err(Errno::PERM) => {}
            Err(e) => return Err(BeneathError::Io(rel.to_path_buf(), e.into())),
        }
    }
    open_by_components(root, rel, &names, flags)
}

/// Is the last component of `path` (beneath `root`) a symlink?
fn ends_in_symlink(root: BorrowedFd<'_>, path: &Path) -> bool {
    let flags = OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let how = ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS;
    rustix::fs::openat2(root, path, flags, Mode::empty(), how)
        .and_then(rustix::fs::fstat)
        .is_ok_and(|st| FileType::from_raw_mode(st.st_mode) == FileType::Symlink)
}

/// The fallback: `openat(O_NOFOLLOW)` for each name in turn, directories
/// opened `O_PATH | O_DIRECTORY`, so no component can be a symlink.
pub fn open_by_components(
    root: BorrowedFd<'_>,
    rel: &Path,
    names: &[&OsStr],
    flags: OFlags,
) -> Result<OwnedFd, BeneathError> {
    let flags = flags | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let Some((last, dirs)) = names.split_last() else {
        return rustix::fs::openat(root, ".", flags, Mode::empty())
            .map_err(|e| BeneathError::Io(rel.to_path_buf(), e.into()));
    };
    let mut parent: Option<OwnedFd> = None;
    let step = OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    for name in dirs {
        let at = parent.as_ref().map_or(root, AsFd::as_fd);
        let fd = rustix::fs::openat(at, *name, step, Mode::empty())
            .map_err(|e| refused_or(at, name, e, rel))?;
        parent = Some(fd);
    }
    let at = parent.as_ref().map_or(root, AsFd::as_fd);
    rustix::fs::openat(at, *last, flags, Mode::empty()).map_err(|e| refused_or(at, last, e, rel))
}

/// ELOOP or ENOTDIR because `name` is a symlink becomes `Symlink`.
fn refused_or(at: BorrowedFd<'_>, name: &OsStr, e: Errno, rel: &Path) -> BeneathError {
    let is_link = matches!(e, Errno::LOOP | Errno::NOTDIR)
        && rustix::fs::statat(at, name, AtFlags::SYMLINK_NOFOLLOW)
            .is_ok_and(|st| FileType::from_raw_mode(st.st_mode) == FileType::Symlink);
    if is_link {
        BeneathError::Symlink(rel.to_path_buf())
    } else {
        BeneathError::Io(rel.to_path_buf(), e.into())
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;

    use super::*;

    /// A tree: `root/a/b/f` (a file), `root/link-dir` → `a`, `root/a/up` →
    /// `..`, `root/abs` → an absolute path outside, `root/a/lf` → `b/f`.
    fn tree() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("root");
        std::fs::create_dir_all(root.join("a/b")).expect("mkdir");
        std::fs::create_dir_all(dir.path().join("outside")).expect("mkdir");
        std::fs::write(root.join("a/b/f"), b"inside").expect("write");
        std::fs::write(dir.path().join("outside/f"), b"secret").expect("write");
        symlink("a", root.join("link-dir")).expect("symlink");
        symlink("..", root.join("a/up")).expect("symlink");
        symlink(dir.path().join("outside"), root.join("abs")).expect("symlink");
        symlink("b/f", root.join("a/lf")).expect("symlink");
        (dir, root)
    }

    fn open_file(
        open: impl Fn(BorrowedFd<'_>, &Path) -> Result<OwnedFd, BeneathError>,
        root: &Path,
    ) {
        let r = RootDir::open(root).expect("root");
        let fd = open(r.fd.as_fd(), Path::new("a/b/f")).expect("a plain path opens");
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::fs::File::from(fd), &mut s).expect("read");
        assert_eq!(s, "inside");
        open(r.fd.as_fd(), Path::new("")).expect("the root itself");
        for (rel, why) in [
            ("link-dir/b/f", "symlinked directory"),
            ("abs/f", "absolute symlink"),
            ("a/up/a/b/f", "symlink to .."),
            ("a/lf", "symlink at the end"),
        ] {
            let e = open(r.fd.as_fd(), Path::new(rel)).expect_err(why);
            assert!(matches!(e, BeneathError::Symlink(_)), "{why}: {e}");
            assert!(e.to_string().contains("symlinks are never followed"), "{e}");
            assert_eq!(e.into_io().kind(), io::ErrorKind::NotFound);
        }
        for rel in ["../outside/f", "a/../../outside/f", "/etc/passwd"] {
            let e = open(r.fd.as_fd(), Path::new(rel)).expect_err(rel);
            assert!(matches!(e, BeneathError::Outside(_)), "{rel}: {e}");
            assert!(e.to_string().contains("not a plain path inside"), "{e}");
        }
        let e = open(r.fd.as_fd(), Path::new("a/missing")).expect_err("missing");
        assert!(!e.is_refused());
        assert_eq!(e.into_io().kind(), io::ErrorKind::NotFound);
    }

    #[test]
    fn openat2_refuses_symlinks_and_escapes() {
        let (_d, root) = tree();
        open_file(|fd, rel| open_beneath(fd, rel, OFlags::RDONLY), &root);
    }

    #[test]
    fn the_component_walk_refuses_the_same() {
        let (_d, root) = tree();
        open_file(
            |fd, rel| {
                let names = plain_components(rel)?;
                open_by_components(fd, rel, &names, OFlags::RDONLY)
            },
            &root,
        );
    }

    #[test]
    fn root_dir_opens_stats_and_lists_by_absolute_path() {
        let (_d, root) = tree();
        let r = RootDir::open(&root).expect("root");
        let st = r.stat(&root.join("a/lf")).expect("lstat of a symlink");
        assert_eq!(FileType::from_raw_mode(st.st_mode), FileType::Symlink);
        let st = r.stat(&root.join("a/b/f")).expect("lstat");
        assert_eq!(st.st_size, 6);
        r.open_dir(&root.join("a")).expect("a directory");
        let e = r.open_dir(&root.join("link-dir")).expect_err("a symlink");
        assert!(e.to_string().contains("link-dir"), "{e}");
        assert!(matches!(e, BeneathError::Symlink(_)), "{e}");
        assert!(matches!(
            r.open_dir(&root.join("a/b/f")),
            Err(BeneathError::Io(_, _))
        ));
    }
}
