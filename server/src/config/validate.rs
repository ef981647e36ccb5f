//! `Config::validate`: every problem at once, one line each, each naming the
//! key and saying what to change. Checks local facts only (syntax, ranges,
//! secret-file permissions), never whether storage answers, so it is safe as
//! the unit's `ExecStartPre`.

use std::net::SocketAddr;

use super::{
    Config, MAX_PART_SIZE_BYTES, MAX_PARTS, MIN_PART_SIZE_BYTES, SecretError, StorageConfig,
    TlsFile, secret,
};

pub(super) fn problems(config: &Config) -> Vec<String> {
    let mut out = Vec::new();
    validate_server(config, &mut out);
    validate_storage(config, &mut out);
    validate_log(config, &mut out);
    super::jobs::validate(&config.jobs, &mut out);
    super::ui::validate(&config.ui, &mut out);
    super::uploads::validate(&config.uploads, &mut out);
    validate_exposure(config, &mut out);
    out
}

/// TLS files, plain HTTP off loopback, and the abuse limits.
fn validate_exposure(config: &Config, out: &mut Vec<String>) {
    let server = &config.server;
    match (&server.tls_cert_file, &server.tls_key_file) {
        (Some(_), None) | (None, Some(_)) => out.push(
            "server.tls_cert_file, server.tls_key_file: set both (PEM files) to serve HTTPS, or neither".into(),
        ),
        (Some(_), Some(_)) => {
            if let Some((cert, key)) = config.tls_files() {
                if let Err(e) = std::fs::metadata(cert.read_path()) {
                    out.push(format!("server.tls_cert_file: cannot read {cert}: {e}"));
                }
                if let Err(e) = check_tls_key(&key) {
                    out.push(e.to_string());
                }
            }
        }
        (None, None) => {
            // An unparsable address is reported by validate_server.
            let loopback = server
                .listen
                .parse::<SocketAddr>()
                .map_or(true, |a| a.ip().is_loopback());
            if !loopback && !server.allow_plain_http {
                out.push(format!(
                    "server.listen: {:?} is not a loopback address and TLS is off; set server.tls_cert_file and server.tls_key_file, or server.allow_plain_http = true behind a TLS proxy or on a trusted network",
                    server.listen
                ));
            }
        }
    }
    for (key, value) in [
        ("server.max_header_bytes", server.max_header_bytes as u64),
        (
            "server.request_head_timeout_secs",
            server.request_head_timeout_secs,
        ),
        (
            "server.body_stall_timeout_secs",
            server.body_stall_timeout_secs,
        ),
        (
            "server.max_concurrent_uploads",
            server.max_concurrent_uploads as u64,
        ),
        ("server.upload_deadline_secs", server.upload_deadline_secs),
        ("server.same_hash_wait_secs", server.same_hash_wait_secs),
        (
            "server.max_sightings_per_asset",
            server.max_sightings_per_asset,
        ),
    ] {
        if value == 0 {
            out.push(format!("{key}: must be greater than 0"));
        }
    }
}

/// The key must not be readable by group or others on disk. The configured
/// file is checked whenever the server can look at it, so a key left open in
/// /etc/asset-catalog/tls is refused under the packaged unit too; its
/// credential copy (which systemd keeps private to the service) only when the
/// file itself cannot be looked at.
fn check_tls_key(key: &TlsFile) -> Result<(), SecretError> {
    const KEY: &str = "server.tls_key_file";
    match (secret::check_private(KEY, &key.configured), &key.credential) {
        (Err(SecretError::Read { .. }), Some(copy)) => secret::check_private(KEY, copy),
        (on_disk, _) => on_disk,
    }
}

fn validate_server(config: &Config, out: &mut Vec<String>) {
    let server = &config.server;
    if server.listen.parse::<SocketAddr>().is_err() {
        out.push(format!(
            "server.listen: {:?} is not a socket address; use IP:PORT, e.g. \"127.0.0.1:8000\" or \"[::]:8000\"",
            server.listen
        ));
    }
    if let Some(dir) = &server.state_dir
        && !dir.is_absolute()
    {
        out.push(format!(
            "server.state_dir: {:?} must be an absolute path",
            dir.display()
        ));
    }
    if server.max_upload_bytes == 0 {
        out.push(
            "server.max_upload_bytes: must be greater than 0 (default 68719476736 = 64 GiB)".into(),
        );
    }
    validate_index(&config.index, out);
}

