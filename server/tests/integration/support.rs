//! Test support: the real server in-process on `127.0.0.1:0` over one of the
//! three backends (memory, file, Garage S3), a second handle on the same
//! bucket to inspect what was stored, an awc client, and raw-socket requests
//! for the cases a well-behaved client cannot produce.

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;

use asset_catalog_proto::{ErrorBody, ErrorCode, HEADER_CLIENT, HEADER_NAME, HEADER_PATH};
use asset_catalog_server::Config;
use asset_catalog_server::auth::{Scope, Scopes};
use asset_catalog_server::index::TokenLimits;
use asset_catalog_server::storage::{Backend, Storage};
use asset_catalog_server::token_admin;
use bytes::Bytes;
use futures_util::TryStreamExt;
use object_store::ObjectStore;
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::garage::{self, Garage};

/// Which storage the server under test uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Memory,
    File,
    S3,
}

/// A running in-process server.
pub struct TestServer {
    pub addr: SocketAddr,
    _config: Config,
    /// Independent handle on the server's bucket.
    pub store: Arc<dyn ObjectStore>,
    /// The storage as the server's library sees it (for admin functions).
    pub storage: Storage,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<actix_web::rt::task::JoinHandle<Result<(), asset_catalog_server::ServeError>>>,
    _state: tempfile::TempDir,
    pub garage: Option<Garage>,
    /// An `admin` token created through the library before the server started.
    pub token: String,
}

pub use testkit::sha256_hex;

/// A Config for `kind` under `state`, plus the inspection store.
async fn backend(
    kind: Kind,
    state: &std::path::Path,
) -> (Config, Arc<dyn ObjectStore>, Option<Garage>) {
    let mut config = Config::for_state_dir(state);
    config.server.listen = "127.0.0.1:0".into();
    match kind {
        Kind::Memory => {
            config.storage.url = Some("memory://".into());
            (config, Arc::new(InMemory::new()), None)
        }
        Kind::File => {
            let dir = state.join("objects");
            std::fs::create_dir_all(&dir).expect("objects dir");
            config.storage.url = Some(format!("file://{}", dir.display()));
            let store = LocalFileSystem::new_with_prefix(&dir).expect("local store");
            (config, Arc::new(store), None)
        }
        Kind::S3 => {
            let garage = Garage::start().await;
            let secret = state.join("s3-secret");
            std::fs::write(&secret, garage::SECRET_KEY).expect("secret");
            std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600))
                .expect("chmod");
            config.storage.url = Some(format!("s3://{}", garage::BUCKET));
            config.storage.endpoint = Some(garage.endpoint());
            config.storage.region = Some(garage::REGION.into());
            config.storage.allow_http = true;
            config.storage.access_key_id = Some(garage::ACCESS_KEY.into());
            config.storage.secret_access_key_file = Some(secret);
            let store = garage.store();
            (config, store, Some(garage))
        }
    }
}

impl TestServer {
    pub async fn start(kind: Kind) -> Self {
        Self::start_with(kind, |_| {}).await
    }

    /// Start with a configuration tweak (limits, part size, …).
    pub async fn start_with(kind: Kind, tweak: impl FnOnce(&mut Config)) -> Self {
        let mut server = Self::start_unready(kind, tweak).await;
        server.wait_ready().await;
        server
    }

