//! The real `asset-catalog-server` binary: a temp config, a free port, a real
//! `UnixDatagram` as `NOTIFY_SOCKET` (READY=1, WATCHDOG=1, STOPPING=1 after
//! SIGTERM), `check-config`, `reindex` after losing the index,
//! `export-index`, and the hidden `generate-docs`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use asset_catalog_proto::AssetPage;
use tokio::net::UnixDatagram;

use crate::support::{json_of, sha256_hex};

const BIN: &str = env!("CARGO_BIN_EXE_asset-catalog-server");

pub(crate) struct Env {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) port: u16,
    /// An admin token made with `token create` (the CLI, as an operator would).
    pub(crate) token: String,
}

impl Env {
    pub(crate) fn new() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let mut env = Self {
            dir: tempfile::tempdir().expect("tempdir"),
            port,
            token: String::new(),
        };
        env.write_config("");
        env.token = env.create_token("test-admin", &["admin"]);
        env
    }

    /// (Re)write the config file: listen, state dir, log level, then `storage`
    /// (TOML for a `[storage]` section; empty for the default file store).
    pub(crate) fn write_config(&self, storage: &str) {
        let config = format!(
            "[server]\nlisten = \"127.0.0.1:{port}\"\nstate_dir = \"{state}\"\nshutdown_timeout_secs = 5\n\n[log]\nlevel = \"info\"\n\n{storage}",
            port = self.port,
            state = self.state().display()
        );
        std::fs::write(self.config(), config).expect("write config");
    }

    /// A `[storage]` section for the test Garage on `s3_port`, with the
    /// secret in a file of `mode`.
    pub(crate) fn s3_storage(&self, s3_port: u16, mode: u32) -> String {
        use crate::garage;
        use std::os::unix::fs::PermissionsExt;
        let secret = self.dir.path().join("s3-secret");
        std::fs::write(&secret, garage::SECRET_KEY).expect("secret");
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(mode)).expect("chmod");
        format!(
            "[storage]\nurl = \"s3://{bucket}\"\nendpoint = \"http://127.0.0.1:{s3_port}\"\nregion = \"{region}\"\nallow_http = true\naccess_key_id = \"{key}\"\nsecret_access_key_file = \"{secret}\"\n",
            bucket = garage::BUCKET,
            region = garage::REGION,
            key = garage::ACCESS_KEY,
            secret = secret.display(),
        )
    }

    /// `token create`: stdout is exactly the token on one line.
    pub(crate) fn create_token(&self, name: &str, scopes: &[&str]) -> String {
        let mut args = vec!["token", "create", "--name", name];
        for scope in scopes {
            args.extend(["--scope", scope]);
        }
        let out = self.run(&args);
        assert!(out.status.success(), "{out:?}");
        let stdout = String::from_utf8(out.stdout).expect("utf8");
        let token = stdout.trim_end_matches('\n');
        assert!(
            token.starts_with("acat_") && !token.contains('\n'),
            "{stdout:?}"
        );
        token.to_owned()
    }

    /// An awc client that sends the admin token.
    pub(crate) fn client(&self) -> awc::Client {
        self.client_with(&self.token)
    }

    pub(crate) fn client_with(&self, token: &str) -> awc::Client {
        awc::Client::builder()
            .disable_timeout()
            .bearer_auth(token)
            .finish()
    }

    pub(crate) fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    pub(crate) fn config(&self) -> PathBuf {
        self.dir.path().join("server.toml")
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub(crate) fn command(&self) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.env_clear()
            .env("RUST_LOG", "info")
            .arg("--config")
            .arg(self.config());
        cmd
    }

    pub(crate) fn run(&self, args: &[&str]) -> Output {
        self.command().args(args).output().expect("run binary")
    }

    /// Start `serve` with a notify socket; returns once READY=1 arrived.
    pub(crate) async fn serve(
        &self,
        extra_env: &[(&str, &str)],
    ) -> (Child, UnixDatagram, Vec<String>) {
        self.serve_with_stderr(extra_env, Stdio::inherit()).await
    }

    pub(crate) async fn serve_with_stderr(
        &self,
        extra_env: &[(&str, &str)],
        stderr: Stdio,
    ) -> (Child, UnixDatagram, Vec<String>) {
        let socket_path = self.dir.path().join("notify.sock");
        let _ = std::fs::remove_file(&socket_path);
        let socket = UnixDatagram::bind(&socket_path).expect("bind notify socket");
        let mut cmd = self.command();
        cmd.arg("serve")
            .env("NOTIFY_SOCKET", &socket_path)
            .stdout(Stdio::null())
            .stderr(stderr);
        for (k, v) in extra_env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("spawn server");
        let messages = read_until(&socket, "READY=1").await;
        (child, socket, messages)
    }
}

