//! `token create|list|revoke`: bearer-token management on the index database
//! directly, safe while the server runs (SQLite WAL; the server reads token
//! rows on every request, so a revocation applies at once).
//!
//! Run as root on a packaged install, these commands must neither leave files
//! the service cannot open nor let the service's user trick root: the index
//! lives in the service's `StateDirectory`, owned by its (dynamic) user, who
//! could have replaced `index.sqlite3-wal` with a symlink to any file root
//! may write or chown. SQLite opens every file of a database with
//! `O_NOFOLLOW`, so it never writes through such a link; after the database
//! is closed, [`restore_ownership`] gives each index file that is a regular
//! file back to the directory's owner with `fchownat(AT_SYMLINK_NOFOLLOW)`
//! relative to the directory it opened, so a link (or one swapped in
//! meanwhile) is at most re-owned itself, never followed.
//!
//! (Switching to the service's user instead cannot work under systemd: a
//! DynamicUser's state directory lives in root-only `/var/lib/private`,
//! reachable by the service only through its own mount namespace.)

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
    #[error("cannot give {} back to uid {uid}: {source}", path.display())]
    Chown {
        path: PathBuf,
        uid: u32,
        #[source]
        source: std::io::Error,
    },
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
    let path = config.index_path();
    // Even when opening fails, files it created are given back.
    let out = match Index::open(&path).await {
        Ok(index) => f(index).await,
        Err(e) => Err(e.into()),
    };
    restore_ownership(&path)?;
    out
}

/// When run as root, hand every index file that is a regular file to the
/// owner of its directory, following no symlink (see the module docs).
fn restore_ownership(db: &std::path::Path) -> Result<(), TokenAdminError> {
    use rustix::fs::{AtFlags, FileType, Mode, OFlags};
    let (Some(dir), Some(name)) = (db.parent(), db.file_name()) else {
        return Ok(());
    };
    if !rustix::process::geteuid().is_root() {
        return Ok(());
    }
    // The directory itself may be systemd's link in root-owned /var/lib
    // (asset-catalog -> private/asset-catalog): following that one is safe.
    let flags = OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC;
    let Ok(dirfd) = rustix::fs::open(dir, flags, Mode::empty()) else {
        return Ok(());
    };
    let Ok(dir_stat) = rustix::fs::fstat(&dirfd) else {
        return Ok(());
    };
    if dir_stat.st_uid == 0 {
        return Ok(());
    }
    let (uid, gid) = (
        rustix::fs::Uid::from_raw(dir_stat.st_uid),
        rustix::fs::Gid::from_raw(dir_stat.st_gid),
    );
    for suffix in ["", "-wal", "-shm"] {
        let mut file = name.to_os_string();
        file.push(suffix);
        let Ok(stat) = rustix::fs::statat(&dirfd, &file, AtFlags::SYMLINK_NOFOLLOW) else {
            continue;
        };
        let regular = FileType::from_raw_mode(stat.st_mode) == FileType::RegularFile;
        if regular && stat.st_uid != uid.as_raw() {
            rustix::fs::chownat(
                &dirfd,
                &file,
                Some(uid),
                Some(gid),
                AtFlags::SYMLINK_NOFOLLOW,
            )
            .map_err(|e| TokenAdminError::Chown {
                path: dir.join(&file),
                uid: uid.as_raw(),
                source: e.into(),
            })?;
        }
    }
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
