//! SHA-256 of files on a bounded pool of blocking threads. `sha2` picks the
//! CPU's SHA extensions (SHA-NI / ARMv8 SHA2) at run time. Files are opened
//! read-only beneath their watched root without following a symlink at any
//! component (`beneath`), checked to be regular files on the descriptor that
//! was opened, and read from it in fixed chunks, so memory stays flat
//! whatever the size; a file that changes while being read is reported as
//! changed rather than given a hash it never had.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use asset_catalog_proto::Sha256Hex;
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;

use crate::beneath::RootDir;
use crate::error::TransferError;
use crate::state::FileStat;

/// Read size for hashing and for upload bodies.
pub const CHUNK: usize = 256 * 1024;

/// A file's hash and the stat it had while being hashed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hashed {
    pub sha256: Sha256Hex,
    pub stat: FileStat,
}

/// The hashing pool.
#[derive(Debug, Clone)]
pub struct Hasher {
    permits: Arc<Semaphore>,
    bytes_hashed: Arc<AtomicU64>,
}

impl Hasher {
    /// At most `workers` files are hashed at once; `bytes_hashed` counts
    /// every byte read.
    pub fn new(workers: usize, bytes_hashed: Arc<AtomicU64>) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(workers.max(1))),
            bytes_hashed,
        }
    }

    /// Hash `path`, beneath the watched directory `root`, on the pool.
    pub async fn hash(&self, root: PathBuf, path: PathBuf) -> Result<Hashed, TransferError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| TransferError::Worker)?;
        let counter = Arc::clone(&self.bytes_hashed);
        tokio::task::spawn_blocking(move || hash_file(&root, &path, &counter))
            .await
            .map_err(|_| TransferError::Worker)?
    }
}

/// Open a file beneath the watched directory `root` to read its content:
/// read-only, no symlink at any component (one there, or a path leading out,
/// counts as the file being gone), no blocking on FIFOs, and the descriptor
/// opened must be a regular file.
pub fn open_regular(root: &Path, path: &Path) -> Result<(File, FileStat), TransferError> {
    use rustix::fs::{FileType, OFlags};
    let flags = OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOCTTY;
    let fd = RootDir::open(root)?
        .open_at(path, flags)
        .map_err(|e| TransferError::Io(e.into_io()))?;
    let st = rustix::fs::fstat(&fd).map_err(std::io::Error::from)?;
    if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
        return Err(TransferError::Io(std::io::ErrorKind::NotFound.into()));
    }
    Ok((File::from(fd), FileStat::from_stat(&st)))
}

/// The stat of an open file, as `open_regular` gives it.
pub fn stat_of(file: &File) -> std::io::Result<FileStat> {
    Ok(FileStat::from_stat(&rustix::fs::fstat(file)?))
}

/// Hash the file at `path` beneath `root`, adding the bytes read to `counter`.
pub fn hash_file(root: &Path, path: &Path, counter: &AtomicU64) -> Result<Hashed, TransferError> {
    let (mut file, before) = open_regular(root, path)?;
    let mut hasher = Sha256::new();
    // Small files get a small buffer: zeroing a full chunk for each 4 KiB
    // file cost more than hashing it. (Not smaller than 64 KiB, so a file
    // that grows while it is read is still read in sizeable pieces.)
    let want = usize::try_from(before.size.saturating_add(1)).unwrap_or(CHUNK);
    let mut buf = vec![0u8; want.clamp(64 * 1024, CHUNK)];
    let mut total = 0u64;
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.into()),
        };
        hasher.update(&buf[..n]);
        total += n as u64;
        counter.fetch_add(n as u64, Ordering::Relaxed);
    }
    let after = stat_of(&file)?;
    if after != before || total != before.size {
        return Err(TransferError::Changed);
    }
    Ok(Hashed {
        sha256: Sha256Hex::from_digest(hasher.finalize().into()),
        stat: after,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_and_counts_bytes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("f");
        std::fs::write(&p, b"abc").expect("write");
        let counter = Arc::new(AtomicU64::new(0));
        let h = Hasher::new(2, Arc::clone(&counter))
            .hash(dir.path().to_path_buf(), p)
            .await
            .expect("hash");
        assert_eq!(
            h.sha256.as_str(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(h.stat.size, 3);
        assert_eq!(counter.load(Ordering::Relaxed), 3);
    }

    #[test]
    fn large_files_hash_in_chunks() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("big");
        let data = vec![7u8; CHUNK * 3 + 17];
        std::fs::write(&p, &data).expect("write");
        let h = hash_file(dir.path(), &p, &AtomicU64::new(0)).expect("hash");
        assert_eq!(
            h.sha256,
            Sha256Hex::from_digest(Sha256::digest(&data).into())
        );
    }

    #[test]
    fn symlinks_dirs_missing_files_and_paths_outside_are_not_hashed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let target = dir.path().join("t");
        std::fs::write(&target, b"x").expect("write");
        let link = dir.path().join("l");
        std::os::unix::fs::symlink(&target, &link).expect("symlink");
        std::fs::create_dir(dir.path().join("d")).expect("mkdir");
        std::fs::write(dir.path().join("d/t"), b"y").expect("write");
        std::os::unix::fs::symlink(dir.path().join("d"), dir.path().join("ld")).expect("symlink");
        let c = AtomicU64::new(0);
        let paths = [
            link,
            dir.path().to_path_buf(),
            dir.path().join("missing"),
            dir.path().join("ld/t"),
            PathBuf::from("/etc/hostname"),
        ];
        for p in paths {
            let e = hash_file(dir.path(), &p, &c).expect_err("not a regular file inside");
            assert_eq!(
                e.disposition(),
                crate::error::Disposition::Vanished,
                "{p:?}: {e}"
            );
        }
        assert_eq!(c.load(Ordering::Relaxed), 0, "not a byte read");
    }
}