/// Collect notify datagrams until one contains `needle`.
pub(crate) async fn read_until(socket: &UnixDatagram, needle: &str) -> Vec<String> {
    let mut seen = Vec::new();
    let mut buf = vec![0u8; 4096];
    loop {
        let n = tokio::time::timeout(Duration::from_secs(60), socket.recv(&mut buf))
            .await
            .unwrap_or_else(|_| panic!("no {needle} within 60 s; got {seen:?}"))
            .expect("recv");
        let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
        let done = msg.lines().any(|l| l == needle);
        seen.push(msg);
        if done {
            return seen;
        }
    }
}

pub(crate) fn sigterm(child: &Child) {
    let pid = rustix::process::Pid::from_child(child);
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).expect("SIGTERM");
}

pub(crate) fn wait(mut child: Child) -> std::process::ExitStatus {
    for _ in 0..600 {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    panic!("server did not exit within 30 s of SIGTERM");
}

pub(crate) async fn upload(env: &Env, name: &str, body: &'static [u8]) {
    let res = env
        .client()
        .put(env.url(&format!("/v1/assets/{}", sha256_hex(body))))
        .insert_header(("x-asset-name", name))
        .send_body(body)
        .await
        .expect("PUT");
    let (status, json) = json_of(res).await;
    assert_eq!(status, 201, "{json}");
}

#[actix_web::test]
async fn serves_after_ready_and_drains_on_sigterm() {
    let env = Env::new();
    let (child, socket, messages) = env.serve(&[("WATCHDOG_USEC", "400000")]).await;
    let ready = messages.last().expect("ready message");
    assert!(
        ready.contains("STATUS=serving on 127.0.0.1:"),
        "{messages:?}"
    );
    let (status, json) = json_of(
        env.client()
            .get(env.url("/healthz"))
            .send()
            .await
            .expect("healthz"),
    )
    .await;
    assert_eq!((status, json["status"].as_str()), (200, Some("ok")));
    upload(&env, "hello.txt", b"hello from the binary test").await;
    // `systemctl reload` sends SIGHUP; without TLS there is nothing to reload,
    // and the server must keep serving rather than die of the default action.
    let pid = rustix::process::Pid::from_child(&child);
    rustix::process::kill_process(pid, rustix::process::Signal::HUP).expect("SIGHUP");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let res = env.client().get(env.url("/healthz")).send().await;
    assert_eq!(res.expect("healthz after SIGHUP").status(), 200);
    let mut res = env
        .client()
        .get(env.url("/metrics"))
        .send()
        .await
        .expect("metrics");
    let text = String::from_utf8(res.body().await.expect("metrics body").to_vec()).expect("utf8");
    assert!(
        text.contains("asset_catalog_uploads_total{outcome=\"created\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("asset_catalog_http_request_duration_seconds_bucket"),
        "{text}"
    );
    // The watchdog pings while the server is healthy.
    read_until(&socket, "WATCHDOG=1").await;
    sigterm(&child);
    let stopping = read_until(&socket, "STOPPING=1").await;
    assert!(
        stopping.iter().any(|m| m.contains("STATUS=stopping")),
        "{stopping:?}"
    );
    assert!(wait(child).success());
}

#[actix_web::test]
async fn ready_only_once_s3_answers() {
    use crate::garage::{Garage, free_port};
    use std::os::unix::fs::PermissionsExt;

    let env = Env::new();
    let (s3_port, rpc_port, admin_port) = (free_port(), free_port(), free_port());
    let secret = env.dir.path().join("s3-secret");
    env.write_config(&env.s3_storage(s3_port, 0o644));
    // A secret others can read is refused, by check-config and by serve.
    let out = env.run(&["check-config"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("chmod 600"),
        "{out:?}"
    );
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    // check-config does not need the storage to be up.
    let out = env.run(&["check-config"]);
    assert!(out.status.success(), "{out:?}");

    let socket_path = env.dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).expect("bind notify socket");
    let child = env
        .command()
        .arg("serve")
        .env("NOTIFY_SOCKET", &socket_path)
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn");
    let waiting = read_until_prefix(&socket, "STATUS=waiting").await;
    assert!(
        !waiting.iter().any(|m| m.contains("READY=1")),
        "{waiting:?}"
    );
    let (status, _) = json_of(
        env.client()
            .get(env.url("/healthz"))
            .send()
            .await
            .expect("healthz"),
    )
    .await;
    assert_eq!(status, 200, "serving /healthz while waiting for storage");
    let (status, _) = json_of(
        env.client()
            .get(env.url("/readyz"))
            .send()
            .await
            .expect("readyz"),
    )
    .await;
    assert_eq!(status, 503);

    let _garage = Garage::start_on(s3_port, rpc_port, admin_port).await;
    read_until(&socket, "READY=1").await;
    upload(&env, "after-ready.txt", b"stored in garage").await;
    sigterm(&child);
    assert!(wait(child).success());
}

async fn read_until_prefix(socket: &UnixDatagram, prefix: &str) -> Vec<String> {
    let mut seen = Vec::new();
    let mut buf = vec![0u8; 4096];
    loop {
        let n = tokio::time::timeout(Duration::from_secs(60), socket.recv(&mut buf))
            .await
            .unwrap_or_else(|_| panic!("no {prefix} within 60 s; got {seen:?}"))
            .expect("recv");
        let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
        let done = msg.lines().any(|l| l.starts_with(prefix));
        seen.push(msg);
        if done {
            return seen;
        }
    }
}

#[actix_web::test]
async fn check_config_reports_every_problem() {
    let env = Env::new();
    let ok = env.run(&["check-config"]);
    assert!(ok.status.success(), "{ok:?}");
    assert!(
        String::from_utf8_lossy(&ok.stdout).starts_with("configuration OK: "),
        "{ok:?}"
    );

    std::fs::write(
        env.config(),
        "[server]\nlisten = \"127.0.0.1:1\"\nlisen = 3\n",
    )
    .expect("write");
    let bad = env.run(&["check-config"]);
    assert_eq!(bad.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(
        stderr.contains("server.toml:3:1: unknown field `lisen`"),
        "{stderr}"
    );

    let text =
        "[server]\nlisten = \"nowhere\"\nmax_upload_bytes = 0\n[storage]\npart_size_bytes = 1024\n";
    std::fs::write(env.config(), text).expect("write");
    let bad = env.run(&["check-config"]);
    assert_eq!(bad.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&bad.stderr);
    for key in [
        "server.listen:",
        "server.max_upload_bytes:",
        "storage.part_size_bytes:",
    ] {
        assert!(
            stderr.lines().any(|l| l.starts_with(key)),
            "{key} in {stderr}"
        );
    }
    let missing = Command::new(BIN)
        .env_clear()
        .args(["--config", "/nonexistent/server.toml", "check-config"])
        .output()
        .expect("run");
    assert_eq!(missing.status.code(), Some(1));
    // Environment overrides are layered over the file.
    std::fs::write(env.config(), "[server]\nlisten = \"nowhere\"\n").expect("write");
    let fixed = env
        .command()
        .arg("check-config")
        .env("ASSET_CATALOG__SERVER__LISTEN", "127.0.0.1:9")
        .output()
        .expect("run");
    assert!(fixed.status.success(), "{fixed:?}");
}

#[actix_web::test]
async fn reindex_rebuilds_a_lost_index_and_export_writes_every_asset() {
    let env = Env::new();
    let (child, _socket, _) = env.serve(&[]).await;
    upload(&env, "one.txt", b"first asset").await;
    upload(&env, "two.jpg", b"second asset").await;
    sigterm(&child);
    assert!(wait(child).success());

    remove_index(&env.state());
    let out = env.run(&["reindex"]);
    assert!(out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("reindexed 2 assets"),
        "{out:?}"
    );

    let export = env.dir.path().join("assets_index.json");
    let out = env.run(&["export-index", export.to_str().expect("utf8 path")]);
    assert!(out.status.success(), "{out:?}");
    let doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&export).expect("export file")).expect("json");
    assert_eq!(doc["asset_count"], 2);
    let names: Vec<&str> = doc["assets"]
        .as_array()
        .expect("assets")
        .iter()
        .map(|a| a["name"].as_str().expect("name"))
        .collect();
    assert_eq!(names, ["one.txt", "two.jpg"]);
    let out = env.run(&["export-index", "-"]);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("stdout json");
    assert_eq!(doc["asset_count"], 2);

    // The rebuilt index serves; tokens lived only in the lost index, so the
    // operator makes a new one (the README says so).
    let reader = env.create_token("after-reindex", &["read"]);
    let (child, _socket, _) = env.serve(&[]).await;
    let (status, json) = json_of(
        env.client_with(&reader)
            .get(env.url("/v1/assets"))
            .send()
            .await
            .expect("list"),
    )
    .await;
    assert_eq!(status, 200);
    let page: AssetPage = serde_json::from_value(json).expect("page");
    assert_eq!(page.items.len(), 2);
    sigterm(&child);
    assert!(wait(child).success());
}

fn remove_index(state: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(state.join(format!("index.sqlite3{suffix}")));
    }
}