fn validate_index(index: &super::IndexConfig, out: &mut Vec<String>) {
    if let Some(path) = &index.path
        && !path.is_absolute()
    {
        out.push(format!(
            "index.path: {:?} must be an absolute path",
            path.display()
        ));
    }
    if !matches!(index.sslmode.as_str(), "disable" | "verify-full") {
        out.push(format!(
            "index.sslmode: {:?} is not supported; use \"disable\" or \"verify-full\" (TLS with the server's certificate and host name checked)",
            index.sslmode
        ));
    }
    if !(1..=1000).contains(&index.pool_size) {
        out.push("index.pool_size: use 1 to 1000 connections (default 16)".into());
    }
    if !(1..=300).contains(&index.connect_timeout_secs) {
        out.push("index.connect_timeout_secs: use 1 to 300 (default 5)".into());
    }
    let Some(url) = &index.url else {
        return;
    };
    if index.path.is_some() {
        out.push("index.path and index.url are both set: path is SQLite's file, url a PostgreSQL server; keep one".into());
    }
    let scheme_ok = url.starts_with("postgres://") || url.starts_with("postgresql://");
    match url.parse::<tokio_postgres::Config>() {
        Ok(parsed) if scheme_ok => {
            if parsed.get_password().is_some() {
                out.push("index.url: a password in the URL is refused (it would show in logs and `ps`); put it in index.password_file (mode 0600) or the systemd credential pg_password".into());
            }
            if parsed.get_dbname().is_none() || parsed.get_user().is_none() {
                out.push(
                    "index.url: name a user and a database: postgres://USER@HOST:PORT/DB".into(),
                );
            }
        }
        _ => out.push("index.url: not a PostgreSQL URL; use postgres://USER@HOST:PORT/DB".into()),
    }
}

fn validate_storage(config: &Config, out: &mut Vec<String>) {
    let storage = &config.storage;
    let part = storage.part_size_bytes;
    if !(MIN_PART_SIZE_BYTES..=MAX_PART_SIZE_BYTES).contains(&part) {
        out.push(format!(
            "storage.part_size_bytes: {part} is outside S3's limits; use {MIN_PART_SIZE_BYTES} (5 MiB) to {MAX_PART_SIZE_BYTES} (5 GiB), default 16777216"
        ));
    } else if config.server.max_upload_bytes.div_ceil(part) > MAX_PARTS {
        out.push(format!(
            "storage.part_size_bytes: {part}-byte parts cannot carry server.max_upload_bytes = {} within S3's {MAX_PARTS}-part limit; raise part_size_bytes to at least {}",
            config.server.max_upload_bytes,
            config.server.max_upload_bytes.div_ceil(MAX_PARTS)
        ));
    }
    if !(1..=3600).contains(&storage.timeout_secs) {
        out.push(format!(
            "storage.timeout_secs: {} is out of range; use 1 to 3600 (default 30, well below clients' 60 s request timeout)",
            storage.timeout_secs
        ));
    }
    let url = config.storage_url();
    match url.split_once("://") {
        Some(("file", path)) if path.starts_with('/') => s3_keys_unused(storage, "file", out),
        Some(("file", _)) => out.push(format!(
            "storage.url: {url:?} needs an absolute path, e.g. \"file:///var/lib/asset-catalog/objects\""
        )),
        Some(("memory", _)) => s3_keys_unused(storage, "memory", out),
        Some(("s3", rest)) => validate_s3(config, rest, out),
        _ => out.push(format!(
            "storage.url: {url:?} is not supported; use \"file:///DIR\", \"s3://BUCKET\" or \"memory://\" (tests only)"
        )),
    }
}

fn s3_keys_unused(storage: &StorageConfig, scheme: &str, out: &mut Vec<String>) {
    let set: Vec<&str> = [
        ("endpoint", storage.endpoint.is_some()),
        ("region", storage.region.is_some()),
        ("access_key_id", storage.access_key_id.is_some()),
        (
            "secret_access_key_file",
            storage.secret_access_key_file.is_some(),
        ),
    ]
    .into_iter()
    .filter_map(|(k, present)| present.then_some(k))
    .collect();
    if !set.is_empty() {
        out.push(format!(
            "storage: {} only apply to s3:// URLs; remove them or set storage.url = \"s3://BUCKET\" (the URL is {scheme}://)",
            set.join(", ")
        ));
    }
}

fn validate_s3(config: &Config, rest: &str, out: &mut Vec<String>) {
    let storage = &config.storage;
    let bucket = rest.split('/').next().unwrap_or_default();
    if bucket.len() < 3
        || bucket.len() > 63
        || !bucket
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
    {
        out.push(format!(
            "storage.url: {bucket:?} is not a valid bucket name (3-63 chars of a-z, 0-9, '.', '-'), e.g. \"s3://assets\""
        ));
    }
    if let Some(endpoint) = &storage.endpoint {
        match url::Url::parse(endpoint) {
            Ok(u) if u.scheme() == "http" && !storage.allow_http => out.push(format!(
                "storage.allow_http: the endpoint {endpoint:?} is plain http; set allow_http = true (or use https)"
            )),
            Ok(u) if u.scheme() == "http" || u.scheme() == "https" => {}
            _ => out.push(format!(
                "storage.endpoint: {endpoint:?} is not an http(s) URL, e.g. \"http://127.0.0.1:3900\""
            )),
        }
    }
    if storage.access_key_id.is_none() {
        out.push("storage.access_key_id: required for s3:// storage".into());
    }
    match secret::resolve(storage, &config.runtime) {
        Ok(Some(_)) => {}
        Ok(None) => out.push(format!(
            "storage.secret_access_key_file: required for s3:// storage (or provide the systemd credential {:?} via LoadCredential=)",
            storage.secret_access_key_credential
        )),
        Err(e) => out.push(e.to_string()),
    }
}

