//! Server-side faults (issue 7), on the real binary, one scenario per file:
//! `kill -9` in the middle of an upload (`kill.rs`: single PUT and
//! multipart, file store and Garage), a full state directory (`disk_full.rs`:
//! a small tmpfs), and a damaged index (`damaged_index.rs`). Each checks the
//! bucket as listed directly, the index, and the bytes. This file holds what
//! they share: the bucket under test, the spawned server, and the checks.

mod damaged_index;
mod disk_full;
mod kill;

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant, SystemTime};

use asset_catalog_proto::ErrorCode;
use bytes::Bytes;
use futures_util::StreamExt;
use object_store::ObjectStore;
use object_store::local::LocalFileSystem;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use crate::binary::{Env, sigterm, upload, wait};
use crate::garage::Garage;
use crate::support::{assert_error, chunk, json_of, list_keys, sha256_hex};

const MIB: usize = 1024 * 1024;
/// Part size: the smallest the default 64 GiB upload limit allows (10,000 parts).
const PART: usize = 8 * MIB;

/// Where the server under test keeps its objects.
enum Bucket {
    File,
    Garage(Garage),
}

impl Env {
    fn objects(&self) -> PathBuf {
        self.state().join("objects")
    }

    /// Configure the storage of `bucket` with 8 MiB parts.
    fn use_bucket(&self, bucket: &Bucket) {
        let storage = match bucket {
            Bucket::File => format!("[storage]\nurl = \"file://{}\"\n", self.objects().display()),
            Bucket::Garage(g) => self.s3_storage(g.s3_port, 0o600),
        };
        self.write_config(&format!("{storage}part_size_bytes = {PART}\n"));
    }

    /// A direct handle on the bucket (not through the server).
    fn store(&self, bucket: &Bucket) -> std::sync::Arc<dyn ObjectStore> {
        match bucket {
            Bucket::File => std::sync::Arc::new(
                LocalFileSystem::new_with_prefix(self.objects()).expect("file store"),
            ),
            Bucket::Garage(g) => g.store(),
        }
    }

    /// Every key a listing of the bucket shows, sorted.
    async fn keys(&self, bucket: &Bucket) -> Vec<String> {
        list_keys(self.store(bucket).as_ref()).await
    }

    /// `reindex` into a fresh state directory must find exactly what the live
    /// index holds: (sha256, key, size) of every asset.
    fn assert_index_matches_bucket(&self) {
        let live = index_rows(&self.state().join("index.sqlite3"));
        let fresh = self.dir.path().join(format!(
            "reindexed-{}",
            SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .expect("clock")
                .as_nanos()
        ));
        let out = self
            .command()
            .arg("reindex")
            .env("ASSET_CATALOG__SERVER__STATE_DIR", &fresh)
            .output()
            .expect("run reindex");
        assert!(out.status.success(), "{out:?}");
        let rebuilt = index_rows(&fresh.join("index.sqlite3"));
        assert_eq!(live, rebuilt, "live index vs. reindex of the bucket");
    }
}

/// (sha256, key, size) of every asset in the index at `path`, sorted.
fn index_rows(path: &Path) -> Vec<(String, String, i64)> {
    let conn = rusqlite::Connection::open(path).expect("open index");
    let mut stmt = conn
        .prepare("SELECT sha256, key, size FROM assets ORDER BY sha256")
        .expect("prepare");
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows")
}

/// `PRAGMA integrity_check` of the index at `path`.
fn integrity(path: &Path) -> String {
    let conn = rusqlite::Connection::open(path).expect("open index");
    conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .expect("integrity_check")
}

fn body_of(len: usize, seed: u64) -> Bytes {
    chunk(seed, len)
}

/// PUT `body` whole (streamed with a Content-Length); returns status and JSON.
async fn put(env: &Env, name: &str, body: Bytes) -> (u16, serde_json::Value) {
    let res = env
        .client()
        .put(env.url(&format!("/v1/assets/{}", sha256_hex(&body))))
        .insert_header(("x-asset-name", name))
        .send_body(body)
        .await
        .expect("PUT");
    json_of(res).await
}