#[actix_web::test]
async fn corrupt_index_names_reindex_and_reindex_recovers() {
    let env = Env::new();
    std::fs::create_dir_all(env.state()).expect("state");
    std::fs::write(env.state().join("index.sqlite3"), vec![0x42u8; 4096]).expect("garbage");
    let out = env.run(&["serve"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("asset-catalog-server reindex"), "{stderr}");
    let out = env.run(&["reindex"]);
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("moved the unreadable index to"), "{stdout}");
}

#[actix_web::test]
async fn generate_docs_writes_man_page_and_completions() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = Command::new(BIN)
        .env_clear()
        .args(["generate-docs", "--out"])
        .arg(dir.path())
        .output()
        .expect("run");
    assert!(out.status.success(), "{out:?}");
    for name in [
        "asset-catalog-server.1",
        "asset-catalog-server.bash",
        "_asset-catalog-server",
        "asset-catalog-server.fish",
    ] {
        let meta = std::fs::metadata(dir.path().join(name)).expect(name);
        assert!(meta.len() > 100, "{name} is too small");
    }
    let help = Command::new(BIN).arg("--help").output().expect("help");
    assert!(!String::from_utf8_lossy(&help.stdout).contains("generate-docs"));
}

/// Every server configuration the repository ships passes `check-config`.
#[actix_web::test]
async fn shipped_configs_pass_check_config() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut found = Vec::new();
    for dir in ["debian", "packaging", "systemd"] {
        collect_server_configs(&root.join(dir), &mut found);
    }
    assert!(
        !found.is_empty(),
        "no shipped server.toml found under debian/, packaging/ or systemd/"
    );
    for config in found {
        let out = Command::new(BIN)
            .env_clear()
            .arg("--config")
            .arg(&config)
            .arg("check-config")
            .output()
            .expect("run");
        assert!(out.status.success(), "{}: {out:?}", config.display());
    }
}

