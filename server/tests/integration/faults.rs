//! Server-side faults (issue 7), on the real binary: `kill -9` in the middle
//! of an upload (single PUT and multipart, file store and Garage), a full
//! state directory (a small tmpfs), and a damaged index. Each checks the
//! bucket as listed directly, the index, and the bytes.

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

/// `kill -9` of the server while it receives `total` bytes (of which
/// `sent` arrived): nothing partial is visible, the index agrees with
/// `reindex`, leftovers are cleaned or named, and the upload succeeds once
/// after a restart.
async fn kill_9_mid_upload(garage: bool, total: usize, sent: usize) {
    let env = Env::new();
    let bucket = if garage {
        Bucket::Garage(Garage::start().await)
    } else {
        Bucket::File
    };
    env.use_bucket(&bucket);
    let server = Running::start(&env, Stdio::inherit()).await;
    upload(&env, "before-1.txt", b"stored before the crash").await;
    upload(&env, "before-2.jpg", b"also stored before the crash").await;
    let before = env.keys(&bucket).await;
    assert_eq!(data_keys(&before).len(), 2, "{before:?}");

    let body = body_of(total, total as u64);
    let sha = sha256_hex(&body);
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", env.port))
        .await
        .expect("connect");
    let head = format!(
        "PUT /v1/assets/{sha} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {}\r\nx-asset-name: crash.bin\r\nContent-Length: {total}\r\n\r\n",
        env.token
    );
    stream.write_all(head.as_bytes()).await.expect("head");
    stream.write_all(&body[..sent]).await.expect("first part");
    stream.flush().await.expect("flush");
    // Crash while the server holds the body (single PUT) or has parts of a
    // multipart upload in the bucket.
    let multipart = sent > asset_catalog_server::service::SMALL_BODY_MAX;
    match (&bucket, multipart) {
        (Bucket::Garage(g), true) => g.wait_unfinished_multipart_uploads(1).await,
        (Bucket::File, true) => {
            eventually("a staging file", || {
                !staging_files(&env.objects()).is_empty()
            })
            .await
        }
        (_, false) => tokio::time::sleep(Duration::from_millis(500)).await,
    }
    server.kill_9();
    drop(stream);

    assert_eq!(
        env.keys(&bucket).await,
        before,
        "nothing partial is visible"
    );
    env.assert_index_matches_bucket();
    let leftovers = staging_files(&env.objects());
    if let Bucket::File = bucket {
        assert_eq!(!leftovers.is_empty(), multipart, "{leftovers:?}");
        // Make them old enough for the startup cleanup; a fresh one must stay.
        let old = SystemTime::now() - Duration::from_secs(3600);
        for file in &leftovers {
            let f = std::fs::File::options()
                .write(true)
                .open(file)
                .expect("open");
            f.set_modified(old).expect("age staging file");
        }
    }
    let fresh = env.objects().join(format!("{}.bin#999", "f".repeat(64)));
    if let Bucket::File = bucket {
        std::fs::write(&fresh, b"an upload in progress").expect("fresh staging");
    }

    let server = Running::start(&env, Stdio::inherit()).await;
    if let Bucket::File = bucket {
        eventually("the startup cleanup", || {
            staging_files(&env.objects()) == [fresh.clone()]
        })
        .await;
        std::fs::remove_file(&fresh).expect("remove fresh staging file");
    }
    if let Bucket::Garage(g) = &bucket {
        // The server cannot list multipart uploads (object_store has no
        // ListMultipartUploads): the crash's parts stay until the bucket's
        // lifecycle rule or the operator removes them, as the README says.
        // (Garage would also drop them once the same key is completed.)
        g.wait_unfinished_multipart_uploads(i64::from(multipart))
            .await;
        g.cleanup_incomplete_uploads("0s");
        g.wait_unfinished_multipart_uploads(0).await;
    }
    let (status, json) = put(&env, "crash.bin", body.clone()).await;
    assert_eq!(status, 201, "{json}");
    let (status, json) = put(&env, "crash.bin", body.clone()).await;
    assert_eq!(status, 200, "the second upload is a duplicate: {json}");
    assert_stored_once(&before, &env.keys(&bucket).await, &sha);
    assert_eq!(content_digest(&env, &sha).await, (sha.clone(), total));
    server.stop();
    env.assert_index_matches_bucket();
    assert_eq!(index_rows(&env.state().join("index.sqlite3")).len(), 3);
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

/// Write `path` until the file system says ENOSPC.
fn fill(path: &Path) {
    use std::io::Write;
    let mut file = std::fs::File::create(path).expect("filler");
    let block = vec![0x5au8; 4096];
    loop {
        match file.write_all(&block).and_then(|()| file.sync_all()) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::StorageFull => return,
            Err(e) => panic!("filling {}: {e}", path.display()),
        }
    }
}

