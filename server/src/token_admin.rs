//! `token create|list|revoke`: bearer-token management on the index
//! directly, safe while servers run: every server reads a token's row on
//! every request, so a revocation applies at once, on every server sharing
//! a PostgreSQL index.
//!
//! Run as root, a command leaves no index file the service cannot open
//! (see `index::sqlite::files`).

use bytesize::ByteSize;

use crate::Config;
use crate::auth::{NewToken, Scopes};
use crate::index::{Index, IndexError, TokenLimits, TokenRow};

/// Why a token command failed.
#[derive(Debug, thiserror::Error)]
pub enum TokenAdminError {
    #[error(transparent)]
    Index(#[from] IndexError),
    #[error("token name must be 1-100 printable characters (no control or bidi characters)")]
    BadName,
    #[error("no active token with id {0:?} (see `asset-catalog-server token list`)")]
    NoSuchToken(String),
    #[error("--client {0:?}: use 1-64 characters from A-Z a-z 0-9 . _ - (the watcher's client id)")]
    BadClient(String),
    #[error("--{0} must be greater than 0 (leave it out for no limit)")]
    ZeroLimit(&'static str),
}

/// Create a token; its text is shown once by the caller.
pub async fn create(
    config: &Config,
    name: &str,
    scopes: &Scopes,
    limits: &TokenLimits,
) -> Result<NewToken, TokenAdminError> {
    let misleads = asset_catalog_proto::misleads_when_shown;
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(misleads) {
        return Err(TokenAdminError::BadName);
    }
    if let Some(client) = &limits.client
        && crate::service::meta::parse_client(Some(client)).is_err()
    {
        return Err(TokenAdminError::BadClient(client.clone()));
    }
    if limits.max_bytes == Some(0) {
        return Err(TokenAdminError::ZeroLimit("max-bytes"));
    }
    if limits.rate_per_min == Some(0) {
        return Err(TokenAdminError::ZeroLimit("rate"));
    }
    with_index(config, |index| async move {
        Ok(index.create_token(name, scopes, limits).await?)
    })
    .await
}

/// Store a one-time admin sign-in link for the web UI; returns its secret.
pub async fn ui_link(config: &Config) -> Result<String, TokenAdminError> {
    let lifetime = config.ui.link_lifetime();
    with_index(config, |index| async move {
        Ok(crate::service::store_sign_in_link(&index, lifetime).await?)
    })
    .await
}

/// `http(s)://ADDR` from `[server] listen` (an unspecified address as loopback).
pub fn base_url(config: &Config) -> String {
    let scheme = if config.tls_enabled() {
        "https"
    } else {
        "http"
    };
    let listen = &config.server.listen;
    let host = match listen.parse::<std::net::SocketAddr>() {
        Ok(addr) if addr.ip().is_unspecified() => format!("localhost:{}", addr.port()),
        _ => listen.clone(),
    };
    format!("{scheme}://{host}")
}

/// `client=ID, 1.5 GiB of 10.0 GiB, 60/min` (or `-` when unlimited).
pub fn describe_limits(limits: &TokenLimits, stored: Option<u64>) -> String {
    let mut parts = Vec::new();
    if let Some(client) = &limits.client {
        parts.push(format!("client={client}"));
    }
    match (limits.max_bytes, stored) {
        (Some(max), Some(used)) => parts.push(format!(
            "{} of {}",
            ByteSize::b(used).display().iec(),
            ByteSize::b(max).display().iec()
        )),
        (Some(max), None) => parts.push(format!("{} max", ByteSize::b(max).display().iec())),
        (None, _) => {}
    }
    if let Some(rate) = limits.rate_per_min {
        parts.push(format!("{rate}/min"));
    }
    if parts.is_empty() {
        "-".into()
    } else {
        parts.join(", ")
    }
}

/// Every token (never a secret).
pub async fn list(config: &Config) -> Result<Vec<TokenRow>, TokenAdminError> {
    with_index(
        config,
        |index| async move { Ok(index.list_tokens().await?) },
    )
    .await
}

/// Revoke by id; the full token text is accepted too.
pub async fn revoke(config: &Config, id: &str) -> Result<(), TokenAdminError> {
    let id = crate::auth::Presented::parse(id).map_or(id, |p| p.id);
    with_index(config, |index| async move {
        if index.revoke_token(id).await? {
            Ok(())
        } else {
            Err(TokenAdminError::NoSuchToken(id.to_owned()))
        }
    })
    .await
}

async fn with_index<'a, T, F, Fut>(config: &Config, f: F) -> Result<T, TokenAdminError>
where
    F: FnOnce(Index) -> Fut,
    Fut: std::future::Future<Output = Result<T, TokenAdminError>> + 'a,
{
    let index = Index::open_tool(config).await?;
    let out = f(index.clone()).await;
    index.finish_tool()?;
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_read_like_a_sentence() {
        let limits = TokenLimits {
            client: Some("laptop".into()),
            max_bytes: Some(10 << 30),
            rate_per_min: Some(60),
        };
        assert_eq!(
            describe_limits(&limits, Some(3 << 29)),
            "client=laptop, 1.5 GiB of 10.0 GiB, 60/min"
        );
        assert_eq!(describe_limits(&TokenLimits::default(), Some(5)), "-");
    }
}
