//! Leftovers of a crash, removed at startup. object_store's file store writes
//! every object (single PUT or multipart) to a staging file `<key>#<n>` and
//! renames it into place when complete; a server killed mid-upload leaves the
//! staging file behind. Listings never show such files, so they are invisible
//! to clients and to `reindex`, but they hold disk space. Only files untouched
//! for [`STALE_AFTER`] are removed: an upload in progress writes its staging
//! file at least every `body_stall_timeout_secs`, far more often than that.
//!
//! S3 has the same kind of leftover (an incomplete multipart upload), but
//! object_store cannot list multipart uploads, so the bucket's lifecycle rule
//! `AbortIncompleteMultipartUpload` must remove those (see the README).

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// Age after which a staging or spool file counts as abandoned.
pub const STALE_AFTER: Duration = Duration::from_secs(15 * 60);

/// Is `name` an object_store staging file (`<anything>#<digits>`)?
pub fn is_staging_file(name: &str) -> bool {
    name.rsplit_once('#')
        .is_some_and(|(_, n)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// Remove the files under `dir` (recursively) that `pick` selects by name and
/// that were last modified before `now - STALE_AFTER`. Returns what was removed;
/// a file that cannot be removed is logged and skipped.
pub fn remove_stale(dir: &Path, now: SystemTime, pick: &dyn Fn(&str) -> bool) -> Vec<PathBuf> {
    let mut removed = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(meta) = entry.metadata() else {
                continue;
            };
            if meta.is_dir() {
                pending.push(path);
                continue;
            }
            let stale = meta
                .modified()
                .ok()
                .and_then(|m| now.duration_since(m).ok())
                .is_some_and(|age| age >= STALE_AFTER);
            let picked = entry.file_name().to_str().is_some_and(pick);
            if !(stale && picked) {
                continue;
            }
            match std::fs::remove_file(&path) {
                Ok(()) => removed.push(path),
                Err(e) => {
                    tracing::warn!(file = %path.display(), error = %e, "cannot remove an abandoned upload file")
                }
            }
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_old_staging_files_are_removed() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join("meta")).expect("meta");
        let old = SystemTime::now() - STALE_AFTER - Duration::from_secs(1);
        for name in [
            "a.bin#1",
            "meta/a.json#22",
            "fresh.bin#3",
            "a.bin",
            "odd#name",
        ] {
            std::fs::write(dir.path().join(name), b"x").expect("write");
            if name != "fresh.bin#3" {
                let file = std::fs::File::options()
                    .write(true)
                    .open(dir.path().join(name))
                    .expect("open");
                file.set_modified(old).expect("age");
            }
        }
        let mut removed = remove_stale(dir.path(), SystemTime::now(), &is_staging_file);
        removed.sort();
        assert_eq!(
            removed,
            [
                dir.path().join("a.bin#1"),
                dir.path().join("meta/a.json#22")
            ]
        );
        for kept in ["fresh.bin#3", "a.bin", "odd#name"] {
            assert!(dir.path().join(kept).exists(), "{kept}");
        }
    }
}
