//! The watcher's memory, in SQLite (WAL) under the XDG state directory: one
//! row per path with (dev, inode, size, mtime_ns, ctime_ns, sha256, status),
//! the persistent upload queue (attempts, last error, next try), a few
//! counters and the resumable upload sessions in progress. Every change is
//! one transaction, so a kill -9 at any point loses nothing: on restart the
//! queue continues where it stopped, a large upload from its committed offset.
//!
//! Each thread opens its own [`State`]; WAL lets `status` read while the
//! daemon writes.

mod index;
mod jobs;
mod report;
mod schema;
mod sessions;
mod vanish;

use std::fs::File;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::Connection;

pub use index::{Known, Observed};
pub use jobs::{Job, JobUpdate};
pub use report::{Failure, Report};
pub use sessions::{Partial, SavedSession};

/// Per-path status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Needs hashing (new or changed).
    Pending,
    /// Hash known; the server has not yet confirmed this path.
    Hashed,
    /// The server has the content and this path.
    Synced,
    /// A permanent error; waits until the file changes.
    Failed,
    /// The path vanished; kept a while so a rename can reuse its hash.
    Gone,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Hashed => "hashed",
            Self::Synced => "synced",
            Self::Failed => "failed",
            Self::Gone => "gone",
        }
    }

    fn parse(s: &str) -> Self {
        match s {
            "hashed" => Self::Hashed,
            "synced" => Self::Synced,
            "failed" => Self::Failed,
            "gone" => Self::Gone,
            _ => Self::Pending,
        }
    }
}

/// The identity of a file's content as far as the file system tells: if all
/// five match, the bytes are taken to be unchanged and never read again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileStat {
    pub dev: u64,
    pub ino: u64,
    pub size: u64,
    pub mtime_ns: i64,
    pub ctime_ns: i64,
}

impl FileStat {
    pub fn from_metadata(m: &std::fs::Metadata) -> Self {
        Self {
            dev: m.dev(),
            ino: m.ino(),
            size: m.size(),
            mtime_ns: m
                .mtime()
                .saturating_mul(1_000_000_000)
                .saturating_add(m.mtime_nsec()),
            ctime_ns: m
                .ctime()
                .saturating_mul(1_000_000_000)
                .saturating_add(m.ctime_nsec()),
        }
    }

    /// From a `stat` made with rustix (`fstat`, `statat`). The field types
    /// differ between architectures, hence the casts.
    #[allow(clippy::unnecessary_cast)]
    pub fn from_stat(st: &rustix::fs::Stat) -> Self {
        let ns = |s: i64, n: i64| s.saturating_mul(1_000_000_000).saturating_add(n);
        Self {
            dev: st.st_dev as u64,
            ino: st.st_ino as u64,
            size: st.st_size as u64,
            mtime_ns: ns(st.st_mtime as i64, st.st_mtime_nsec as i64),
            ctime_ns: ns(st.st_ctime as i64, st.st_ctime_nsec as i64),
        }
    }

    /// Same inode with the same size and mtime: the same content, even if
    /// the ctime moved (a rename changes the ctime).
    pub fn same_content(&self, other: &Self) -> bool {
        self.dev == other.dev
            && self.ino == other.ino
            && self.size == other.size
            && self.mtime_ns == other.mtime_ns
    }
}

/// State database errors.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("state database {path}: {source}")]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error(
        "state database {path} is unreadable or corrupt ({detail}). To recover, stop \
         asset-watcher and move its state aside: `{}`; the next start hashes every file again \
         and asks the server about each, so nothing is uploaded twice",
        recovery_command(path)
    )]
    Corrupt { path: PathBuf, detail: String },
    #[error(
        "state database {path} was written by a newer asset-watcher (schema {found}, this one \
         knows {known}); upgrade asset-watcher"
    )]
    TooNew {
        path: PathBuf,
        found: i64,
        known: i64,
    },
    #[error(
        "another asset-watcher is already using {0} (stop it first: systemctl --user stop asset-watcher)"
    )]
    Locked(PathBuf),
    #[error("cannot lock {path}: {source}")]
    Lock {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("state database: {0}")]
    Sql(#[from] rusqlite::Error),
}

/// The shell command that moves a broken state database aside (the whole
/// state directory, so no stale `-wal` file is replayed into a new one).
pub fn recovery_command(db: &Path) -> String {
    let dir = db.parent().unwrap_or(db);
    format!("mv {} {}.corrupt", dir.display(), dir.display())
}

/// An open state database.
#[derive(Debug)]
pub struct State {
    conn: Connection,
}

/// Milliseconds since the Unix epoch, the time unit stored in the database.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn path_bytes(p: &Path) -> &[u8] {
    p.as_os_str().as_bytes()
}

fn path_from_bytes(b: Vec<u8>) -> PathBuf {
    use std::os::unix::ffi::OsStringExt;
    PathBuf::from(std::ffi::OsString::from_vec(b))
}

