//! The SQLite index as files: moving an unreadable one aside for `reindex`,
//! and giving files a root-run tool created back to the service's user.
//!
//! Run as root on a packaged install, tools (`token …`, `reindex`, `fsck`)
//! must neither leave files the service cannot open nor let the service's
//! user trick root: the index lives in the service's `StateDirectory`, owned
//! by its (dynamic) user, who could have replaced `index.sqlite3-wal` with a
//! symlink to any file root may write or chown. SQLite opens every file of a
//! database with `O_NOFOLLOW`, so it never writes through such a link; after
//! the database is closed, [`SqliteIndex::restore_ownership`] gives each
//! index file that is a regular file back to the directory's owner with
//! `fchownat(AT_SYMLINK_NOFOLLOW)` relative to the directory it opened, so a
//! link (or one swapped in meanwhile) is at most re-owned itself, never
//! followed.
//!
//! (Switching to the service's user instead cannot work under systemd: a
//! DynamicUser's state directory lives in root-only `/var/lib/private`,
//! reachable by the service only through its own mount namespace.)

use std::path::{Path, PathBuf};

use time::OffsetDateTime;

use super::SqliteIndex;
use crate::index::IndexError;

/// The files of one SQLite database.
const SUFFIXES: [&str; 3] = ["", "-wal", "-shm"];

impl SqliteIndex {
    /// Open the index at `path`; an unreadable one is first moved aside to
    /// `<path>.corrupt-<unix time>` (returned) and a new one created.
    pub async fn open_or_move_aside(path: &Path) -> Result<(Self, Option<PathBuf>), IndexError> {
        match Self::open(path).await {
            Ok(index) => Ok((index, None)),
            Err(IndexError::Corrupt { .. } | IndexError::Damaged { .. }) => {
                let stamp = OffsetDateTime::now_utc().unix_timestamp();
                let aside = PathBuf::from(format!("{}.corrupt-{stamp}", path.display()));
                for suffix in SUFFIXES {
                    let from = PathBuf::from(format!("{}{suffix}", path.display()));
                    let to = PathBuf::from(format!("{}{suffix}", aside.display()));
                    match std::fs::rename(&from, &to) {
                        Ok(()) => {}
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                        Err(source) => return Err(IndexError::MoveAside { path: from, source }),
                    }
                }
                tracing::warn!(aside = %aside.display(), "moved the unreadable index aside");
                Ok((Self::open(path).await?, Some(aside)))
            }
            Err(e) => Err(e),
        }
    }

    /// When run as root, hand every index file that is a regular file to
    /// the owner of its directory, following no symlink (see the module docs).
    pub fn restore_ownership(&self) -> Result<(), IndexError> {
        restore_ownership(self.path())
    }
}

/// [`SqliteIndex::restore_ownership`] for the database at `db` (also used
/// when opening it failed: files it created are given back too).
pub(crate) fn restore_ownership(db: &Path) -> Result<(), IndexError> {
    use rustix::fs::{AtFlags, FileType, Mode, OFlags};
    let (Some(dir), Some(name)) = (db.parent(), db.file_name()) else {
        return Ok(());
    };
    if !rustix::process::geteuid().is_root() {
        return Ok(());
    }
    // The directory itself may be systemd's link in root-owned /var/lib
    // (asset-catalog -> private/asset-catalog): following that one is safe.
    let flags = OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC;
    let Ok(dirfd) = rustix::fs::open(dir, flags, Mode::empty()) else {
        return Ok(());
    };
    let Ok(dir_stat) = rustix::fs::fstat(&dirfd) else {
        return Ok(());
    };
    if dir_stat.st_uid == 0 {
        return Ok(());
    }
    let (uid, gid) = (
        rustix::fs::Uid::from_raw(dir_stat.st_uid),
        rustix::fs::Gid::from_raw(dir_stat.st_gid),
    );
    for suffix in SUFFIXES {
        let mut file = name.to_os_string();
        file.push(suffix);
        let Ok(stat) = rustix::fs::statat(&dirfd, &file, AtFlags::SYMLINK_NOFOLLOW) else {
            continue;
        };
        let regular = FileType::from_raw_mode(stat.st_mode) == FileType::RegularFile;
        if regular && stat.st_uid != uid.as_raw() {
            rustix::fs::chownat(
                &dirfd,
                &file,
                Some(uid),
                Some(gid),
                AtFlags::SYMLINK_NOFOLLOW,
            )
            .map_err(|e| IndexError::Chown {
                path: dir.join(&file),
                uid: uid.as_raw(),
                source: e.into(),
            })?;
        }
    }
    Ok(())
}
