//! A 3-node Garage cluster (replication factor 3) on loopback, for tests of
//! S3 outages: every node's S3 port serves the whole cluster, and with one
//! node stopped the other two keep reading and writing (quorum 2 of 3).
//! The cluster has one bucket and one key allowed on it. The binary comes
//! from `$GARAGE_BIN` or the cache `scripts/install-garage.sh` fills. Dropping
//! the cluster kills every node and removes its directory.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStoreExt, PutPayload};
use tempfile::TempDir;

/// The S3 region every node answers for.
pub const REGION: &str = "garage";
const NODES: usize = 3;
const BUCKET: &str = "testkit-bucket";
const ADMIN_TOKEN: &str = "testkit-garage-admin-token-0123456789";
const TIMEOUT: Duration = Duration::from_secs(30);

/// One node: its config and ports, and its process while it runs.
#[derive(Debug)]
struct Node {
    config: PathBuf,
    log: PathBuf,
    s3_port: u16,
    admin_port: u16,
    /// `ID@127.0.0.1:RPC_PORT`, known once the node ran.
    id: String,
    child: Option<Child>,
}

/// Three running Garage nodes forming one cluster.
#[derive(Debug)]
pub struct GarageCluster {
    nodes: Vec<Node>,
    access_key: String,
    secret_key: String,
    /// Removed after the nodes are killed (fields drop after `Drop::drop`).
    _dir: TempDir,
}

