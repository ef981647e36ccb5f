//! Security, end to end. The real watcher against the real server over native TLS: an rcgen CA and
//! a certificate for localhost, the server binary with `tls_cert_file` /
//! `tls_key_file`, and `asset-watcher scan` with `ca_file` (uploads, checked
//! in the server's own index) and without it (refused: unknown issuer).
//! Also: a config file holding a token must be private, and plain http to a
//! non-loopback server needs `allow_plain_http`.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use crate::support::free_port;
use crate::support::server::server_bin;
use crate::support::wait_until;

const BIN: &str = env!("CARGO_BIN_EXE_asset-watcher");

fn private(path: &Path, text: &str) {
    std::fs::write(path, text).expect("write");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
}

/// CA, server certificate and key under `dir`.
fn issue(dir: &Path) {
    let ca_key = rcgen::KeyPair::generate().expect("ca key");
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("ca params");
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).expect("ca");
    let key = rcgen::KeyPair::generate().expect("key");
    let cert = rcgen::CertificateParams::new(vec!["localhost".into()])
        .expect("params")
        .signed_by(&key, &ca, &ca_key)
        .expect("sign");
    std::fs::write(dir.join("ca.pem"), ca.pem()).expect("ca");
    std::fs::write(dir.join("cert.pem"), cert.pem()).expect("cert");
    private(&dir.join("key.pem"), &key.serialize_pem());
}

fn server(dir: &Path, args: &[&str]) -> Output {
    Command::new(server_bin())
        .env_clear()
        .arg("--config")
        .arg(dir.join("server.toml"))
        .args(args)
        .output()
        .expect("asset-catalog-server")
}

fn watcher(home: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .env_clear()
        .env("HOME", home)
        .env("USER", "tester")
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .env("XDG_STATE_HOME", home.join(".local/state"))
        .env("XDG_CACHE_HOME", home.join(".cache"))
        .args(args)
        .output()
        .expect("asset-watcher")
}

fn write_watcher_config(home: &Path, server: &str, extra: &str) {
    let config = home.join(".config/asset-watcher");
    std::fs::create_dir_all(&config).expect("config dir");
    std::fs::create_dir_all(home.join("w")).expect("watched");
    private(
        &config.join("config.toml"),
        &format!(
            "server = \"{server}\"\nwatch = [\"~/w\"]\ntoken_file = \"~/token\"\nrescan_interval_secs = 0\n{extra}"
        ),
    );
}

#[test]
fn scan_uploads_over_tls_with_ca_file_and_refuses_an_unknown_issuer() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    issue(d);
    let port = free_port();
    std::fs::write(
        d.join("server.toml"),
        format!(
            "[server]\nlisten = \"127.0.0.1:{port}\"\nstate_dir = \"{}\"\ntls_cert_file = \"{}\"\ntls_key_file = \"{}\"\n\n[storage]\nurl = \"memory://\"\n",
            d.join("state").display(),
            d.join("cert.pem").display(),
            d.join("key.pem").display()
        ),
    )
    .expect("server config");
    let out = server(d, &["token", "create", "--name", "w", "--scope", "upload"]);
    assert!(out.status.success(), "{out:?}");
    let token = String::from_utf8(out.stdout).expect("utf8");
    let mut child = Command::new(server_bin())
        .env_clear()
        .arg("--config")
        .arg(d.join("server.toml"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("serve");
    wait_until("TLS listener", Duration::from_secs(30), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).ok()
    });

    let home = d.join("home");
    std::fs::create_dir_all(&home).expect("home");
    private(&home.join("token"), &token);
    let url = format!("https://localhost:{port}");
    write_watcher_config(
        &home,
        &url,
        &format!("ca_file = \"{}\"\n", d.join("ca.pem").display()),
    );
    std::fs::write(home.join("w/over-tls.txt"), b"encrypted on the wire").expect("file");
    let out = watcher(&home, &["scan"]);
    assert!(out.status.success(), "scan over TLS: {out:?}");

    // Without the CA the watcher must not talk to the server.
    let other = d.join("other");
    std::fs::create_dir_all(&other).expect("home");
    private(&other.join("token"), &token);
    write_watcher_config(&other, &url, "");
    std::fs::write(other.join("w/never.txt"), b"must not arrive").expect("file");
    let out = watcher(&other, &["scan"]);
    assert!(
        !out.status.success(),
        "a server with an unknown issuer was trusted: {out:?}"
    );

    let _ = Command::new("kill").arg(child.id().to_string()).status();
    child.wait().expect("wait");
    let out = server(d, &["export-index", "-"]);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    // memory:// storage is gone with the process; the index records the upload.
    let names = doc.to_string();
    assert!(names.contains("over-tls.txt"), "uploaded over TLS: {names}");
    assert!(!names.contains("never.txt"), "{names}");
}

#[test]
fn a_token_in_an_open_config_and_plain_http_off_loopback_are_refused() {
    let home = tempfile::tempdir().expect("home");
    let h = home.path();
    let config = h.join(".config/asset-watcher/config.toml");
    std::fs::create_dir_all(config.parent().expect("dir")).expect("dir");
    std::fs::create_dir_all(h.join("w")).expect("w");
    std::fs::write(
        &config,
        "server = \"http://127.0.0.1:1\"\nwatch = [\"~/w\"]\ntoken = \"acat_x\"\n",
    )
    .expect("config");
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let out = watcher(h, &["check-config"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("chmod 600"),
        "{out:?}"
    );

    std::fs::write(
        &config,
        "server = \"http://192.0.2.10:8000\"\nwatch = [\"~/w\"]\n",
    )
    .expect("config");
    let out = watcher(h, &["check-config"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("allow_plain_http"),
        "{out:?}"
    );
    std::fs::write(
        &config,
        "server = \"http://192.0.2.10:8000\"\nwatch = [\"~/w\"]\nallow_plain_http = true\n",
    )
    .expect("config");
    let out = watcher(h, &["check-config"]);
    assert!(out.status.success(), "{out:?}");
}

/// A 401 (unknown token) is a permanent failure that `status` shows with the
/// server's reason; the watcher does not keep retrying it (issue #5: "a
/// 401/403 is a permanent error shown in `status`, not a retry loop").
#[test]
fn a_rejected_token_is_a_permanent_failure_shown_in_status() {
    use crate::support::{Home, Server, write};
    let server = Server::start();
    let home = Home::new(&server, &[]);
    let token = home.config_file().with_file_name("token");
    private(
        &token,
        &format!("acat_{}_{}\n", "0".repeat(12), "0".repeat(64)),
    );
    write(&home.watched.join("denied.txt"), b"no valid token");
    let _ = home.run(&["scan"]);
    let status = home.status();
    let text = status.to_string();
    assert!(
        text.contains("401") || text.contains("unauthorized") || text.contains("token"),
        "status names the reason: {text}"
    );
    assert_eq!(
        status["failed"], 1,
        "one permanent failure, not a retry: {text}"
    );
    assert!(server.hashes().is_empty());
}