fn validate_log(config: &Config, out: &mut Vec<String>) {
    if let Err(e) = tracing_subscriber::EnvFilter::builder().parse(&config.log.level) {
        out.push(format!(
            "log.level: {:?} is not a valid filter ({e}); use e.g. \"info\" or \"asset_catalog_server=debug,info\"",
            config.log.level
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_needs_credentials_and_https_or_allow_http() {
        let mut config = Config::default();
        config.storage.url = Some("s3://assets".into());
        config.storage.endpoint = Some("http://127.0.0.1:3900".into());
        let problems = config.validate();
        assert!(
            problems.iter().any(|p| p.starts_with("storage.allow_http")),
            "{problems:?}"
        );
        assert!(
            problems
                .iter()
                .any(|p| p.starts_with("storage.access_key_id"))
        );
        assert!(
            problems
                .iter()
                .any(|p| p.starts_with("storage.secret_access_key_file"))
        );
    }

    #[test]
    fn a_resumable_threshold_below_a_mib_is_refused_in_bytes() {
        let mut config = Config::default();
        config.ui.resumable_above_bytes = 64;
        let problems = config.validate();
        assert_eq!(
            problems,
            [
                "ui.resumable_above_bytes: 64 is below 1048576 (1 MiB); it is a size in bytes (64 MiB is 67108864)"
            ]
        );
        config.ui.resumable_above_bytes = 1 << 20;
        assert!(config.validate().is_empty());
    }

    #[test]
    fn part_size_must_fit_upload_limit() {
        let mut config = Config::default();
        config.storage.part_size_bytes = MIN_PART_SIZE_BYTES;
        config.server.max_upload_bytes = MIN_PART_SIZE_BYTES * (MAX_PARTS + 1);
        let problems = config.validate();
        assert_eq!(problems.len(), 1, "{problems:?}");
    }

    #[test]
    fn tls_key_is_checked_on_disk_when_visible_else_its_credential() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let write = |name: &str, mode: u32| {
            let path = dir.path().join(name);
            std::fs::write(&path, "key").expect("write");
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
            path
        };
        let copy = write("tls_key.pem", 0o400);
        let key = |configured: std::path::PathBuf| TlsFile {
            configured,
            credential: Some(copy.clone()),
        };
        // Open on disk: refused even though the credential copy is private.
        let open = key(write("open.pem", 0o644));
        let err = check_tls_key(&open).expect_err("readable by others");
        assert!(err.to_string().contains("chmod 600"), "{err}");
        assert!(err.to_string().contains("open.pem"), "{err}");
        check_tls_key(&key(write("private.pem", 0o600))).expect("private on disk");
        // The file cannot be looked at (a root-only directory): its copy counts.
        check_tls_key(&key(dir.path().join("hidden.pem"))).expect("credential copy");
        let missing = TlsFile::plain(&dir.path().join("hidden.pem"));
        let err = check_tls_key(&missing).expect_err("nothing to read");
        assert!(err.to_string().contains("cannot read"), "{err}");
    }

    #[test]
    fn bad_urls_are_explained() {
        for url in ["ftp://x", "file://relative", "s3://A_B"] {
            let mut config = Config::default();
            config.storage.url = Some(url.into());
            assert!(!config.validate().is_empty(), "{url}");
        }
    }

    #[test]
    fn index_urls_are_explained() {
        let problems = |url: &str, tweak: fn(&mut super::super::IndexConfig)| {
            let mut config = Config::default();
            config.index.url = Some(url.into());
            tweak(&mut config.index);
            config.validate()
        };
        let fine = problems("postgres://catalog@db.example.org:5432/assets", |_| {});
        assert!(fine.is_empty(), "{fine:?}");
        let inline = problems("postgres://catalog:hunter2@db/assets", |_| {});
        assert!(
            inline
                .iter()
                .any(|p| p.contains("password in the URL is refused")),
            "{inline:?}"
        );
        assert!(!inline.iter().any(|p| p.contains("hunter2")), "{inline:?}");
        let no_db = problems("postgres://db.example.org", |_| {});
        assert!(
            no_db.iter().any(|p| p.contains("user and a database")),
            "{no_db:?}"
        );
        assert!(!problems("mysql://u@h/d", |_| {}).is_empty());
        let both = problems("postgres://u@h/d", |i| {
            i.path = Some("/x/index.sqlite3".into())
        });
        assert!(both.iter().any(|p| p.contains("keep one")), "{both:?}");
        let sslmode = problems("postgres://u@h/d", |i| i.sslmode = "prefer".into());
        assert!(
            sslmode.iter().any(|p| p.starts_with("index.sslmode")),
            "{sslmode:?}"
        );
        let pool = problems("postgres://u@h/d", |i| i.pool_size = 0);
        assert!(
            pool.iter().any(|p| p.starts_with("index.pool_size")),
            "{pool:?}"
        );
    }
}
