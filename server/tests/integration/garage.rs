//! A real S3 server for the tests: Garage, single node, on free loopback
//! ports, in a temporary directory, killed when dropped. The binary comes
//! from `$GARAGE_BIN` or the cache `scripts/install-garage.sh` fills; when it
//! is missing the S3 tests fail and say how to install it.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use object_store::aws::AmazonS3Builder;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt};

pub const REGION: &str = "garage";
pub const BUCKET: &str = "assets-test";
pub const ACCESS_KEY: &str = "GKtestaccesskey0123456789";
pub const SECRET_KEY: &str = "testsecretkey-0123456789abcdef0123456789abcdef";
pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789";

/// One running Garage.
#[derive(Debug)]
pub struct Garage {
    child: Child,
    pub dir: tempfile::TempDir,
    pub s3_port: u16,
    pub admin_port: u16,
}

/// Where the garage binary is expected.
pub fn binary() -> PathBuf {
    if let Some(bin) = std::env::var_os("GARAGE_BIN") {
        return PathBuf::from(bin);
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .expect("HOME or XDG_CACHE_HOME must be set to find garage");
    cache.join("asset-catalog/garage-2.5.0/bin/garage")
}

pub use testkit::free_port;

impl Garage {
    /// Start Garage on free ports and wait until it serves the test bucket.
    pub async fn start() -> Self {
        Self::start_on(free_port(), free_port(), free_port()).await
    }

    /// Start Garage on the given S3, RPC and admin ports.
    pub async fn start_on(s3_port: u16, rpc_port: u16, admin_port: u16) -> Self {
        let bin = binary();
        assert!(
            bin.exists(),
            "the S3 tests need Garage at {} (or $GARAGE_BIN); run scripts/install-garage.sh",
            bin.display()
        );
        let dir = tempfile::tempdir().expect("garage tempdir");
        let secret = hex::encode(rand::random::<[u8; 32]>());
        let config = format!(
            r#"metadata_dir = "{d}/meta"
data_dir = "{d}/data"
db_engine = "lmdb"
replication_factor = 1
rpc_bind_addr = "127.0.0.1:{rpc_port}"
rpc_public_addr = "127.0.0.1:{rpc_port}"
rpc_secret = "{secret}"

[s3_api]
s3_region = "{REGION}"
api_bind_addr = "127.0.0.1:{s3_port}"
root_domain = ".s3.garage.localhost"

[admin]
api_bind_addr = "127.0.0.1:{admin_port}"
admin_token = "{ADMIN_TOKEN}"
"#,
            d = dir.path().display()
        );
        std::fs::write(dir.path().join("garage.toml"), config).expect("write garage config");
        let child = spawn(dir.path());
        let garage = Self {
            child,
            dir,
            s3_port,
            admin_port,
        };
        garage.wait_until_serving().await;
        garage
    }

    /// Start again on the same ports and data after [`Garage::kill`].
    pub async fn restart(&mut self) {
        self.kill();
        self.child = spawn(self.dir.path());
        self.wait_until_serving().await;
    }

    /// `garage bucket cleanup-incomplete-uploads`: what an operator runs (or
    /// a lifecycle rule does) about multipart uploads a crash left behind.
    pub fn cleanup_incomplete_uploads(&self, older_than: &str) {
        let out = Command::new(binary())
            .arg("-c")
            .arg(self.dir.path().join("garage.toml"))
            .args([
                "bucket",
                "cleanup-incomplete-uploads",
                "--older-than",
                older_than,
                BUCKET,
            ])
            .output()
            .expect("run garage bucket cleanup-incomplete-uploads");
        assert!(out.status.success(), "{out:?}");
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.s3_port)
    }

    /// A client of the test bucket (for inspecting what the server stored).
    pub fn store(&self) -> Arc<dyn ObjectStore> {
        let store = AmazonS3Builder::new()
            .with_endpoint(self.endpoint())
            .with_allow_http(true)
            .with_virtual_hosted_style_request(false)
            .with_region(REGION)
            .with_bucket_name(BUCKET)
            .with_access_key_id(ACCESS_KEY)
            .with_secret_access_key(SECRET_KEY)
            .build()
            .expect("s3 client");
        Arc::new(store)
    }

    /// Multipart uploads started in the test bucket and neither completed nor
    /// aborted, as Garage's admin API counts them.
    pub async fn unfinished_multipart_uploads(&self) -> i64 {
        let url = format!(
            "http://127.0.0.1:{}/v2/GetBucketInfo?globalAlias={BUCKET}",
            self.admin_port
        );
        let mut res = awc::Client::new()
            .get(url)
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .expect("GetBucketInfo");
        let info: serde_json::Value = res.json().await.expect("bucket info JSON");
        info["unfinishedMultipartUploads"]
            .as_i64()
            .unwrap_or_else(|| panic!("no unfinishedMultipartUploads in {info}"))
    }

    /// Poll (Garage updates its counters asynchronously) until the count is `want`.
    pub async fn wait_unfinished_multipart_uploads(&self, want: i64) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let n = self.unfinished_multipart_uploads().await;
            if n == want {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "garage still counts {n} unfinished multipart uploads, want {want}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn wait_until_serving(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let store = self.store();
        loop {
            let health = health_ok(self.admin_port).await;
            if health {
                match store.head(&ObjectPath::from("startup-probe")).await {
                    Err(object_store::Error::NotFound { .. }) => return,
                    Ok(_) => return,
                    Err(_) => {}
                }
            }
            if Instant::now() > deadline {
                let log =
                    std::fs::read_to_string(self.dir.path().join("garage.log")).unwrap_or_default();
                panic!("garage did not become ready within 30 s; its log:\n{log}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Run `garage server` with the config in `dir`, logging to `dir/garage.log`.
fn spawn(dir: &std::path::Path) -> Child {
    let bin = binary();
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("garage.log"))
        .expect("garage log");
    Command::new(&bin)
        .arg("-c")
        .arg(dir.join("garage.toml"))
        .args(["server", "--single-node", "--default-bucket"])
        .env("GARAGE_DEFAULT_ACCESS_KEY", ACCESS_KEY)
        .env("GARAGE_DEFAULT_SECRET_KEY", SECRET_KEY)
        .env("GARAGE_DEFAULT_BUCKET", BUCKET)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log fd"))
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()))
}

async fn health_ok(port: u16) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Ok(mut stream) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await else {
        return false;
    };
    let request = "GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
    if stream.write_all(request.as_bytes()).await.is_err() {
        return false;
    }
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).await.is_ok() && &head == b"HTTP/1.1 200"
}

impl Garage {
    /// Stop the server now (simulates an outage).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Garage {
    fn drop(&mut self) {
        self.kill();
    }
}
