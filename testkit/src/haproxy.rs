//! HAProxy in front of N HTTP servers on 127.0.0.1, the way
//! `packaging/examples/haproxy.cfg` shows operators: round robin, `/readyz`
//! health checks, retries of failed connections on another server, request
//! bodies streamed. The child runs in the foreground (`-db`) and is killed,
//! its directory removed, when dropped.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

const MISSING: &str =
    "HAProxy is missing: run `apt-get install -y haproxy` (scripts/test.sh installs it)";
const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// One running HAProxy.
#[derive(Debug)]
pub struct Haproxy {
    child: Child,
    dir: TempDir,
    port: u16,
}

impl Haproxy {
    /// Start HAProxy on a free port in front of the servers on
    /// 127.0.0.1:`backends`; returns when its frontend accepts connections.
    pub fn start(backends: &[u16]) -> Self {
        assert!(!backends.is_empty(), "HAProxy needs at least one backend");
        let binary = find_haproxy().expect(MISSING);
        let dir = tempfile::Builder::new()
            .prefix("testkit-haproxy-")
            .tempdir()
            .expect("create a temporary directory for HAProxy");
        let port = crate::free_port();
        let config = dir.path().join("haproxy.cfg");
        std::fs::write(&config, config_text(port, backends)).expect("write haproxy.cfg");
        let log =
            std::fs::File::create(dir.path().join("haproxy.log")).expect("create haproxy.log");
        let child = Command::new(&binary)
            .arg("-f")
            .arg(&config)
            .arg("-db")
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("duplicate the log file"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
        let mut haproxy = Self { child, dir, port };
        haproxy.wait_ready();
        haproxy
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// HAProxy's output so far (warnings, errors).
    pub fn log(&self) -> String {
        crate::read_log(&self.dir.path().join("haproxy.log"))
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + READY_TIMEOUT;
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "HAProxy exited ({status}) at start; its output:\n{}",
                    self.log()
                );
            }
            assert!(
                Instant::now() < deadline,
                "HAProxy did not accept connections on 127.0.0.1:{} within {READY_TIMEOUT:?}; its output:\n{}",
                self.port,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `haproxy` on the PATH, or in /usr/sbin (not on a user's PATH on Debian).
fn find_haproxy() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin")])
        .map(|dir| dir.join("haproxy"))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}

/// The configuration: packaging/examples/haproxy.cfg without the comments,
/// on loopback.
fn config_text(port: u16, backends: &[u16]) -> String {
    let mut config = format!(
        "defaults
    mode http
    timeout connect 2s
    timeout client 120s
    timeout server 120s
    retries 3
    retry-on conn-failure empty-response
    option redispatch

frontend catalog
    bind 127.0.0.1:{port}
    default_backend catalog_servers

backend catalog_servers
    balance roundrobin
    option httpchk GET /readyz
    http-check expect status 200
    no option http-buffer-request
"
    );
    for (i, backend) in backends.iter().enumerate() {
        config.push_str(&format!(
            "    server s{} 127.0.0.1:{backend} check inter 500ms fall 2 rise 2\n",
            i + 1
        ));
    }
    config
}
