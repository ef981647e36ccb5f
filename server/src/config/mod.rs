//! Server configuration: the TOML schema (`deny_unknown_fields` on every
//! section), its built-in defaults, and the values derived from them (state
//! directory, storage URL, index path). Loading and layering live in [`load`],
//! checking in [`validate`], secret handling in [`secret`], where the TLS
//! files are read from (a systemd credential under the packaged unit) in
//! [`tls_file`].
//!
//! Adding a section (e.g. `[auth]` for bearer tokens) means: a struct with
//! `#[serde(deny_unknown_fields, default)]`, a field here, a `validate_*`
//! function in [`validate`]. Environment overrides pick it up automatically.

mod jobs;
mod load;
mod secret;
mod tls_file;
mod ui;
mod uploads;
mod validate;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use jobs::{DEFAULT_SCRUB_BYTES_PER_SEC, JobsConfig};
pub use load::{ConfigError, ConfigSource, DEFAULT_CONFIG_PATH, ENV_PREFIX};
pub use secret::{SecretError, SecretString};
pub use tls_file::{TLS_CREDENTIAL_PREFIX, TLS_DIR, TlsFile};
pub use ui::UiConfig;
pub use uploads::UploadsConfig;

/// Default state directory when neither the file nor `$STATE_DIRECTORY` names one.
pub const DEFAULT_STATE_DIR: &str = "/var/lib/asset-catalog";
/// Default listen address: loopback only; change it to expose the server.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8000";
/// 64 GiB.
pub const DEFAULT_MAX_UPLOAD_BYTES: u64 = 64 * 1024 * 1024 * 1024;
/// 16 MiB multipart parts.
pub const DEFAULT_PART_SIZE_BYTES: u64 = 16 * 1024 * 1024;
/// S3's (and MinIO's, and Garage's) minimum size of every part but the last.
pub const MIN_PART_SIZE_BYTES: u64 = 5 * 1024 * 1024;
/// S3's maximum part size.
pub const MAX_PART_SIZE_BYTES: u64 = 5 * 1024 * 1024 * 1024;
/// S3's maximum number of parts in one multipart upload.
pub const MAX_PARTS: u64 = 10_000;
/// Name of the S3 secret under `$CREDENTIALS_DIRECTORY` (systemd `LoadCredential=`).
pub const DEFAULT_SECRET_CREDENTIAL: &str = "s3-secret-access-key";

/// The whole configuration file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: ServerConfig,
    pub storage: StorageConfig,
    pub index: IndexConfig,
    pub log: LogConfig,
    pub metrics: MetricsConfig,
    pub auth: AuthConfig,
    pub jobs: JobsConfig,
    pub ui: UiConfig,
    pub uploads: UploadsConfig,
    /// Facts from the process environment that are not configuration keys
    /// (`$STATE_DIRECTORY`, `$CREDENTIALS_DIRECTORY`). Filled by the loader;
    /// tests set them directly instead of touching the real environment.
    #[serde(skip)]
    pub runtime: RuntimeEnv,
}

/// `[server]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Socket address to listen on.
    pub listen: String,
    /// Where the index and temporary upload files live.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state_dir: Option<PathBuf>,
    /// Largest accepted upload body; larger ones get 413 `payload_too_large`.
    pub max_upload_bytes: u64,
    /// How long a graceful stop waits for in-flight requests.
    pub shutdown_timeout_secs: u64,
    /// Serve plain HTTP on a non-loopback address (otherwise TLS is required there).
    pub allow_plain_http: bool,
    /// PEM certificate chain; with `tls_key_file`, serve HTTPS (reloaded on SIGHUP).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_cert_file: Option<PathBuf>,
    /// PEM private key for `tls_cert_file`; refused if group/others can read it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_key_file: Option<PathBuf>,
    /// Largest total size of a request's header fields; larger gets 431.
    pub max_header_bytes: usize,
    /// Time a client has to send the request head; slower gets 408.
    pub request_head_timeout_secs: u64,
    /// Longest a request body may stall between two chunks; longer gets 408.
    pub body_stall_timeout_secs: u64,
    /// Uploads (PUT and form POST) served at once; more get 429 with Retry-After.
    pub max_concurrent_uploads: usize,
    /// Least average rate of an upload body over 10 s of waiting for it; slower gets 408 (0: off).
    pub min_upload_bytes_per_sec: u64,
    /// Longest one upload may take in all; longer gets 408.
    pub upload_deadline_secs: u64,
    /// Longest a request waits for another on the same content (an upload
    /// of the same bytes); longer gets 429 with Retry-After.
    pub same_hash_wait_secs: u64,
    /// Places (client, path) recorded per asset; more get 409 `too_many_sightings`.
    pub max_sightings_per_asset: u64,
}

