//! Shared pieces of the end-to-end tests: the real server, the real watcher
//! in a temp home, a small HTTP client, and file helpers. What the server's
//! tests need as well (free ports, hex and SHA-256, signals, waiting for a
//! condition) is `testkit`'s, re-exported here.

pub mod http;
pub mod server;
pub mod watcher;

use std::path::Path;
use std::time::Duration;

use sha2::{Digest, Sha256};

pub use server::Server;
pub use testkit::{free_port, hex_lower, sha256_hex as sha, signal, wait_until};
pub use watcher::Home;

/// Write a file, creating its directories.
pub fn write(path: &Path, data: &[u8]) {
    if let Some(p) = path.parent() {
        std::fs::create_dir_all(p).expect("mkdir");
    }
    std::fs::write(path, data).expect("write file");
}

/// Distinct content of `len` bytes derived from `seed`.
pub fn content(seed: &str, len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 32);
    let mut block = Sha256::digest(seed.as_bytes()).to_vec();
    while out.len() < len {
        out.extend_from_slice(&block);
        block = Sha256::digest(&block).to_vec();
    }
    out.truncate(len);
    out
}

/// Every entry under `dir` with its size and mtime, sorted.
pub fn tree(dir: &Path) -> Vec<(std::path::PathBuf, u64, std::time::SystemTime)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read_dir").flatten() {
            let m = e.metadata().expect("metadata");
            if m.is_dir() {
                stack.push(e.path());
            }
            out.push((e.path(), m.len(), m.modified().expect("mtime")));
        }
    }
    out.sort();
    out
}

/// Wait until the watcher's queue is empty and the server holds every
/// hash in `want`.
pub fn wait_stored(server: &Server, home: &Home, want: &[String], timeout: Duration) {
    wait_until("all files stored", timeout, || {
        is_stored(server, home, want).then_some(())
    });
}

/// The watcher's queue is empty and the server holds every hash in `want`.
pub fn is_stored(server: &Server, home: &Home, want: &[String]) -> bool {
    if home.status()["queued"].as_u64() != Some(0) {
        return false;
    }
    let have = server.hashes();
    want.iter().all(|h| have.contains(h))
}