impl State {
    /// Open (creating and migrating) the database at `path`, after
    /// checking its files' headers ([`State::check_files`]). Only for the
    /// first connection a process opens: see there.
    pub fn open_checked(path: &Path) -> Result<Self, StateError> {
        Self::check_files(path)?;
        Self::open(path)
    }

    /// Check the database's files by their headers (`sqlite_file`: cut
    /// short, not a database, a WAL that is not one), which costs the same
    /// at any size; the full page-by-page check is
    /// [`State::check_integrity`].
    ///
    /// It opens and closes the files itself, and closing a descriptor drops
    /// every POSIX lock the process holds on the file, SQLite's included:
    /// another process would then take this one's WAL for abandoned,
    /// checkpoint it and delete it under a live connection. So it runs
    /// before the process opens its first connection, never beside one.
    pub fn check_files(path: &Path) -> Result<(), StateError> {
        // An empty file is what a start cut off before SQLite's first write
        // leaves: the state is then new, and the walk finds every file again.
        let empty = std::fs::metadata(path).is_ok_and(|m| m.len() == 0);
        match sqlite_file::find(path).filter(|_| !empty) {
            Some((file, detail)) => Err(StateError::Corrupt { path: file, detail }),
            None => Ok(()),
        }
    }

    /// Open (creating and migrating) the database at `path`.
    pub fn open(path: &Path) -> Result<Self, StateError> {
        let conn = Connection::open(path).map_err(|source| StateError::Open {
            path: path.to_path_buf(),
            source,
        })?;
        conn.busy_timeout(Duration::from_secs(30))?;
        schema::migrate(&conn, path)?;
        Ok(Self { conn })
    }

    /// Read every page of the database and check every index against its
    /// table (`PRAGMA integrity_check`): `asset-watcher check-state`. Linear
    /// in the state's size, so it is not run at every start.
    pub fn check_integrity(&self, path: &Path) -> Result<(), StateError> {
        let corrupt = |detail: String| StateError::Corrupt {
            path: path.to_path_buf(),
            detail,
        };
        let mut st = self
            .conn
            .prepare("PRAGMA integrity_check(5)")
            .map_err(|e| corrupt(e.to_string()))?;
        let problems: Vec<String> = st
            .query_map([], |r| r.get::<_, String>(0))
            .and_then(|rows| rows.collect::<Result<_, _>>())
            .map_err(|e| corrupt(e.to_string()))?;
        if problems.len() == 1 && problems[0] == "ok" {
            return Ok(());
        }
        Err(corrupt(problems.join("; ")))
    }

    /// Add `delta` to a persistent counter (bytes hashed, bytes sent, ...).
    pub fn add_counter(&self, key: &str, delta: u64) -> Result<(), StateError> {
        if delta == 0 {
            return Ok(());
        }
        self.conn.execute(
            "INSERT INTO meta(key, value) VALUES (?1, ?2)
             ON CONFLICT(key) DO UPDATE SET value = value + excluded.value",
            rusqlite::params![key, i64::try_from(delta).unwrap_or(i64::MAX)],
        )?;
        Ok(())
    }

    /// Set a persistent value (a timestamp).
    pub fn set_counter(&self, key: &str, value: i64) -> Result<(), StateError> {
        self.conn.execute(
            "INSERT INTO meta(key, value) VALUES (?1, ?2)
             ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            rusqlite::params![key, value],
        )?;
        Ok(())
    }

    /// Read a persistent counter or timestamp (0 when unset).
    pub fn counter(&self, key: &str) -> Result<i64, StateError> {
        use rusqlite::OptionalExtension;
        Ok(self
            .conn
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()?
            .unwrap_or(0))
    }
}

/// An exclusive lock on the state directory, held while a `run` or `scan`
/// works, so that two watchers never share one queue.
#[derive(Debug)]
pub struct StateLock {
    _file: File,
}

impl StateLock {
    pub fn acquire(path: &Path) -> Result<Self, StateError> {
        let err = |source| StateError::Lock {
            path: path.to_path_buf(),
            source,
        };
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .map_err(err)?;
        match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => {
                // The pid lets `status` say whether a daemon is running.
                use std::io::Write;
                file.set_len(0).map_err(err)?;
                writeln!(&file, "{}", std::process::id()).map_err(err)?;
                Ok(Self { _file: file })
            }
            Err(rustix::io::Errno::WOULDBLOCK) => Err(StateError::Locked(path.to_path_buf())),
            Err(e) => Err(err(e.into())),
        }
    }
}