/// A multipart/form-data upload (spooled to the state directory first).
async fn post_form(env: &Env, name: &str, body: &[u8]) -> (u16, serde_json::Value) {
    let boundary = "fault-boundary-7";
    let mut form = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
    )
    .into_bytes();
    form.extend_from_slice(body);
    form.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let res = env
        .client()
        .post(env.url("/v1/assets"))
        .insert_header((
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        ))
        .send_body(form)
        .await
        .expect("POST form");
    json_of(res).await
}

/// The state directory (index, spool, file store) on a full 16 MiB tmpfs:
/// 507 `insufficient_storage` for a single PUT, a multipart upload and a
/// form upload, a clear log line, an intact index, a restart while full, and
/// uploads work again once space is freed.
async fn disk_full_state_dir() {
    let env = Env::new();
    let state = env.state();
    let token_index = std::fs::read(state.join("index.sqlite3")).ok();
    let _ = std::fs::remove_dir_all(&state);
    let Some(_mount) = Tmpfs::mount(&state, "16m") else {
        return;
    };
    // The admin token lives in the index Env::new made; bring it along.
    if let Some(index) = token_index {
        std::fs::write(state.join("index.sqlite3"), index).expect("restore index");
    }
    env.use_bucket(&Bucket::File);
    let log_path = env.dir.path().join("server.log");
    let log = std::fs::File::create(&log_path).expect("log");
    let server = Running::start(&env, Stdio::from(log)).await;
    upload(&env, "before.txt", b"stored before the disk filled").await;
    let filler = state.join("filler");
    fill(&filler);

    let small = body_of(256 * 1024, 1);
    let large = body_of(12 * MIB, 2);
    let form = body_of(64 * 1024, 3);
    for (name, body) in [("small.bin", &small), ("large.bin", &large)] {
        let (status, json) = put(&env, name, body.clone()).await;
        assert_error(status, &json, 507, ErrorCode::InsufficientStorage);
    }
    let (status, json) = post_form(&env, "form.bin", &form).await;
    assert_error(status, &json, 507, ErrorCode::InsufficientStorage);
    let keys = env.keys(&Bucket::File).await;
    assert_eq!(keys.len(), 2, "only the first asset: {keys:?}");
    assert_eq!(integrity(&state.join("index.sqlite3")), "ok");
    server.stop();
    let logged = std::fs::read_to_string(&log_path).expect("read log");
    assert!(logged.contains("out of space"), "{logged}");

    // Restart while still full: the index opens, the server is ready.
    let server = Running::start(&env, Stdio::inherit()).await;
    std::fs::remove_file(&filler).expect("free space");
    for (name, body) in [("small.bin", &small), ("large.bin", &large)] {
        let (status, json) = put(&env, name, body.clone()).await;
        assert_eq!(status, 201, "{name} after freeing space: {json}");
        let sha = sha256_hex(body);
        assert_eq!(content_digest(&env, &sha).await, (sha, body.len()));
    }
    let (status, json) = post_form(&env, "form.bin", &form).await;
    assert_eq!(status, 201, "form after freeing space: {json}");
    assert_eq!(
        env.keys(&Bucket::File).await.len(),
        8,
        "four assets, once each"
    );
    server.stop();
    assert_eq!(integrity(&state.join("index.sqlite3")), "ok");
    env.assert_index_matches_bucket();
    assert!(staging_files(&env.objects()).is_empty());
}

