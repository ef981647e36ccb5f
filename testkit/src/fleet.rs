//! N real `asset-catalog-server` processes on one private PostgreSQL index
//! and one object store (a shared file store, or a `[storage]` section per
//! server), each with its own state directory and port, the password in a
//! 0600 file. Servers are spawned, killed (-9) and restarted like an
//! operator's units would be; each one's log is appended to across restarts.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::pg::PgCluster;

/// The servers, their index and their store.
#[derive(Debug)]
pub struct Fleet {
    pub pg: PgCluster,
    pub dir: tempfile::TempDir,
    pub ports: Vec<u16>,
    children: Vec<Option<Child>>,
    /// An admin token made with `token create` against the shared index.
    pub token: String,
    storage: Vec<String>,
    bin: PathBuf,
}

impl Fleet {
    /// `n` servers of binary `bin` on a fresh database with one shared file
    /// store, started at once (they migrate concurrently) and ready.
    pub fn start(bin: &Path, n: usize) -> Self {
        Self::start_with(bin, n, None)
    }

    /// As [`Fleet::start`]; `storage(i)` is server `i`'s `[storage]` section.
    pub fn start_with(bin: &Path, n: usize, storage: Option<&dyn Fn(usize) -> String>) -> Self {
        let pg = PgCluster::start();
        pg.create_database("catalog");
        let dir = tempfile::tempdir().expect("tempdir");
        let objects = dir.path().join("objects");
        std::fs::create_dir_all(&objects).expect("objects");
        let shared = format!("[storage]\nurl = \"file://{}\"\n", objects.display());
        let storage = (0..n)
            .map(|i| storage.map_or_else(|| shared.clone(), |f| f(i)))
            .collect();
        let ports = (0..n).map(|_| crate::free_port()).collect();
        let mut fleet = Self {
            pg,
            dir,
            ports,
            children: (0..n).map(|_| None).collect(),
            token: String::new(),
            storage,
            bin: bin.to_path_buf(),
        };
        for i in 0..n {
            fleet.write_config(i);
        }
        for i in 0..n {
            fleet.spawn(i);
        }
        for i in 0..n {
            fleet.wait_ready(i);
        }
        fleet.token = fleet.create_token("fleet-admin", &["admin"]);
        fleet
    }

    pub fn config(&self, i: usize) -> PathBuf {
        self.dir.path().join(format!("server{i}.toml"))
    }

    pub fn objects(&self) -> PathBuf {
        self.dir.path().join("objects")
    }

    fn write_config(&self, i: usize) {
        let config = format!(
            "[server]\nlisten = \"127.0.0.1:{port}\"\nstate_dir = \"{state}\"\nshutdown_timeout_secs = 5\n\n\
             {storage}\n[index]\nurl = \"postgres://postgres@127.0.0.1:{pg}/catalog\"\npassword_file = \"{pw}\"\n\
             connect_timeout_secs = 2\n\n[log]\nlevel = \"info\"\n",
            port = self.ports[i],
            state = self.dir.path().join(format!("state{i}")).display(),
            storage = self.storage[i],
            pg = self.pg.port(),
            pw = self.pg.password_file().display(),
        );
        std::fs::write(self.config(i), config).expect("write config");
    }

    /// Start server `i` (not waiting for it).
    pub fn spawn(&mut self, i: usize) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join(format!("server{i}.log")))
            .expect("log file");
        let child = Command::new(&self.bin)
            .args(["--config", &self.config(i).display().to_string(), "serve"])
            .env_remove("NOTIFY_SOCKET")
            .env_remove("CREDENTIALS_DIRECTORY")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn server");
        self.children[i] = Some(child);
    }

    pub fn log(&self, i: usize) -> String {
        std::fs::read_to_string(self.dir.path().join(format!("server{i}.log"))).unwrap_or_default()
    }

    /// Wait until server `i` answers `/readyz` with 200.
    pub fn wait_ready(&mut self, i: usize) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(child) = self.children[i].as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                panic!("server {i} exited ({status}):\n{}", self.log(i));
            }
            let ready = crate::http::get(self.ports[i], "/readyz", &[]);
            if ready.is_some_and(|r| r.status == 200) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "server {i} not ready:\n{}",
                self.log(i)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Start server `i` again and wait until it is ready.
    pub fn restart(&mut self, i: usize) {
        self.spawn(i);
        self.wait_ready(i);
    }

    /// Is server `i` running?
    pub fn is_running(&self, i: usize) -> bool {
        self.children[i].is_some()
    }

    /// `kill -9` server `i`.
    pub fn kill9(&mut self, i: usize) {
        if let Some(mut child) = self.children[i].take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn url(&self, i: usize, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.ports[i])
    }

    /// Run the binary with server 0's config.
    pub fn run(&self, args: &[&str]) -> Output {
        Command::new(&self.bin)
            .arg("--config")
            .arg(self.config(0))
            .args(args)
            .env_remove("CREDENTIALS_DIRECTORY")
            .output()
            .expect("run the server binary")
    }

    /// `token create` against the shared index: the token text.
    pub fn create_token(&self, name: &str, scopes: &[&str]) -> String {
        let mut args = vec!["token", "create", "--name", name];
        for scope in scopes {
            args.extend(["--scope", scope]);
        }
        let out = self.run(&args);
        assert!(out.status.success(), "token create: {out:?}");
        String::from_utf8(out.stdout)
            .expect("utf8")
            .trim_end()
            .to_owned()
    }

    /// Every server's log so far, concatenated.
    pub fn logs(&self) -> String {
        (0..self.ports.len()).map(|i| self.log(i)).collect()
    }

    /// The data objects in the shared file store (no sidecars), sorted.
    pub fn data_objects(&self) -> Vec<String> {
        let mut keys: Vec<String> = std::fs::read_dir(self.objects())
            .expect("objects dir")
            .filter_map(Result::ok)
            .filter(|e| e.path().is_file())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|k| {
                let hex = k
                    .get(..64)
                    .is_some_and(|h| h.bytes().all(|b| b.is_ascii_hexdigit()));
                hex && (k.len() == 64 || k.as_bytes()[64] == b'.') && !k.contains('#')
            })
            .collect();
        keys.sort();
        keys
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        for i in 0..self.children.len() {
            self.kill9(i);
        }
    }
}
