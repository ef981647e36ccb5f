//! The watcher's configuration: built-in defaults → TOML file
//! (`$XDG_CONFIG_HOME/asset-watcher/config.toml`) → `ASSET_WATCHER__KEY`
//! environment variables. Parsing is strict (`deny_unknown_fields`, errors
//! name file, line and key); `validate` then reports every problem at once
//! and yields the resolved [`Settings`] the rest of the program uses.

mod client_id;
mod settings;
mod template;
mod token;

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

pub use client_id::{default_client_id, valid_client_id};
pub use settings::{Environment, Root, SMALL_FILE_BYTES, Settings, expand_tilde, read_ca_file};
pub use template::{InitError, InitOptions, render_template, write_new_config};
pub use token::TOKEN_CREDENTIAL;

/// Prefix of environment overrides: `ASSET_WATCHER__SERVER=...`.
pub const ENV_PREFIX: &str = "ASSET_WATCHER__";

/// Patterns ignored unless the config sets `ignore`: partial downloads,
/// editor swap/backup/lock files, office lock files, VCS metadata.
pub const DEFAULT_IGNORE: &[&str] = &[
    "*.part",
    "*.partial",
    "*.tmp",
    "*.temp",
    "*.crdownload",
    "*.download",
    ".*.swp",
    ".*.swx",
    "*~",
    ".#*",
    "~$*",
    ".~lock.*#",
    ".DS_Store",
    ".git/",
    ".hg/",
    ".svn/",
    ".Trash-*/",
];

/// A secret (the bearer token) whose `Debug` never shows the value.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret value, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// The config file as written; every key optional.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    #[serde(default = "default_server")]
    pub server: String,
    #[serde(default)]
    pub client_id: Option<String>,
    #[serde(default)]
    pub token: Option<Secret>,
    #[serde(default)]
    pub token_file: Option<PathBuf>,
    #[serde(default)]
    pub watch: Vec<String>,
    #[serde(default = "default_ignore")]
    pub ignore: Vec<String>,
    #[serde(default = "default_quiet_period_ms")]
    pub quiet_period_ms: u64,
    #[serde(default = "default_upload_concurrency")]
    pub upload_concurrency: usize,
    /// Uploads of small files (under 1 MiB) in flight at once, on top of
    /// `upload_concurrency`: their cost is the round trip, not the bandwidth.
    #[serde(default = "default_small_upload_concurrency")]
    pub small_upload_concurrency: usize,
    #[serde(default = "default_hash_workers")]
    pub hash_workers: usize,
    #[serde(default = "default_rescan_interval_secs")]
    pub rescan_interval_secs: u64,
    #[serde(default = "default_connect_timeout_secs")]
    pub connect_timeout_secs: u64,
    #[serde(default = "default_request_timeout_secs")]
    pub request_timeout_secs: u64,
    /// Files of at least this many bytes go up as resumable (tus) uploads.
    #[serde(default = "default_resumable_threshold_bytes")]
    pub resumable_threshold_bytes: u64,
    /// PEM file of extra CA certificates trusted for an `https://` server
    /// (on top of the system's).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Allow `http://` to a server that is not on loopback.
    #[serde(default)]
    pub allow_plain_http: bool,
}

pub fn default_server() -> String {
    "http://127.0.0.1:8000".to_owned()
}
fn default_ignore() -> Vec<String> {
    DEFAULT_IGNORE.iter().map(|s| (*s).to_owned()).collect()
}
/// Short: the wait starts at the close (or the move into place), which
/// already says the writer is done; a file still open for writing waits for
/// its close or the much longer write grace instead.
fn default_quiet_period_ms() -> u64 {
    50
}
fn default_upload_concurrency() -> usize {
    4
}
/// Measured in B1 (issue 17): 4 → 16 small uploads in flight took 10,000
/// files of 4 KiB from 453 to 619 files/s through Garage, and cut the CPU
/// each file costs the server (larger group commits) and Garage.
fn default_small_upload_concurrency() -> usize {
    16
}
/// One hash worker per CPU.
pub fn default_hash_workers() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}
fn default_rescan_interval_secs() -> u64 {
    3600
}
fn default_connect_timeout_secs() -> u64 {
    10
}
fn default_request_timeout_secs() -> u64 {
    60
}
/// 64 MiB: four of the server's default 16 MiB parts, so a cut costs at
/// most a quarter of the file; smaller files go up in one `PUT`.
pub const DEFAULT_RESUMABLE_THRESHOLD_BYTES: u64 = 64 * 1024 * 1024;
fn default_resumable_threshold_bytes() -> u64 {
    DEFAULT_RESUMABLE_THRESHOLD_BYTES
}