    /// Start without waiting for `/readyz` (broken storage on purpose).
    pub async fn start_unready(kind: Kind, tweak: impl FnOnce(&mut Config)) -> Self {
        let state = tempfile::tempdir().expect("state dir");
        let (mut config, store, garage) = backend(kind, state.path()).await;
        tweak(&mut config);
        let storage = match kind {
            Kind::Memory => Storage::from_store(
                Arc::clone(&store),
                Backend::Memory,
                config.storage.part_size_bytes,
            ),
            _ => Storage::open(&config).expect("open storage"),
        };
        let admin = Scopes::new(vec![Scope::Admin]);
        let token = token_admin::create(&config, "test-admin", &admin, &TokenLimits::default())
            .await
            .expect("create admin token")
            .text;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let shutdown = async move {
            let _ = stopped.await;
        };
        let task = actix_web::rt::spawn(asset_catalog_server::run_with_storage(
            config.clone(),
            storage.clone(),
            listener,
            shutdown,
        ));
        let server = Self {
            addr,
            _config: config,
            store,
            storage,
            stop: Some(stop),
            task: Some(task),
            _state: state,
            garage,
            token,
        };
        // `/healthz` answers as soon as the listener serves.
        let client = client();
        for _ in 0..400 {
            if client.get(server.url("/healthz")).send().await.is_ok() {
                return server;
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        panic!("server on {} does not answer /healthz", server.addr);
    }

    async fn wait_ready(&mut self) {
        let client = client();
        let mut last = serde_json::Value::Null;
        for _ in 0..400 {
            if self.task.as_ref().is_some_and(|t| t.is_finished()) {
                let task = self.task.take().expect("task");
                panic!("server stopped during startup: {:?}", task.await);
            }
            if let Ok(res) = client.get(self.url("/readyz")).send().await {
                let (status, json) = json_of(res).await;
                if status == 200 {
                    return;
                }
                last = json;
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        panic!("server on {} did not become ready: {last}", self.addr);
    }

    /// `GET /readyz` until it answers `want` (its answer is cached for about
    /// a second, so a change of storage shows within two), or the last answer.
    pub async fn readyz_settled(&self, want: u16) -> (u16, serde_json::Value) {
        let mut last = self.get_json("/readyz").await;
        for _ in 0..30 {
            if last.0 == want {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            last = self.get_json("/readyz").await;
        }
        last
    }

    /// The `/metrics` text (read with the admin token).
    pub async fn metrics_text(&self) -> String {
        let mut res = self
            .client()
            .get(self.url("/metrics"))
            .send()
            .await
            .expect("metrics");
        let body = res.body().limit(16 << 20).await.expect("metrics body");
        String::from_utf8_lossy(&body).into_owned()
    }

    /// The value of one series (`name{labels}`), 0 when absent.
    pub async fn metric(&self, series: &str) -> u64 {
        self.metrics_text()
            .await
            .lines()
            .find_map(|l| {
                l.strip_prefix(series)?
                    .strip_prefix(' ')?
                    .parse::<f64>()
                    .ok()
            })
            .map_or(0, |v| v as u64)
    }

    /// An awc client that sends the admin token.
    pub fn client(&self) -> awc::Client {
        self.client_with(&self.token)
    }

    /// An awc client that sends `token`.
    pub fn client_with(&self, token: &str) -> awc::Client {
        awc::Client::builder()
            .disable_timeout()
            .add_default_header((awc::http::header::AUTHORIZATION, format!("Bearer {token}")))
            .finish()
    }

    /// The index directly (to create and revoke tokens).
    pub fn config(&self) -> &Config {
        &self._config
    }

    /// `Authorization` header line for raw requests.
    pub fn auth_line(&self) -> String {
        format!("Authorization: Bearer {}\r\n", self.token)
    }

    /// [`raw_exchange`] with the admin token inserted after the request line.
    pub async fn raw_exchange(&self, head: &str, body: &[u8]) -> (u16, serde_json::Value) {
        let (line, rest) = head.split_once("\r\n").expect("request line");
        let head = format!("{line}\r\n{}{rest}", self.auth_line());
        raw_exchange(self.addr, &head, body).await
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Graceful stop; returns what `run` returned.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.expect("server task").expect("server result");
        }
    }

    /// Every key in the bucket, sorted.
    /// The bucket keys one stored asset occupies: its content object, plus
    /// its sidecar where objects cannot carry the description themselves.
    pub fn keys_of(&self, data_key: &str) -> Vec<String> {
        let mut keys = vec![data_key.to_owned()];
        if !self.storage.keeps_attributes() {
            let sha = &data_key[..64.min(data_key.len())];
            keys.push(format!("meta/{sha}.json"));
        }
        keys
    }

    pub async fn keys(&self) -> Vec<String> {
        list_keys(self.store.as_ref()).await
    }

    /// Every file under the file store's directory, staging files included
    /// (object_store's listing hides those); empty for other backends.
    pub fn files_on_disk(&self) -> Vec<String> {
        fn walk(dir: &std::path::Path, out: &mut Vec<String>) {
            for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    walk(&path, out);
                } else {
                    out.push(path.display().to_string());
                }
            }
        }
        let mut out = Vec::new();
        if let Backend::File(dir) = self.storage.backend() {
            walk(dir, &mut out);
        }
        out
    }

    /// Nothing at all in the bucket, not even staging files.
    pub async fn assert_empty(&self) {
        assert!(
            self.keys().await.is_empty(),
            "bucket: {:?}",
            self.keys().await
        );
        assert!(
            self.files_on_disk().is_empty(),
            "disk: {:?}",
            self.files_on_disk()
        );
    }

    /// PUT `body` as `name` (client `test-host`), returning status and JSON.
    pub async fn put(
        &self,
        sha: &str,
        name: &str,
        body: impl Into<Bytes>,
    ) -> (u16, serde_json::Value) {
        let res = self
            .client()
            .put(self.url(&format!("/v1/assets/{sha}")))
            .insert_header((HEADER_NAME, asset_catalog_proto::encode_header_text(name)))
            .insert_header((
                HEADER_PATH,
                asset_catalog_proto::encode_header_text(&format!("dir/{name}")),
            ))
            .insert_header((HEADER_CLIENT, "test-host"))
            .send_body(body.into())
            .await
            .expect("PUT");
        json_of(res).await
    }

    /// PUT with the right hash.
    pub async fn upload(&self, name: &str, body: &[u8]) -> serde_json::Value {
        let (status, json) = self
            .put(&sha256_hex(body), name, Bytes::copy_from_slice(body))
            .await;
        assert!(
            status == 201 || status == 200,
            "upload {name}: {status} {json}"
        );
        json
    }

    /// Another token of these scopes (`upload`, `read`, `admin`): its text.
    pub async fn create_token_with(&self, name: &str, scopes: &[&str]) -> String {
        let scopes = scopes.iter().map(|s| s.parse().expect("scope")).collect();
        token_admin::create(
            &self._config,
            name,
            &Scopes::new(scopes),
            &TokenLimits::default(),
        )
        .await
        .expect("create token")
        .text
    }

    /// No resumable upload is staged in the bucket (ended sessions leave nothing).
    pub async fn assert_no_staging(&self) {
        let staged: Vec<String> = self
            .keys()
            .await
            .into_iter()
            .filter(|k| k.starts_with("uploads/"))
            .collect();
        assert!(staged.is_empty(), "staged uploads left behind: {staged:?}");
    }

    /// `DELETE /v1/assets/{sha}` with the admin token: status and JSON (Null for 204).
    pub async fn delete(&self, sha: &str) -> (u16, serde_json::Value) {
        let res = self
            .client()
            .delete(self.url(&format!("/v1/assets/{sha}")))
            .send()
            .await
            .expect("DELETE");
        json_of(res).await
    }

    pub async fn get_json(&self, path: &str) -> (u16, serde_json::Value) {
        let res = self.client().get(self.url(path)).send().await.expect("GET");
        json_of(res).await
    }
}

/// Every key a listing of `store` shows, sorted.
pub async fn list_keys(store: &dyn ObjectStore) -> Vec<String> {
    let mut keys: Vec<String> = store
        .list(None)
        .map_ok(|m| m.location.to_string())
        .try_collect()
        .await
        .expect("list bucket");
    keys.sort();
    keys
}

pub fn client() -> awc::Client {
    awc::Client::builder().disable_timeout().finish()
}

pub async fn json_of<S>(mut res: awc::ClientResponse<S>) -> (u16, serde_json::Value)
where
    S: futures_util::Stream<Item = Result<Bytes, awc::error::PayloadError>> + Unpin,
{
    let status = res.status().as_u16();
    let body = res.body().limit(64 * 1024 * 1024).await.expect("body");
    let json = if body.is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::from_slice(&body)
            .unwrap_or_else(|e| panic!("status {status}: body is not JSON ({e}): {body:?}"))
    };
    (status, json)
}

/// Assert an error response: status and stable code.
pub fn assert_error(status: u16, json: &serde_json::Value, want_status: u16, want: ErrorCode) {
    let body: ErrorBody = serde_json::from_value(json.clone())
        .unwrap_or_else(|e| panic!("not an error body ({e}): {json}"));
    assert_eq!((status, body.code), (want_status, want), "{json}");
    assert!(!body.message.is_empty());
}

/// Send raw bytes, optionally half-close, and read the whole response.
/// Returns (status, body as JSON or Null).
pub async fn raw_exchange(addr: SocketAddr, head: &str, body: &[u8]) -> (u16, serde_json::Value) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream.write_all(head.as_bytes()).await.expect("write head");
    // The server may answer (and stop reading) before the body is all sent.
    let _ = stream.write_all(body).await;
    let _ = stream.shutdown().await;
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response).await;
    parse_response(&response)
}

pub fn parse_response(raw: &[u8]) -> (u16, serde_json::Value) {
    let text = String::from_utf8_lossy(raw);
    let status = text
        .get(9..12)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP status in {text:?}"));
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b)
        .unwrap_or_default();
    let json = serde_json::from_str(body.trim()).unwrap_or(serde_json::Value::Null);
    (status, json)
}

/// Deterministic pseudo-random bytes: chunk `i` of a large body.
pub fn chunk(i: u64, len: usize) -> Bytes {
    let mut x = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    Bytes::from(out)
}