/// `[auth]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Require a bearer token on every API route (`/healthz`, `/readyz` stay open).
    pub enabled: bool,
    /// Serve `/metrics` without a token (otherwise a `read` or `admin` token is needed).
    pub metrics_public: bool,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            metrics_public: false,
        }
    }
}

/// `[storage]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    /// `file:///abs/dir`, `memory://` or `s3://bucket[/prefix]`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// S3 endpoint, e.g. `http://127.0.0.1:3900` (AWS when absent).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Path-style requests (`endpoint/bucket/key`); virtual-hosted style when false.
    pub path_style: bool,
    /// Must be true for an `http://` endpoint.
    pub allow_http: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_key_id: Option<String>,
    /// File holding the S3 secret key; refused if group/others can read it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret_access_key_file: Option<PathBuf>,
    /// Credential name under `$CREDENTIALS_DIRECTORY`, used when no file is set.
    pub secret_access_key_credential: String,
    /// Multipart part size for large uploads (>= 5 MiB).
    pub part_size_bytes: u64,
    /// Deadline of one storage call, retries included.
    pub timeout_secs: u64,
}

impl StorageConfig {
    /// [`Self::timeout_secs`] as a duration.
    pub fn timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.timeout_secs)
    }
}

/// `[index]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IndexConfig {
    /// SQLite file; default `<state_dir>/index.sqlite3`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<PathBuf>,
    /// `postgres://USER@HOST:PORT/DB`: a shared PostgreSQL index instead of
    /// SQLite (a password in it is refused).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// File holding the PostgreSQL password; refused if group/others can read it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password_file: Option<PathBuf>,
    /// Credential name under `$CREDENTIALS_DIRECTORY`, used when no file is set.
    pub password_credential: String,
    /// `disable` or `verify-full` (TLS; certificate and host name checked).
    pub sslmode: String,
    /// CA certificates (PEM) for `verify-full`; default: the system's roots.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// Connections each server keeps to PostgreSQL.
    pub pool_size: usize,
    /// Deadline for connecting to PostgreSQL (and for waiting for a pooled connection).
    pub connect_timeout_secs: u64,
}

/// Name of the PostgreSQL password under `$CREDENTIALS_DIRECTORY`.
pub const DEFAULT_INDEX_PASSWORD_CREDENTIAL: &str = "pg_password";

impl Default for IndexConfig {
    fn default() -> Self {
        Self {
            path: None,
            url: None,
            password_file: None,
            password_credential: DEFAULT_INDEX_PASSWORD_CREDENTIAL.into(),
            sslmode: "disable".into(),
            ca_file: None,
            pool_size: 16,
            connect_timeout_secs: 5,
        }
    }
}

/// `[log]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `tracing` EnvFilter directives; `$RUST_LOG` wins when set.
    pub level: String,
}

/// `[metrics]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Serve `GET /metrics`.
    pub enabled: bool,
}

/// Process environment the configuration depends on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuntimeEnv {
    /// `$STATE_DIRECTORY` (first entry), set by systemd's `StateDirectory=`.
    pub state_directory: Option<PathBuf>,
    /// `$CREDENTIALS_DIRECTORY`, set by systemd's `LoadCredential=`.
    pub credentials_directory: Option<PathBuf>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: DEFAULT_LISTEN.into(),
            state_dir: None,
            max_upload_bytes: DEFAULT_MAX_UPLOAD_BYTES,
            shutdown_timeout_secs: 30,
            allow_plain_http: false,
            tls_cert_file: None,
            tls_key_file: None,
            max_header_bytes: 16 * 1024,
            request_head_timeout_secs: 10,
            body_stall_timeout_secs: 60,
            max_concurrent_uploads: 64,
            min_upload_bytes_per_sec: 1024,
            upload_deadline_secs: 24 * 3600,
            same_hash_wait_secs: 30,
            max_sightings_per_asset: 10_000,
        }
    }
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            url: None,
            endpoint: None,
            region: None,
            path_style: true,
            allow_http: false,
            access_key_id: None,
            secret_access_key_file: None,
            secret_access_key_credential: DEFAULT_SECRET_CREDENTIAL.into(),
            part_size_bytes: DEFAULT_PART_SIZE_BYTES,
            timeout_secs: crate::storage::DEFAULT_TIMEOUT.as_secs(),
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            level: "info".into(),
        }
    }
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self { enabled: true }
    }
}

