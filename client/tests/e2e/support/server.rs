//! The real `asset-catalog-server` binary as a child process: a temp config
//! (loopback, free port, file store in a temp dir), `/healthz` polled until it
//! answers, and helpers to read its index and its `/metrics`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use super::http;
use super::{free_port, signal, wait_until};

/// Where the server binary is: next to the watcher binary.
pub fn server_bin() -> PathBuf {
    let dir = Path::new(env!("CARGO_BIN_EXE_asset-watcher"))
        .parent()
        .expect("binary directory")
        .to_path_buf();
    let bin = dir.join("asset-catalog-server");
    assert!(
        bin.exists(),
        "{} is missing: run `cargo build -p asset-catalog-server` first (the test command builds the whole workspace)",
        bin.display()
    );
    bin
}

/// A running (or stopped) server with its own state and object directory,
/// and two bearer tokens made with `asset-catalog-server token create`.
#[derive(Debug)]
pub struct Server {
    pub port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
    /// `read` + `admin`: what the tests use to look at the index.
    admin_token: String,
    /// `upload`: what the watcher gets.
    pub upload_token: String,
}

impl Server {
    /// Start a server; `extra` is appended to its `[server]` section.
    pub fn start_with(extra: &str) -> Self {
        Self::start_with_sections(extra, "", "")
    }

    /// Start a server on the file store; `server` and `storage` are
    /// appended to those sections, `more` (whole sections, e.g.
    /// `[uploads]`) to the file.
    pub fn start_with_sections(server: &str, storage: &str, more: &str) -> Self {
        Self::start_on(server, |objects| {
            format!(
                "[storage]\nurl = \"file://{}\"\n{storage}\n\n{more}",
                objects.display()
            )
        })
    }

    /// Start a server whose config after `[server]` (the storage section
    /// and any other) is what `rest` makes of the file store's directory.
    pub fn start_on(server: &str, rest: impl FnOnce(&Path) -> String) -> Self {
        let dir = tempfile::tempdir().expect("server tempdir");
        let port = free_port();
        let state = dir.path().join("state");
        let objects = dir.path().join("objects");
        std::fs::create_dir_all(&objects).expect("objects dir");
        let config = format!(
            "[log]\nlevel = \"warn\"\n\n[server]\nlisten = \"127.0.0.1:{port}\"\nstate_dir = \"{}\"\n\
             shutdown_timeout_secs = 5\n{server}\n\n{}\n",
            state.display(),
            rest(&objects)
        );
        std::fs::write(dir.path().join("server.toml"), config).expect("server config");
        let admin_token = create_token(dir.path(), "tests", "admin");
        let upload_token = create_token(dir.path(), "watcher", "upload");
        let mut s = Self {
            port,
            dir,
            child: None,
            admin_token,
            upload_token,
        };
        s.spawn();
        s
    }

    pub fn start() -> Self {
        Self::start_with("")
    }

