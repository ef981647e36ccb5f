//! Real components for tests: a private PostgreSQL 15 ([`pg::PgCluster`]),
//! HAProxy in front of N servers ([`haproxy::Haproxy`]), a 3-node Garage
//! cluster ([`garage::GarageCluster`]) and a headless Chromium for the web
//! UI ([`browser::Browser`]). Every API but the browser's is blocking std
//! code, so sync and async tests can use it alike; every component binds
//! 127.0.0.1 only, on free ports, and is stopped, its temporary directory
//! removed, when dropped. Beside them, the small helpers the server's and
//! the watcher's tests both use: a free port, hex and SHA-256, a signal to a
//! child, polling until ready.

pub mod browser;
pub mod fleet;
pub mod garage;
pub mod haproxy;
pub mod http;
pub mod pg;

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

/// A TCP port on 127.0.0.1 that was free a moment ago (the OS picked it).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("bind 127.0.0.1:0 to find a free port")
        .port()
}

/// Lower-case hex SHA-256 of `bytes`: how the API names content.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex_lower(&Sha256::digest(bytes))
}

/// Lower-case hex of raw bytes.
pub fn hex_lower(bytes: &[u8]) -> String {
    hex::encode(bytes)
}

/// Send `sig` to a child process (one that has exited is left alone).
pub fn signal(child: &Child, sig: rustix::process::Signal) {
    let _ = rustix::process::kill_process(rustix::process::Pid::from_child(child), sig);
}

/// Poll `f` every 50 ms until it returns `Some`, and return what it held;
/// panic naming `what` when `timeout` has passed first (a deadline for
/// failure, not a performance assertion). A plain condition is
/// `wait_until(what, t, || cond().then_some(()))`.
pub fn wait_until<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `$XDG_CACHE_HOME/asset-catalog`, or `~/.cache/asset-catalog`: where the
/// slow-to-make things (Garage's binary, PostgreSQL's template) are kept.
pub fn cache_dir() -> PathBuf {
    std::env::var_os("XDG_CACHE_HOME")
        .filter(|dir| !dir.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))
        .expect("HOME or XDG_CACHE_HOME must be set to find the test cache directory")
        .join("asset-catalog")
}

/// Run `command` to completion; panic with its stdout and stderr unless it
/// succeeded.
pub(crate) fn run(command: &mut Command) -> Output {
    run_or_explain(command, String::new)
}

/// Like [`run`], adding `context()` (a log, say) to the panic message.
pub(crate) fn run_or_explain(command: &mut Command, context: impl FnOnce() -> String) -> Output {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    assert!(
        output.status.success(),
        "{command:?} failed ({}):\n{}{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
        context()
    );
    output
}

/// The text of a log file for a panic message (or why there is none).
pub(crate) fn read_log(path: &std::path::Path) -> String {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| format!("<cannot read {}: {e}>", path.display()))
}