impl Config {
    /// A configuration for tests and embedding: defaults, everything under `state_dir`.
    pub fn for_state_dir(state_dir: impl Into<PathBuf>) -> Self {
        let mut config = Self::default();
        config.server.state_dir = Some(state_dir.into());
        config
    }

    /// Effective state directory: the file's, else `$STATE_DIRECTORY`, else the default.
    pub fn state_dir(&self) -> PathBuf {
        self.server
            .state_dir
            .clone()
            .or_else(|| self.runtime.state_directory.clone())
            .unwrap_or_else(|| PathBuf::from(DEFAULT_STATE_DIR))
    }

    /// Effective storage URL: the file's, else `file://<state_dir>/objects`.
    pub fn storage_url(&self) -> String {
        match &self.storage.url {
            Some(url) => url.clone(),
            None => format!("file://{}", self.state_dir().join("objects").display()),
        }
    }

    /// Effective index path: the file's, else `<state_dir>/index.sqlite3`.
    pub fn index_path(&self) -> PathBuf {
        self.index
            .path
            .clone()
            .unwrap_or_else(|| self.state_dir().join("index.sqlite3"))
    }

    /// Directory for spooled form uploads (`<state_dir>/tmp`).
    pub fn spool_dir(&self) -> PathBuf {
        self.state_dir().join("tmp")
    }

    /// Every problem with this configuration, one line each, saying what to change.
    /// Reads secret files' metadata (not storage): safe for `check-config`.
    pub fn validate(&self) -> Vec<String> {
        validate::problems(self)
    }

    /// Read the PostgreSQL password from `[index] password_file` or the systemd credential.
    pub fn index_password(&self) -> Result<Option<SecretString>, SecretError> {
        secret::file_or_credential(
            ("index.password_file", self.index.password_file.as_deref()),
            ("index.password_credential", &self.index.password_credential),
            &self.runtime,
        )
    }

    /// Read the S3 secret key from `secret_access_key_file` or the systemd credential.
    pub fn s3_secret(&self) -> Result<Option<SecretString>, SecretError> {
        secret::resolve(&self.storage, &self.runtime)
    }

    /// Both TLS files are configured.
    pub fn tls_enabled(&self) -> bool {
        self.server.tls_cert_file.is_some() && self.server.tls_key_file.is_some()
    }

    /// The certificate and key files, each read from its systemd credential
    /// when the packaged unit delivered it ([`TlsFile::resolve`]); `None`
    /// unless both are configured.
    pub fn tls_files(&self) -> Option<(TlsFile, TlsFile)> {
        let cert = self.server.tls_cert_file.as_deref()?;
        let key = self.server.tls_key_file.as_deref()?;
        Some((
            TlsFile::resolve(cert, &self.runtime),
            TlsFile::resolve(key, &self.runtime),
        ))
    }

    /// Short human summary for `check-config` and the startup log.
    pub fn summary(&self) -> String {
        format!(
            "listen {} ({}), auth {}, storage {}, index {}, max upload {} bytes",
            self.server.listen,
            if self.tls_enabled() { "https" } else { "http" },
            if self.auth.enabled { "on" } else { "OFF" },
            self.storage_url(),
            // Validation refuses a password in the URL: it is safe to show.
            self.index
                .url
                .clone()
                .unwrap_or_else(|| display(&self.index_path())),
            self.server.max_upload_bytes
        )
    }
}

fn display(path: &Path) -> String {
    path.display().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_paths_follow_state_dir() {
        let mut config = Config::default();
        assert_eq!(config.state_dir(), PathBuf::from(DEFAULT_STATE_DIR));
        config.runtime.state_directory = Some("/srv/state".into());
        assert_eq!(config.storage_url(), "file:///srv/state/objects");
        assert_eq!(
            config.index_path(),
            PathBuf::from("/srv/state/index.sqlite3")
        );
        config.server.state_dir = Some("/explicit".into());
        assert_eq!(
            config.index_path(),
            PathBuf::from("/explicit/index.sqlite3")
        );
    }

    #[test]
    fn defaults_are_valid() {
        assert_eq!(Config::default().validate(), Vec::<String>::new());
    }
}