    /// (Re)start the process on the same port and state.
    pub fn spawn(&mut self) {
        assert!(self.child.is_none(), "server already running");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("server.log"))
            .expect("server log");
        let child = Command::new(server_bin())
            .env_clear()
            .arg("--config")
            .arg(self.dir.path().join("server.toml"))
            .arg("serve")
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("spawn asset-catalog-server");
        self.child = Some(child);
        let port = self.port;
        wait_until("server /healthz", Duration::from_secs(30), || {
            http::get(port, "/healthz", "").filter(|r| r.status == 200)
        });
    }

    /// SIGTERM and wait.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            signal(&child, rustix::process::Signal::TERM);
            child.wait().expect("wait for server");
        }
    }

    /// SIGKILL: the server gets no chance to finish anything.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            signal(&child, rustix::process::Signal::KILL);
            child.wait().expect("wait for server");
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The data objects in the bucket (the file store's files, without the
    /// `meta/` sidecars), by file name.
    pub fn objects(&self) -> Vec<String> {
        let mut out: Vec<String> = std::fs::read_dir(self.dir.path().join("objects"))
            .expect("read the bucket")
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        out.sort();
        out
    }

    /// Every asset in the index.
    pub fn assets(&self) -> Vec<Value> {
        let mut out = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let path = match &cursor {
                Some(c) => format!("/v1/assets?limit=1000&cursor={c}"),
                None => "/v1/assets?limit=1000".to_owned(),
            };
            let res = http::get(self.port, &path, &self.admin_token).expect("GET /v1/assets");
            assert_eq!(res.status, 200, "{}", res.text());
            let page = res.json();
            out.extend(page["items"].as_array().cloned().unwrap_or_default());
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => return out,
            }
        }
    }

    /// Hashes in the index.
    pub fn hashes(&self) -> std::collections::HashSet<String> {
        self.assets()
            .iter()
            .filter_map(|a| a["sha256"].as_str().map(str::to_owned))
            .collect()
    }

    /// `GET /v1/assets/{sha}`: the asset and its sightings.
    pub fn detail(&self, sha: &str) -> Value {
        let res = http::get(self.port, &format!("/v1/assets/{sha}"), &self.admin_token)
            .expect("GET asset");
        assert_eq!(res.status, 200, "{}", res.text());
        res.json()
    }

    /// The paths this content was seen at.
    pub fn sighting_paths(&self, sha: &str) -> Vec<String> {
        let mut v: Vec<String> = self.detail(sha)["sightings"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s["path"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }

    /// A counter from `/metrics` (0 when absent), e.g.
    /// `asset_catalog_uploads_total{outcome="existing"}`.
    pub fn metric(&self, series: &str) -> u64 {
        metric_in(&self.metrics_text(), series)
    }

    /// The whole `/metrics` text.
    pub fn metrics_text(&self) -> String {
        http::get(self.port, "/metrics", &self.admin_token)
            .expect("GET /metrics")
            .text()
    }

    /// The admin token, for the tests' own requests.
    pub fn admin_token(&self) -> &str {
        &self.admin_token
    }

    /// Make the server's storage fail while the server runs (its object
    /// directory turns into a file); `restore_storage` undoes it.
    pub fn break_storage(&self) {
        let objects = self.dir.path().join("objects");
        std::fs::rename(&objects, objects.with_extension("aside")).expect("move the objects aside");
        std::fs::write(&objects, b"not a directory").expect("block the objects path");
    }

    pub fn restore_storage(&self) {
        let objects = self.dir.path().join("objects");
        std::fs::remove_file(&objects).expect("unblock the objects path");
        std::fs::rename(objects.with_extension("aside"), &objects).expect("bring the objects back");
    }

    /// `GET /readyz`: status and body.
    pub fn readyz(&self) -> (u16, Value) {
        let res = http::get(self.port, "/readyz", "").expect("GET /readyz");
        (res.status, res.json())
    }

    /// [`Self::readyz`] until it answers `want` (the server caches its
    /// answer for about a second), or the last answer after three seconds.
    pub fn readyz_settled(&self, want: u16) -> (u16, Value) {
        let mut last = self.readyz();
        for _ in 0..30 {
            if last.0 == want {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
            last = self.readyz();
        }
        last
    }

    /// Bytes of new content the server stored.
    pub fn stored_bytes(&self) -> u64 {
        self.metric("asset_catalog_upload_bytes_total")
    }

    /// Uploads whose bytes the server already had (bytes sent in vain).
    pub fn redundant_uploads(&self) -> u64 {
        self.metric("asset_catalog_uploads_total{outcome=\"existing\"}")
    }
}

impl Server {
    /// `token create --scope upload` with `limits` (e.g. `["--rate", "30"]`).
    pub fn limited_upload_token(&self, name: &str, limits: &[&str]) -> String {
        create_token_with(self.dir.path(), name, "upload", limits)
    }
}

/// A counter in a `/metrics` text (0 when absent).
pub fn metric_in(text: &str, series: &str) -> u64 {
    text.lines()
        .find_map(|l| {
            l.strip_prefix(series)
                .and_then(|rest| rest.strip_prefix(' '))
        })
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map_or(0, |v| v as u64)
}

/// `token create` on the server's index; returns the token.
fn create_token(dir: &Path, name: &str, scope: &str) -> String {
    create_token_with(dir, name, scope, &[])
}

fn create_token_with(dir: &Path, name: &str, scope: &str, limits: &[&str]) -> String {
    let out = Command::new(server_bin())
        .env_clear()
        .arg("--config")
        .arg(dir.join("server.toml"))
        .args(["token", "create", "--name", name, "--scope", scope])
        .args(limits)
        .output()
        .expect("token create");
    assert!(
        out.status.success(),
        "token create: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
