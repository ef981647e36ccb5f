//! `token create|list|revoke`: bearer-token management on the index database
//! directly, safe while the server runs (SQLite WAL; the server reads token
//! rows on every request, so a revocation applies at once).
//!
//! Run as root on a packaged install, these commands must not leave files the
//! service cannot open: the index lives in the service's `StateDirectory`
//! owned by its (dynamic) user. After the database is closed, every index
//! file (`index.sqlite3`, `-wal`, `-shm`) is given back to the owner of the
//! state directory.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::Config;
use crate::auth::{NewToken, Scopes};
use crate::index::{Index, IndexError, TokenRow};

/// Why a token command failed.
#[derive(Debug, thiserror::Error)]
pub enum TokenAdminError {
    #[error(transparent)]
    Index(#[from] IndexError),
    #[error("token name must be 1-100 printable characters")]
    BadName,
    #[error("no active token with id {0:?} (see `asset-catalog-server token list`)")]
    NoSuchToken(String),
    #[error("cannot give {} back to uid {uid}: {source}", path.display())]
    Chown {
        path: PathBuf,
        uid: u32,
        #[source]
        source: std::io::Error,
    },
}

/// Create a token; its text is shown once by the caller.
pub async fn create(
    config: &Config,
    name: &str,
    scopes: &Scopes,
) -> Result<NewToken, TokenAdminError> {
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(TokenAdminError::BadName);
    }
    with_index(config, |index| async move {
        Ok(index.create_token(name, scopes).await?)
    })
    .await
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
    let path = config.index_path();
    let out = {
        let index = Index::open(&path).await?;
        f(index).await
    };
    restore_ownership(&path)?;
    out
}

/// When run as root, hand every index file to the owner of its directory.
fn restore_ownership(db: &Path) -> Result<(), TokenAdminError> {
    let Some(dir) = db.parent() else {
        return Ok(());
    };
    let Ok(dir_meta) = std::fs::metadata(dir) else {
        return Ok(());
    };
    if rustix::process::geteuid().as_raw() != 0 || dir_meta.uid() == 0 {
        return Ok(());
    }
    let (uid, gid) = (dir_meta.uid(), dir_meta.gid());
    for suffix in ["", "-wal", "-shm"] {
        let path = PathBuf::from(format!("{}{suffix}", db.display()));
        match std::fs::metadata(&path) {
            Ok(m) if m.uid() != uid => std::os::unix::fs::chown(&path, Some(uid), Some(gid))
                .map_err(|source| TokenAdminError::Chown { path, uid, source })?,
            _ => {}
        }
    }
    Ok(())
}