impl Default for FileConfig {
    fn default() -> Self {
        Self {
            server: default_server(),
            client_id: None,
            token: None,
            token_file: None,
            watch: Vec::new(),
            ignore: default_ignore(),
            quiet_period_ms: default_quiet_period_ms(),
            upload_concurrency: default_upload_concurrency(),
            small_upload_concurrency: default_small_upload_concurrency(),
            hash_workers: default_hash_workers(),
            rescan_interval_secs: default_rescan_interval_secs(),
            connect_timeout_secs: default_connect_timeout_secs(),
            request_timeout_secs: default_request_timeout_secs(),
            resumable_threshold_bytes: default_resumable_threshold_bytes(),
            ca_file: None,
            allow_plain_http: false,
        }
    }
}

/// The config could not be read or parsed, or is invalid.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("environment variable {key}: {message}")]
    Env { key: String, message: String },
    #[error(
        "config file {path} holds a token but is readable by other users (mode {mode:o}); run `chmod 600 {path}` or move the token to a token_file"
    )]
    TokenInOpenFile { path: String, mode: u32 },
    #[error("{}", format_problems(.source_name, .problems))]
    Invalid {
        source_name: String,
        problems: Vec<String>,
    },
}

fn format_problems(source: &str, problems: &[String]) -> String {
    let mut s = format!("{source} has {} problem(s):", problems.len());
    for p in problems {
        s.push_str("\n  - ");
        s.push_str(p);
    }
    s
}

/// A parsed config and where it came from.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub config: FileConfig,
    /// The file that was read; `None` when there was no config file.
    pub file: Option<PathBuf>,
}

impl FileConfig {
    fn from_table(table: toml::Table) -> Result<Self, toml::de::Error> {
        table.try_into()
    }

    /// Read `path` (a missing file means "all defaults") and apply the
    /// `ASSET_WATCHER__*` variables from `env`.
    pub fn load(path: &Path, env: &[(String, String)]) -> Result<Loaded, ConfigError> {
        let (mut table, file) = match std::fs::read_to_string(path) {
            Ok(text) => {
                let table = parse_file(path, &text)?;
                if table.contains_key("token") {
                    refuse_open_file(path)?;
                }
                (table, Some(path.to_path_buf()))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => (toml::Table::new(), None),
            Err(source) => {
                return Err(ConfigError::Read {
                    path: path.to_path_buf(),
                    source,
                });
            }
        };
        let mut env_keys = Vec::new();
        for (key, value) in env {
            let Some(name) = key.strip_prefix(ENV_PREFIX) else {
                continue;
            };
            let name = name.to_ascii_lowercase();
            table.insert(name.clone(), env_value(&name, value));
            env_keys.push(key.clone());
        }
        let config = Self::from_table(table).map_err(|e| ConfigError::Env {
            key: env_keys.join(", "),
            message: e.message().to_owned(),
        })?;
        Ok(Loaded { config, file })
    }
}

/// A file holding a token must not be readable by group or others.
fn refuse_open_file(path: &Path) -> Result<(), ConfigError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)
        .map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?
        .permissions()
        .mode()
        & 0o777;
    if mode & 0o077 != 0 {
        return Err(ConfigError::TokenInOpenFile {
            path: path.display().to_string(),
            mode,
        });
    }
    Ok(())
}

/// Parse the file text strictly so that errors carry line and column.
fn parse_file(path: &Path, text: &str) -> Result<toml::Table, ConfigError> {
    let err = |e: toml::de::Error| ConfigError::Parse {
        path: path.to_path_buf(),
        message: e.to_string().trim_end().to_owned(),
    };
    toml::from_str::<FileConfig>(text).map_err(err)?;
    text.parse::<toml::Table>().map_err(err)
}

