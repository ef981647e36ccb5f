//! `token create|list|revoke`: bearer-token management on the index database
//! directly, safe while the server runs (SQLite WAL; the server reads token
//! rows on every request, so a revocation applies at once).
//!
//! Run as root on a packaged install, these commands must neither leave files
//! the service cannot open nor let the service's user trick root: the index
//! lives in the service's `StateDirectory`, owned by its (dynamic) user, who
//! could have replaced `index.sqlite3-wal` with a symlink to any file root
//! may write or chown. So [`become_owner`] first drops root for the owner
//! of the state directory (groups, gid, uid; the process is still
//! single-threaded, so every later thread inherits it) and the database is
//! opened with exactly the rights the service has: no chown, no following
//! of a planted link with root's rights.

use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

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
    #[error(
        "cannot switch to uid {uid} (the owner of {}) to open the index as the service does: {source}",
        dir.display()
    )]
    Drop {
        dir: PathBuf,
        uid: u32,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "token commands must switch user before any thread starts ({threads} threads run); this is a bug, please report it"
    )]
    Threaded { threads: usize },
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
    let hides =
        |c: char| c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(hides) {
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
    let index = Index::open(&config.index_path()).await?;
    f(index).await
}

/// Run as root, become the owner of the index's directory (when that is not
/// root). Call before any thread starts: Linux switches only the calling
/// thread, and threads started later inherit its identity.
pub fn become_owner(config: &Config) -> Result<(), TokenAdminError> {
    use rustix::process::{Gid, Uid};
    let db = config.index_path();
    let Some(dir) = db.parent() else {
        return Ok(());
    };
    // The directory itself may be systemd's link (/var/lib/asset-catalog ->
    // private/asset-catalog) in root-owned /var/lib: following it is safe.
    let Ok(meta) = std::fs::metadata(dir) else {
        return Ok(());
    };
    if !rustix::process::geteuid().is_root() || meta.uid() == 0 {
        return Ok(());
    }
    let threads = std::fs::read_dir("/proc/self/task").map_or(1, Iterator::count);
    if threads > 1 {
        return Err(TokenAdminError::Threaded { threads });
    }
    let failed = |source: rustix::io::Errno| TokenAdminError::Drop {
        dir: dir.to_path_buf(),
        uid: meta.uid(),
        source: source.into(),
    };
    let (uid, gid) = (Uid::from_raw(meta.uid()), Gid::from_raw(meta.gid()));
    rustix::thread::set_thread_groups(&[gid]).map_err(failed)?;
    rustix::thread::set_thread_res_gid(gid, gid, gid).map_err(failed)?;
    rustix::thread::set_thread_res_uid(uid, uid, uid).map_err(failed)?;
    Ok(())
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