/// Counter keys in the `meta` table.
pub mod counters {
    /// Bytes read to compute hashes, ever.
    pub const BYTES_HASHED: &str = "bytes_hashed";
    /// Body bytes streamed to the server in uploads, ever (all attempts).
    pub const BYTES_SENT: &str = "bytes_sent";
    /// Uploads the server answered 201/200 to.
    pub const UPLOADS: &str = "uploads";
    /// Sightings recorded without sending bytes.
    pub const SIGHTINGS: &str = "sightings";
    /// When the last file was confirmed by the server (ms since epoch).
    pub const LAST_SYNC_MS: &str = "last_sync_ms";
    /// When the last full scan finished (ms since epoch).
    pub const LAST_SCAN_MS: &str = "last_scan_ms";
    /// Since when the server's rate limit for this token holds uploads back
    /// (ms since epoch; 0: it does not).
    pub const RATE_LIMITED_SINCE_MS: &str = "rate_limited_since_ms";
    /// Until when it does, as the server's `Retry-After` said.
    pub const RATE_LIMITED_UNTIL_MS: &str = "rate_limited_until_ms";
    /// Since when the token's quota has been found used up (0: it is not).
    pub const QUOTA_EXCEEDED_SINCE_MS: &str = "quota_exceeded_since_ms";
}

#[cfg(test)]
pub(crate) mod test_util {
    use super::*;

    pub fn stat(ino: u64, size: u64, mtime_ns: i64) -> FileStat {
        FileStat {
            dev: 1,
            ino,
            size,
            mtime_ns,
            ctime_ns: mtime_ns,
        }
    }

    pub fn open_temp() -> (tempfile::TempDir, State) {
        let dir = tempfile::tempdir().expect("tempdir");
        let st = State::open(&dir.path().join("s.sqlite3")).expect("open");
        (dir, st)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_accumulate() {
        let (_d, st) = test_util::open_temp();
        assert_eq!(st.counter(counters::BYTES_SENT).expect("read"), 0);
        st.add_counter(counters::BYTES_SENT, 10).expect("add");
        st.add_counter(counters::BYTES_SENT, 5).expect("add");
        assert_eq!(st.counter(counters::BYTES_SENT).expect("read"), 15);
    }

    #[test]
    fn a_stat_from_rustix_is_the_one_std_gave_before() {
        // Rows written by earlier versions compare equal: no file is hashed
        // again after an upgrade.
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("f");
        std::fs::write(&p, b"same").expect("write");
        let std = FileStat::from_metadata(&std::fs::symlink_metadata(&p).expect("metadata"));
        let rx = FileStat::from_stat(&rustix::fs::lstat(&p).expect("lstat"));
        assert_eq!(std, rx);
    }

    #[test]
    fn lock_is_exclusive() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("lock");
        let held = StateLock::acquire(&p).expect("first");
        assert!(matches!(StateLock::acquire(&p), Err(StateError::Locked(_))));
        drop(held);
        StateLock::acquire(&p).expect("after release");
    }

    #[test]
    fn garbage_file_is_reported_as_corrupt() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("s.sqlite3");
        std::fs::write(&p, vec![0x42u8; 8192]).expect("write");
        let e = State::open_checked(&p).expect_err("corrupt");
        let text = e.to_string();
        assert!(text.contains(&recovery_command(&p)), "{text}");
        assert!(text.contains(&p.display().to_string()), "{text}");
    }

    /// 2,000 rows: a database of several pages.
    fn fill(st: &State) {
        st.in_transaction(|s| {
            for i in 0..2000u64 {
                s.observe(
                    Path::new(&format!("/r/file-{i}-with-a-longer-name")),
                    &test_util::stat(i, i, 1),
                    1,
                )?;
            }
            Ok(())
        })
        .expect("fill");
    }

    #[test]
    fn a_truncated_file_fails_verification() {
        let (dir, st) = test_util::open_temp();
        let p = dir.path().join("s.sqlite3");
        fill(&st);
        st.check_integrity(&p).expect("intact");
        drop(st);
        let len = std::fs::metadata(&p).expect("stat").len();
        assert!(len > 16 * 1024, "{len}");
        std::fs::OpenOptions::new()
            .write(true)
            .open(&p)
            .and_then(|f| f.set_len(len / 2))
            .expect("truncate");
        // Found by the header check at open, without reading every page.
        let e = State::open_checked(&p).expect_err("truncated");
        assert!(matches!(e, StateError::Corrupt { .. }), "{e}");
        assert!(e.to_string().contains("truncated"), "{e}");
    }

    #[test]
    fn a_damaged_page_is_found_by_the_full_check() {
        let (dir, st) = test_util::open_temp();
        let p = dir.path().join("s.sqlite3");
        fill(&st);
        st.conn
            .execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
            .expect("checkpoint");
        drop(st);
        // Scribble over the middle of the file, keeping its length and header.
        let mut bytes = std::fs::read(&p).expect("read");
        let mid = bytes.len() / 2;
        bytes[mid..mid + 4096].fill(0x5a);
        std::fs::write(&p, &bytes).expect("write");
        let st = State::open_checked(&p).expect("the header is intact");
        let e = st.check_integrity(&p).expect_err("damaged page");
        assert!(matches!(e, StateError::Corrupt { .. }), "{e}");
        assert!(e.to_string().contains(&recovery_command(&p)), "{e}");
    }
}