/// GET the content of `sha` and return its SHA-256 and length.
async fn content_digest(env: &Env, sha: &str) -> (String, usize) {
    let mut res = env
        .client()
        .get(env.url(&format!("/v1/assets/{sha}/content")))
        .send()
        .await
        .expect("GET content");
    assert_eq!(res.status(), 200);
    let mut hasher = Sha256::new();
    let mut len = 0;
    while let Some(piece) = res.next().await {
        let piece = piece.expect("content piece");
        len += piece.len();
        hasher.update(&piece);
    }
    (hex::encode(hasher.finalize()), len)
}

/// Keys of content objects (not sidecars).
fn data_keys(keys: &[String]) -> Vec<&String> {
    keys.iter().filter(|k| !k.starts_with("meta/")).collect()
}

/// `after` is `before` plus `<sha>.bin` and, where the backend keeps no
/// object attributes, its sidecar: the content is stored exactly once.
fn assert_stored_once(before: &[String], after: &[String], sha: &str) {
    let added: Vec<&String> = after.iter().filter(|k| !before.contains(k)).collect();
    assert!(
        before.iter().all(|k| after.contains(k)),
        "{before:?} -> {after:?}"
    );
    let sidecar = format!("meta/{sha}.json");
    assert_eq!(
        data_keys(after).len(),
        data_keys(before).len() + 1,
        "{after:?}"
    );
    assert!(added.contains(&&format!("{sha}.bin")), "{added:?}");
    assert!(
        added.iter().all(|k| k.starts_with(sha) || **k == sidecar),
        "{added:?}"
    );
}

/// A spawned `serve`, killed if the test fails before stopping it.
struct Running {
    child: Option<Child>,
    _socket: tokio::net::UnixDatagram,
}

impl Running {
    async fn start(env: &Env, stderr: Stdio) -> Self {
        let (child, socket, _) = env.serve_with_stderr(&[], stderr).await;
        Self {
            child: Some(child),
            _socket: socket,
        }
    }

    fn take(&mut self) -> Child {
        self.child.take().expect("running")
    }

    /// SIGTERM and a clean exit.
    fn stop(mut self) {
        let child = self.take();
        sigterm(&child);
        assert!(wait(child).success());
    }

    fn kill_9(mut self) {
        sigkill(self.take());
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn sigkill(child: Child) {
    let pid = rustix::process::Pid::from_child(&child);
    rustix::process::kill_process(pid, rustix::process::Signal::KILL).expect("SIGKILL");
    let status = wait(child);
    assert!(!status.success(), "killed: {status:?}");
}

/// Poll `check` for up to 30 s.
async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// object_store's staging files (`<key>#<n>`) under the file store.
fn staging_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else if asset_catalog_server::storage::cleanup::is_staging_file(
                &entry.file_name().to_string_lossy(),
            ) {
                out.push(path);
            }
        }
    }
    out
}

/// Mounts a tmpfs of `size` on `dir`; unmounts when dropped.
struct Tmpfs {
    dir: PathBuf,
}

impl Tmpfs {
    /// `None` (with the reason printed) where this process may not mount.
    fn mount(dir: &Path, size: &str) -> Option<Self> {
        std::fs::create_dir_all(dir).expect("mount point");
        let out = std::process::Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(dir)
            .output();
        match out {
            Ok(out) if out.status.success() => Some(Self {
                dir: dir.to_path_buf(),
            }),
            other => {
                eprintln!(
                    "SKIP: cannot mount a tmpfs on {} (the disk-full test needs root): {other:?}",
                    dir.display()
                );
                None
            }
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let out = std::process::Command::new("umount")
            .arg("--lazy")
            .arg(&self.dir)
            .output();
        if !out.as_ref().is_ok_and(|o| o.status.success()) {
            eprintln!("cannot unmount {}: {out:?}", self.dir.display());
        }
    }
}
