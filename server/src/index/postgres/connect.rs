//! From `[index]` to a connection pool: the URL (never with a password), the
//! password from a file or a systemd credential, TLS with the server's
//! certificate and host name verified, and timeouts so that an unreachable
//! database fails a request quickly instead of holding it.

use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

use crate::Config;
use crate::config::SecretString;
use crate::index::IndexError;

/// How to talk TLS to PostgreSQL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SslMode {
    /// Plain TCP (a private network or loopback).
    Disable,
    /// TLS; the certificate must chain to `ca_file` (else the system's
    /// roots) and name the host.
    VerifyFull { ca_file: Option<std::path::PathBuf> },
}

/// Everything needed to connect.
#[derive(Debug, Clone)]
pub struct PgOptions {
    pub config: tokio_postgres::Config,
    pub password: Option<SecretString>,
    pub ssl: SslMode,
    pub pool_size: usize,
    pub connect_timeout: Duration,
}

impl PgOptions {
    /// The PostgreSQL options `config` names; `None` for SQLite.
    pub fn from_config(config: &Config) -> Result<Option<Self>, IndexError> {
        let index = &config.index;
        let Some(url) = &index.url else {
            return Ok(None);
        };
        let parsed: tokio_postgres::Config = url.parse().map_err(|_| {
            IndexError::Config(
                "url is not a PostgreSQL URL; use postgres://USER@HOST:PORT/DB".into(),
            )
        })?;
        if parsed.get_password().is_some() {
            return Err(IndexError::Config(
                "a password in url is refused; use password_file or the credential pg_password"
                    .into(),
            ));
        }
        let password = config
            .index_password()
            .map_err(|e| IndexError::Config(e.to_string()))?;
        let ssl = match index.sslmode.as_str() {
            "disable" => SslMode::Disable,
            "verify-full" => SslMode::VerifyFull {
                ca_file: index.ca_file.clone(),
            },
            other => {
                return Err(IndexError::Config(format!(
                    "sslmode {other:?} is not supported; use \"disable\" or \"verify-full\""
                )));
            }
        };
        Ok(Some(Self {
            config: parsed,
            password,
            ssl,
            pool_size: index.pool_size,
            connect_timeout: Duration::from_secs(index.connect_timeout_secs),
        }))
    }

    /// `postgres://user@host:port/db` (never the password).
    pub fn shown(&self) -> String {
        let c = &self.config;
        let host = c
            .get_hosts()
            .first()
            .map(|h| match h {
                tokio_postgres::config::Host::Tcp(name) => name.clone(),
                tokio_postgres::config::Host::Unix(path) => path.display().to_string(),
            })
            .unwrap_or_default();
        let port = c.get_ports().first().copied().unwrap_or(5432);
        format!(
            "postgres://{}@{host}:{port}/{}",
            c.get_user().unwrap_or_default(),
            c.get_dbname().unwrap_or_default()
        )
    }

    /// A pool that connects lazily (a server starts while PostgreSQL is
    /// down and becomes ready once it is back).
    pub(super) fn pool(&self) -> Result<Pool, IndexError> {
        let mut config = self.config.clone();
        config.connect_timeout(self.connect_timeout);
        config.application_name("asset-catalog-server");
        // Keepalives find a connection whose peer vanished (a failed-over host).
        config.keepalives_idle(Duration::from_secs(30));
        // No JIT: every statement here is short, and the planner's cost of a
        // name search (a subplan counted for every row of the walk) crossed
        // jit_above_cost, so compiling took 60-200 ms of a 30 ms query (B8).
        let options = match config.get_options() {
            Some(given) => format!("{given} -c jit=off"),
            None => "-c jit=off".to_owned(),
        };
        config.options(&options);
        if let Some(password) = &self.password {
            config.password(password.expose());
        }
        let manager_config = ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        };
        let manager = match &self.ssl {
            SslMode::Disable => {
                config.ssl_mode(tokio_postgres::config::SslMode::Disable);
                Manager::from_config(config, tokio_postgres::NoTls, manager_config)
            }
            SslMode::VerifyFull { ca_file } => {
                config.ssl_mode(tokio_postgres::config::SslMode::Require);
                let tls = tokio_postgres_rustls::MakeRustlsConnect::new(client_tls(ca_file)?);
                Manager::from_config(config, tls, manager_config)
            }
        };
        Pool::builder(manager)
            .max_size(self.pool_size)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(self.connect_timeout))
            .create_timeout(Some(self.connect_timeout))
            .recycle_timeout(Some(self.connect_timeout))
            .build()
            .map_err(|e| IndexError::Config(format!("cannot build the connection pool: {e}")))
    }
}

/// rustls client settings: roots from `ca_file`, else the system's.
fn client_tls(ca_file: &Option<std::path::PathBuf>) -> Result<rustls::ClientConfig, IndexError> {
    let mut roots = rustls::RootCertStore::empty();
    match ca_file {
        Some(path) => {
            let certs = CertificateDer::pem_file_iter(path)
                .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                .map_err(|e| IndexError::Config(format!("ca_file {}: {e}", path.display())))?;
            let (added, _) = roots.add_parsable_certificates(certs);
            if added == 0 {
                return Err(IndexError::Config(format!(
                    "ca_file {} holds no usable certificate (PEM expected)",
                    path.display()
                )));
            }
        }
        None => {
            let native = rustls_native_certs::load_native_certs();
            roots.add_parsable_certificates(native.certs);
        }
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map(|b| b.with_root_certificates(roots).with_no_client_auth())
        .map_err(|e| IndexError::Config(format!("TLS setup: {e}")))
}