/// An environment value is TOML when it parses as such (`["a", "b"]`, `8`),
/// else a plain string; a string for a list key becomes a one-item list.
fn env_value(key: &str, raw: &str) -> toml::Value {
    let parsed = format!("v = {raw}")
        .parse::<toml::Table>()
        .ok()
        .and_then(|mut t| t.remove("v"));
    let value = parsed.unwrap_or_else(|| toml::Value::String(raw.to_owned()));
    match (key, value) {
        ("watch" | "ignore", toml::Value::String(s)) => {
            toml::Value::Array(vec![toml::Value::String(s)])
        }
        (_, v) => v,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, text: &str) -> PathBuf {
        let p = dir.join("config.toml");
        std::fs::write(&p, text).expect("write config");
        p
    }

    #[test]
    fn a_token_in_a_world_readable_file_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let p = write(dir.path(), "token = \"acat_x\"\n");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let err = FileConfig::load(&p, &[]).expect_err("refused");
        assert!(err.to_string().contains("chmod 600"), "{err}");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        let loaded = FileConfig::load(&p, &[]).expect("private file is fine");
        assert!(loaded.config.token.is_some());
        let p = write(dir.path(), "server = \"http://127.0.0.1:1\"\n");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        FileConfig::load(&p, &[]).expect("no token: any mode");
    }

    #[test]
    fn missing_file_means_defaults() {
        let dir = tempfile::tempdir().expect("tempdir");
        let l = FileConfig::load(&dir.path().join("none.toml"), &[]).expect("load");
        assert!(l.file.is_none());
        assert_eq!(l.config.server, "http://127.0.0.1:8000");
        assert_eq!(l.config.quiet_period_ms, 50);
        assert!(l.config.ignore.iter().any(|p| p == "*.part"));
    }

    #[test]
    fn unknown_key_is_reported_with_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = write(dir.path(), "server = \"http://x:1\"\n\nwatchh = [\"/a\"]\n");
        let e = FileConfig::load(&p, &[]).expect_err("unknown key");
        let msg = e.to_string();
        assert!(msg.contains("line 3"), "{msg}");
        assert!(msg.contains("watchh"), "{msg}");
    }

    #[test]
    fn env_overrides_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = write(dir.path(), "server = \"http://file:1\"\nwatch = [\"/a\"]\n");
        let env = vec![
            ("ASSET_WATCHER__SERVER".into(), "http://env:2".into()),
            ("ASSET_WATCHER__WATCH".into(), "/b".into()),
            ("ASSET_WATCHER__UPLOAD_CONCURRENCY".into(), "8".into()),
            ("UNRELATED".into(), "x".into()),
        ];
        let l = FileConfig::load(&p, &env).expect("load");
        assert_eq!(l.config.server, "http://env:2");
        assert_eq!(l.config.watch, vec!["/b".to_owned()]);
        assert_eq!(l.config.upload_concurrency, 8);
        let env = vec![("ASSET_WATCHER__WATCH".into(), "[\"/c\", \"/d\"]".into())];
        let l = FileConfig::load(&p, &env).expect("load");
        assert_eq!(l.config.watch, vec!["/c".to_owned(), "/d".to_owned()]);
    }

    #[test]
    fn unknown_env_key_is_an_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let env = vec![("ASSET_WATCHER__NOPE".into(), "1".into())];
        let e = FileConfig::load(&dir.path().join("c.toml"), &env).expect_err("unknown");
        assert!(e.to_string().contains("ASSET_WATCHER__NOPE"), "{e}");
    }

    #[test]
    fn serde_defaults_match_default() {
        let parsed = FileConfig::from_table(toml::Table::new()).expect("empty config");
        let d = FileConfig::default();
        assert_eq!(parsed.server, d.server);
        assert_eq!(parsed.ignore, d.ignore);
        assert_eq!(
            (
                parsed.quiet_period_ms,
                parsed.upload_concurrency,
                parsed.small_upload_concurrency,
                parsed.rescan_interval_secs,
                parsed.resumable_threshold_bytes
            ),
            (
                d.quiet_period_ms,
                d.upload_concurrency,
                d.small_upload_concurrency,
                d.rescan_interval_secs,
                d.resumable_threshold_bytes
            )
        );
    }

    #[test]
    fn secret_debug_is_redacted() {
        let s = Secret::new("hunter2");
        assert!(!format!("{s:?}").contains("hunter2"));
    }
}