/// Where the garage binary is expected: `$GARAGE_BIN`, else the cache.
pub fn binary() -> PathBuf {
    std::env::var_os("GARAGE_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::cache_dir().join("garage-2.5.0/bin/garage"))
}

impl GarageCluster {
    /// Start three nodes, connect them, apply a layout, create the bucket and
    /// the key; returns once a write and a read through node 0 work.
    pub fn start() -> Self {
        let bin = binary();
        assert!(
            bin.exists(),
            "the Garage cluster needs Garage at {} (or $GARAGE_BIN): run scripts/install-garage.sh",
            bin.display()
        );
        let dir = tempfile::Builder::new()
            .prefix("testkit-garage-")
            .tempdir()
            .expect("create a temporary directory for Garage");
        let rpc_secret = hex::encode(rand::random::<[u8; 32]>());
        let nodes = (0..NODES)
            .map(|i| write_node_config(dir.path(), i, &rpc_secret))
            .collect();
        let mut cluster = Self {
            nodes,
            access_key: String::new(),
            secret_key: String::new(),
            _dir: dir,
        };
        for i in 0..NODES {
            cluster.spawn(i);
        }
        cluster.form();
        cluster.wait_healthy();
        cluster.write_and_read(0, 0).unwrap_or_else(|e| {
            panic!("the new Garage cluster cannot write and read through node 0: {e}")
        });
        cluster
    }

    /// `http://127.0.0.1:S3_PORT` of node `i`.
    pub fn endpoint(&self, i: usize) -> String {
        format!("http://127.0.0.1:{}", self.nodes[i].s3_port)
    }

    pub fn bucket(&self) -> &str {
        BUCKET
    }

    pub fn region(&self) -> &str {
        REGION
    }

    pub fn access_key(&self) -> &str {
        &self.access_key
    }

    pub fn secret_key(&self) -> &str {
        &self.secret_key
    }

    pub fn nodes(&self) -> usize {
        self.nodes.len()
    }

    /// An object_store client of the bucket through node `i`.
    pub fn store(&self, i: usize) -> AmazonS3 {
        AmazonS3Builder::new()
            .with_endpoint(self.endpoint(i))
            .with_allow_http(true)
            .with_virtual_hosted_style_request(false)
            .with_region(REGION)
            .with_bucket_name(BUCKET)
            .with_access_key_id(&self.access_key)
            .with_secret_access_key(&self.secret_key)
            .build()
            .expect("build an S3 client for Garage")
    }

    /// Put a fresh object through node `write_via`, read it back through
    /// node `read_via` and delete it. Blocking (its own runtime on its own
    /// thread, so it works inside async tests too).
    pub fn write_and_read(&self, write_via: usize, read_via: usize) -> Result<(), String> {
        let writer = self.store(write_via);
        let reader = self.store(read_via);
        let path = ObjectPath::from(format!(
            "testkit-probe/{}",
            hex::encode(rand::random::<[u8; 8]>())
        ));
        let body = format!("written through node {write_via}");
        let check = async move {
            writer
                .put(&path, PutPayload::from(body.clone().into_bytes()))
                .await
                .map_err(|e| format!("put through node {write_via}: {e}"))?;
            let got = reader
                .get(&path)
                .await
                .map_err(|e| format!("get through node {read_via}: {e}"))?
                .bytes()
                .await
                .map_err(|e| format!("read body through node {read_via}: {e}"))?;
            if got != body.as_bytes() {
                return Err(format!(
                    "read {got:?} through node {read_via}, wrote {body:?}"
                ));
            }
            writer
                .delete(&path)
                .await
                .map_err(|e| format!("delete through node {write_via}: {e}"))
        };
        std::thread::scope(|scope| {
            scope
                .spawn(move || {
                    tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .expect("build a tokio runtime")
                        .block_on(check)
                })
                .join()
                .expect("the S3 check thread panicked")
        })
    }

    /// Kill node `i` (SIGKILL); its data stays for [`GarageCluster::start_node`].
    pub fn stop_node(&mut self, i: usize) {
        if let Some(mut child) = self.nodes[i].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Start node `i` again with the same config and data; returns when every
    /// running node sees all of them connected again.
    pub fn start_node(&mut self, i: usize) {
        assert!(self.nodes[i].child.is_none(), "Garage node {i} is running");
        self.spawn(i);
        // Its peers retry a lost node only after a backoff: call it back
        // from each of them now.
        let id = self.nodes[i].id.clone();
        for peer in (0..NODES).filter(|&n| n != i && self.nodes[n].child.is_some()) {
            self.garage_retry(peer, &["node", "connect", &id]);
        }
        self.wait_healthy();
    }

    fn spawn(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&node.log)
            .expect("open the Garage node's log");
        let child = Command::new(binary())
            .arg("-c")
            .arg(&node.config)
            .arg("server")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("duplicate the log file"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary().display()));
        node.child = Some(child);
    }

    /// Connect the nodes, give each a role, create the bucket and the key.
    fn form(&mut self) {
        for i in 0..NODES {
            let id = self.garage_retry(i, &["node", "id", "-q"]);
            self.nodes[i].id = id.trim().to_owned();
        }
        let ids: Vec<String> = self.nodes.iter().map(|node| node.id.clone()).collect();
        for id in &ids[1..] {
            self.garage_retry(0, &["node", "connect", id]);
        }
        let mut assign = vec!["layout", "assign", "-z", "dc1", "-c", "1G"];
        assign.extend(ids.iter().map(|id| id.split('@').next().unwrap_or(id)));
        self.garage_retry(0, &assign);
        self.garage_retry(0, &["layout", "apply", "--version", "1"]);
        self.garage_retry(0, &["bucket", "create", BUCKET]);
        let key = self.garage_retry(0, &["key", "create", "testkit-key"]);
        self.access_key = field(&key, "Key ID:");
        self.secret_key = field(&key, "Secret key:");
        let key_id = self.access_key.clone();
        self.garage_retry(
            0,
            &[
                "bucket", "allow", BUCKET, "--read", "--write", "--owner", "--key", &key_id,
            ],
        );
    }

    /// Run the garage CLI against node `i` until it succeeds (the node may be
    /// starting, the layout spreading); return its stdout.
    fn garage_retry(&self, i: usize, args: &[&str]) -> String {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let output = Command::new(binary())
                .arg("-c")
                .arg(&self.nodes[i].config)
                .args(args)
                .env("RUST_LOG", "warn")
                .output()
                .unwrap_or_else(|e| panic!("cannot run {}: {e}", binary().display()));
            if output.status.success() {
                return String::from_utf8_lossy(&output.stdout).into_owned();
            }
            assert!(
                Instant::now() < deadline,
                "`garage {}` on node {i} kept failing for {TIMEOUT:?}: {}\nthe node's log:\n{}",
                args.join(" "),
                String::from_utf8_lossy(&output.stderr),
                crate::read_log(&self.nodes[i].log)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Wait until every running node reports all storage nodes up and every
    /// partition with a quorum.
    fn wait_healthy(&self) {
        let running: Vec<usize> = (0..NODES)
            .filter(|&i| self.nodes[i].child.is_some())
            .collect();
        let want_up = running.len() as u64;
        let deadline = Instant::now() + TIMEOUT;
        for &i in &running {
            loop {
                let health = cluster_health(self.nodes[i].admin_port);
                let up = health.as_ref().and_then(|h| h["storageNodesUp"].as_u64());
                let quorum = health.as_ref().and_then(|h| {
                    Some(h["partitionsQuorum"].as_u64()? == h["partitions"].as_u64()?)
                });
                if up == Some(want_up) && quorum == Some(true) {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "Garage node {i} did not see {want_up} nodes up within {TIMEOUT:?} (health: {health:?}); its log:\n{}",
                    crate::read_log(&self.nodes[i].log)
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

impl Drop for GarageCluster {
    fn drop(&mut self) {
        for i in 0..self.nodes.len() {
            self.stop_node(i);
        }
    }
}

/// Write node `i`'s config under `dir` on free ports.
fn write_node_config(dir: &std::path::Path, i: usize, rpc_secret: &str) -> Node {
    let (rpc_port, s3_port, admin_port) =
        (crate::free_port(), crate::free_port(), crate::free_port());
    let d = dir.display();
    let config = format!(
        r#"metadata_dir = "{d}/meta{i}"
data_dir = "{d}/data{i}"
db_engine = "lmdb"
replication_factor = {NODES}
rpc_bind_addr = "127.0.0.1:{rpc_port}"
rpc_public_addr = "127.0.0.1:{rpc_port}"
rpc_secret = "{rpc_secret}"

[s3_api]
s3_region = "{REGION}"
api_bind_addr = "127.0.0.1:{s3_port}"

[admin]
api_bind_addr = "127.0.0.1:{admin_port}"
admin_token = "{ADMIN_TOKEN}"
"#
    );
    let path = dir.join(format!("garage{i}.toml"));
    std::fs::write(&path, config).expect("write a Garage node's config");
    Node {
        config: path,
        log: dir.join(format!("garage{i}.log")),
        s3_port,
        admin_port,
        id: String::new(),
        child: None,
    }
}

/// The admin API's `GetClusterHealth` answer, when the node gives one.
fn cluster_health(admin_port: u16) -> Option<serde_json::Value> {
    let auth = format!("Authorization: Bearer {ADMIN_TOKEN}");
    let response = crate::http::get(admin_port, "/v2/GetClusterHealth", &[&auth])?;
    (response.status == 200)
        .then(|| serde_json::from_str(&response.body).ok())
        .flatten()
}

/// The value after `label` on its line of the CLI's output.
fn field(output: &str, label: &str) -> String {
    output
        .lines()
        .find_map(|line| line.trim().strip_prefix(label))
        .map(|value| value.trim().to_owned())
        .unwrap_or_else(|| panic!("no {label:?} in garage's output:\n{output}"))
}