/// Run `serve`, which must exit on its own within 30 s (killed otherwise).
fn serve_expecting_failure(env: &Env) -> std::process::Output {
    let mut child = env
        .command()
        .arg("serve")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn serve");
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().expect("try_wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().expect("output");
            panic!("serve started on a damaged index: {out:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().expect("output")
}

/// How an index gets damaged.
#[derive(Debug, Clone, Copy)]
enum Damage {
    Garbage,
    Truncated,
    Empty,
    WalGarbage,
}

/// A damaged index: `serve` refuses to start, naming the file and
/// `asset-catalog-server reindex`; `reindex` recovers every asset.
async fn damaged_index_is_refused_and_reindex_recovers(damage: Damage) {
    let env = Env::new();
    env.use_bucket(&Bucket::File);
    let server = Running::start(&env, Stdio::inherit()).await;
    for i in 0..40u64 {
        let (status, json) = put(&env, &format!("asset-{i}.bin"), body_of(2048, 100 + i)).await;
        assert_eq!(status, 201, "{json}");
    }
    let index = env.state().join("index.sqlite3");
    let wal = env.state().join("index.sqlite3-wal");
    let assets = index_rows(&index);
    assert_eq!(assets.len(), 40);
    // For the WAL case the server must die with transactions in its WAL.
    if let Damage::WalGarbage = damage {
        server.kill_9();
    } else {
        server.stop();
    }
    let damaged = match damage {
        Damage::Garbage => {
            std::fs::write(&index, vec![0x42u8; 64 * 1024]).expect("garbage");
            &index
        }
        Damage::Truncated => {
            let len = std::fs::metadata(&index).expect("index").len();
            let file = std::fs::File::options()
                .write(true)
                .open(&index)
                .expect("open");
            file.set_len(len / 2).expect("truncate");
            &index
        }
        Damage::Empty => {
            std::fs::write(&index, b"").expect("empty");
            &index
        }
        Damage::WalGarbage => {
            let len = std::fs::metadata(&wal).map_or(0, |m| m.len());
            assert!(len > 0, "the killed server left a WAL");
            std::fs::write(&wal, body_of(len as usize, 9)).expect("garbage WAL");
            &wal
        }
    };
    let out = serve_expecting_failure(&env);
    assert_eq!(out.status.code(), Some(1), "{damage:?}: {out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&damaged.display().to_string())
            && stderr.contains("asset-catalog-server reindex"),
        "{damage:?}: {stderr}"
    );
    let out = env.run(&["reindex"]);
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("moved the unreadable index to"), "{stdout}");
    assert!(stdout.contains("reindexed 40 assets"), "{stdout}");
    assert_eq!(index_rows(&index), assets, "{damage:?}: the same assets");
    let reader = env.create_token("after-reindex", &["read"]);
    let server = Running::start(&env, Stdio::inherit()).await;
    let (status, json) = json_of(
        env.client_with(&reader)
            .get(env.url("/v1/assets?limit=1000"))
            .send()
            .await
            .expect("list"),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(json["items"].as_array().map(Vec::len), Some(40), "{json}");
    server.stop();
}

#[actix_web::test]
async fn kill_9_mid_single_put_file() {
    kill_9_mid_upload(false, 6 * MIB, 3 * MIB).await;
}

#[actix_web::test]
async fn kill_9_mid_multipart_file() {
    kill_9_mid_upload(false, 24 * MIB, 16 * MIB).await;
}

#[actix_web::test]
async fn kill_9_mid_single_put_garage() {
    kill_9_mid_upload(true, 6 * MIB, 3 * MIB).await;
}

#[actix_web::test]
async fn kill_9_mid_multipart_garage() {
    kill_9_mid_upload(true, 24 * MIB, 16 * MIB).await;
}

#[actix_web::test]
async fn disk_full_on_the_state_dir() {
    disk_full_state_dir().await;
}

#[actix_web::test]
async fn garbage_index_is_refused_and_reindexed() {
    damaged_index_is_refused_and_reindex_recovers(Damage::Garbage).await;
}

#[actix_web::test]
async fn truncated_index_is_refused_and_reindexed() {
    damaged_index_is_refused_and_reindex_recovers(Damage::Truncated).await;
}

#[actix_web::test]
async fn empty_index_is_refused_and_reindexed() {
    damaged_index_is_refused_and_reindex_recovers(Damage::Empty).await;
}

#[actix_web::test]
async fn garbage_wal_is_refused_and_reindexed() {
    damaged_index_is_refused_and_reindex_recovers(Damage::WalGarbage).await;
}