fn collect_server_configs(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect_server_configs(&path, out);
        } else if path.file_name().is_some_and(|n| n == "server.toml") {
            out.push(path);
        }
    }
}

#[actix_web::test]
async fn token_secrets_never_reach_the_log_and_revoke_applies_at_once() {
    let env = Env::new();
    let log_path = env.dir.path().join("server.log");
    let log = std::fs::File::create(&log_path).expect("log file");
    let (child, _socket, _) = env
        .serve_with_stderr(&[("RUST_LOG", "debug")], Stdio::from(log))
        .await;
    let uploader = env.create_token("uploader", &["upload"]);
    upload(&env, "secret-test.txt", b"secret test").await;
    let reader_sees = |token: String| {
        let client = env.client_with(&token);
        let url = env.url("/v1/assets");
        async move { client.get(url).send().await.expect("GET").status().as_u16() }
    };
    assert_eq!(
        reader_sees(uploader.clone()).await,
        403,
        "upload token cannot list"
    );
    assert_eq!(reader_sees(env.token.clone()).await, 200);
    let bad = format!("{}ff", &env.token[..env.token.len() - 2]);
    assert_eq!(reader_sees(bad.clone()).await, 401);
    // `token revoke` in another process while the server runs: the next request fails.
    let id = env.token.split('_').nth(1).expect("id").to_owned();
    let out = env.run(&["token", "revoke", &id]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(reader_sees(env.token.clone()).await, 401, "revoked at once");
    let out = env.run(&["token", "list"]);
    let listing = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        listing.contains("uploader") && listing.contains(&id),
        "{listing}"
    );
    sigterm(&child);
    assert!(wait(child).success());
    let log = std::fs::read_to_string(&log_path).expect("read log");
    assert!(
        log.contains("/v1/assets"),
        "the log has the debug request lines: {log}"
    );
    for token in [&env.token, &uploader, &bad] {
        let secret = token.rsplit('_').next().expect("secret");
        assert!(!log.contains(secret), "a token secret is in the log");
        assert!(
            !listing.contains(secret),
            "a token secret is in `token list`"
        );
    }
    assert!(
        !log.to_ascii_lowercase().contains("bearer acat"),
        "an Authorization header is in the log"
    );
}
