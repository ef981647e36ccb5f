//! The real `asset-watcher` binary with a temp HOME and XDG tree, its
//! environment given explicitly (never `set_var`), a notify socket to see
//! READY/STATUS/STOPPING, and its log in a file.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use rustix::process::Signal;
use serde_json::Value;

use super::{Server, signal};

pub const BIN: &str = env!("CARGO_BIN_EXE_asset-watcher");

/// A user's home: `w/` is watched, `outside/` is not.
#[derive(Debug)]
pub struct Home {
    dir: tempfile::TempDir,
    pub watched: PathBuf,
    pub outside: PathBuf,
    env: Vec<(String, String)>,
}

impl Home {
    /// A fresh home whose watcher talks to `server` with its upload token
    /// (in a chmod-600 token file); `env` adds `ASSET_WATCHER__*` overrides.
    pub fn new(server: &Server, env: &[(&str, &str)]) -> Self {
        Self::for_url(&server.url(), &server.upload_token, env)
    }

    /// A fresh home whose watcher talks to the server (or load balancer) at
    /// `url` with `token`.
    pub fn for_url(url: &str, token: &str, env: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().expect("home");
        let root = dir.path().to_path_buf();
        let watched = root.join("w");
        let outside = root.join("outside");
        std::fs::create_dir_all(&watched).expect("watched dir");
        std::fs::create_dir_all(&outside).expect("outside dir");
        let mut vars = vec![
            ("HOME".to_owned(), root.display().to_string()),
            ("USER".to_owned(), "tester".to_owned()),
            (
                "XDG_CONFIG_HOME".to_owned(),
                root.join(".config").display().to_string(),
            ),
            (
                "XDG_STATE_HOME".to_owned(),
                root.join(".local/state").display().to_string(),
            ),
            (
                "XDG_CACHE_HOME".to_owned(),
                root.join(".cache").display().to_string(),
            ),
            ("ASSET_WATCHER_LOG".to_owned(), "info".to_owned()),
            (
                "ASSET_WATCHER__QUIET_PERIOD_MS".to_owned(),
                "200".to_owned(),
            ),
            (
                "ASSET_WATCHER__RESCAN_INTERVAL_SECS".to_owned(),
                "0".to_owned(),
            ),
        ];
        for (k, v) in env {
            vars.retain(|(key, _)| key != k);
            vars.push(((*k).to_owned(), (*v).to_owned()));
        }
        let home = Self {
            dir,
            watched,
            outside,
            env: vars,
        };
        let token_text = token;
        let token = root.join(".config/asset-watcher/token");
        std::fs::create_dir_all(token.parent().expect("config dir")).expect("config dir");
        std::fs::write(&token, format!("{token_text}\n")).expect("token file");
        std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        let token_arg = "~/.config/asset-watcher/token";
        let args = [
            "init",
            "--server",
            url,
            "--watch",
            "~/w",
            "--token-file",
            token_arg,
        ];
        let out = home.run(&args);
        assert!(
            out.status.success(),
            "init failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        home
    }

    /// Give the watcher another token (read at its next start).
    pub fn set_token(&self, token: &str) {
        let file = self.dir.path().join(".config/asset-watcher/token");
        std::fs::write(&file, format!("{token}\n")).expect("token file");
    }

    pub fn config_file(&self) -> PathBuf {
        self.dir.path().join(".config/asset-watcher/config.toml")
    }

    /// The log of every `run` started in this home so far.
    pub fn watcher_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("watcher.log")).unwrap_or_default()
    }

    pub fn state_dir(&self) -> PathBuf {
        self.dir.path().join(".local/state/asset-watcher")
    }

    /// The watcher command with exactly this home's environment.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.env_clear()
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .args(args);
        cmd
    }

    /// Run a subcommand to completion.
    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run asset-watcher")
    }

    /// `status --json`.
    pub fn status(&self) -> Value {
        let out = self.run(&["status", "--json"]);
        assert!(
            out.status.success(),
            "status: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("status JSON")
    }

    /// Start `asset-watcher run` and wait for READY=1.
    pub fn start(&self) -> Running {
        self.start_env(&[])
    }

    /// Start with extra environment variables (e.g. `WATCHDOG_USEC`).
    pub fn start_env(&self, extra: &[(&str, &str)]) -> Running {
        let mut r = self.spawn(&[], extra);
        r.wait_for_message("READY=1", Duration::from_secs(60));
        r
    }

    /// Spawn `asset-watcher run` without waiting for anything; `wrapper` is
    /// a command line the binary runs under (e.g. `setpriv ...`), `extra`
    /// adds environment variables.
    pub fn spawn(&self, wrapper: &[&str], extra: &[(&str, &str)]) -> Running {
        let sock_path = self
            .dir
            .path()
            .join(format!("notify-{}.sock", std::process::id()));
        let _ = std::fs::remove_file(&sock_path);
        let socket = UnixDatagram::bind(&sock_path).expect("notify socket");
        socket
            .set_read_timeout(Some(Duration::from_millis(200)))
            .expect("timeout");
        let log_path = self.dir.path().join("watcher.log");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .expect("log");
        let mut cmd = match wrapper.split_first() {
            Some((prog, args)) => {
                let mut c = Command::new(prog);
                c.env_clear()
                    .envs(self.env.iter().map(|(k, v)| (k, v)))
                    .args(args)
                    .arg(BIN)
                    .arg("run");
                c
            }
            None => self.command(&["run"]),
        };
        let child = cmd
            .env("NOTIFY_SOCKET", &sock_path)
            .envs(extra.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("spawn asset-watcher run");
        Running {
            child: Some(child),
            socket,
            messages: Vec::new(),
            log: log_path,
        }
    }
}

/// A running `asset-watcher run`.
#[derive(Debug)]
pub struct Running {
    child: Option<Child>,
    socket: UnixDatagram,
    pub messages: Vec<String>,
    log: PathBuf,
}

impl Running {
    /// Read notify datagrams until one contains `needle`.
    pub fn wait_for_message(&mut self, needle: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        let mut buf = vec![0u8; 4096];
        while !self.messages.iter().any(|m| m.contains(needle)) {
            assert!(
                Instant::now() < deadline,
                "no {needle} within {timeout:?}; got {:?}\nlog:\n{}",
                self.messages,
                self.log()
            );
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    panic!(
                        "watcher exited ({status}) before {needle}\nlog:\n{}",
                        self.log()
                    );
                }
            }
            if let Ok(n) = self.socket.recv(&mut buf) {
                self.messages
                    .push(String::from_utf8_lossy(&buf[..n]).into_owned());
            }
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn signal(&self, sig: Signal) {
        signal(self.child.as_ref().expect("running"), sig);
    }

    /// SIGKILL: no chance to save anything.
    pub fn kill9(mut self) {
        if let Some(mut c) = self.child.take() {
            signal(&c, Signal::KILL);
            let _ = c.wait();
        }
    }

    /// SIGTERM, expect STOPPING=1 and a clean exit.
    pub fn stop(mut self) -> ExitStatus {
        self.signal(Signal::TERM);
        self.wait_for_message("STOPPING=1", Duration::from_secs(30));
        let mut c = self.child.take().expect("running");
        c.wait().expect("wait")
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
