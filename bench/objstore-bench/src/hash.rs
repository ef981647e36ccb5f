//! Hashing throughput of the watcher's own hasher: `asset_watcher::hasher`
//! (the same pool, chunk size, open flags and SHA-256 implementation that
//! `asset-watcher` uses), with its pool sized to `threads`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use asset_watcher::hasher::Hasher;
use serde_json::json;

/// A file could not be hashed.
#[derive(Debug, thiserror::Error)]
pub enum HashError {
    #[error("hashing {path}: {message}")]
    File { path: PathBuf, message: String },
    #[error("starting the runtime: {0}")]
    Runtime(#[from] std::io::Error),
}

/// The directory holding `file`, which the hasher opens it beneath.
fn dir_of(file: &Path) -> PathBuf {
    match file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Hash `files` with at most `threads` at once; bytes, seconds, digests.
pub fn hash_files(files: &[PathBuf], threads: usize) -> Result<serde_json::Value, HashError> {
    let threads = threads.max(1);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .max_blocking_threads(threads)
        .build()?;
    let counter = Arc::new(AtomicU64::new(0));
    let hasher = Hasher::new(threads, Arc::clone(&counter));
    let start = Instant::now();
    let results = rt.block_on(futures_util::future::join_all(
        files.iter().map(|f| hasher.hash(dir_of(f), f.clone())),
    ));
    let seconds = start.elapsed().as_secs_f64();
    let mut digests = Vec::with_capacity(files.len());
    for (path, result) in files.iter().zip(results) {
        let hashed = result.map_err(|e| HashError::File {
            path: path.clone(),
            message: e.to_string(),
        })?;
        digests.push(hashed.sha256.into_string());
    }
    Ok(json!({
        "op": "hash",
        "threads": threads,
        "bytes": counter.load(Ordering::Relaxed),
        "seconds": seconds,
        "digests": digests,
    }))
}
