//! Secrets: read from a `*_file` key (refused when group or others may read
//! it) or from a systemd credential under `$CREDENTIALS_DIRECTORY`. The value
//! is held in [`SecretString`], whose `Debug` never shows it.

use std::fmt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::{RuntimeEnv, StorageConfig};

/// A secret value with a redacted `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretString(String);

impl SecretString {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself; call only where it is handed to a client library.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretString(<redacted>)")
    }
}

/// Why a secret could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error(
        "{key}: {} is readable by group or others (mode {mode:o}); run `chmod 600 {}`",
        path.display(),
        path.display()
    )]
    TooOpen {
        key: &'static str,
        path: PathBuf,
        mode: u32,
    },
    #[error("{key}: cannot read {}: {source}", path.display())]
    Read {
        key: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{key}: {} is empty", path.display())]
    Empty { key: &'static str, path: PathBuf },
}

/// The S3 secret: the file if configured, else the credential if present, else `None`.
pub(super) fn resolve(
    storage: &StorageConfig,
    runtime: &RuntimeEnv,
) -> Result<Option<SecretString>, SecretError> {
    file_or_credential(
        (
            "storage.secret_access_key_file",
            storage.secret_access_key_file.as_deref(),
        ),
        (
            "storage.secret_access_key_credential",
            &storage.secret_access_key_credential,
        ),
        runtime,
    )
}

/// A secret from the file named by config key `file.0` if set, else from
/// the credential `credential.1` if present, else `None`.
pub(super) fn file_or_credential(
    file: (&'static str, Option<&Path>),
    credential: (&'static str, &str),
    runtime: &RuntimeEnv,
) -> Result<Option<SecretString>, SecretError> {
    if let (key, Some(path)) = file {
        check_private(key, path)?;
        return read_secret(key, path).map(Some);
    }
    let Some(dir) = &runtime.credentials_directory else {
        return Ok(None);
    };
    let path = dir.join(credential.1);
    if !path.exists() {
        return Ok(None);
    }
    // systemd creates credentials owned by the service with a private directory.
    read_secret(credential.0, &path).map(Some)
}

/// Refuse a secret file that group or others can read.
pub(super) fn check_private(key: &'static str, path: &Path) -> Result<(), SecretError> {
    let meta = std::fs::metadata(path).map_err(|source| SecretError::Read {
        key,
        path: path.to_path_buf(),
        source,
    })?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(SecretError::TooOpen {
            key,
            path: path.to_path_buf(),
            mode,
        });
    }
    Ok(())
}

fn read_secret(key: &'static str, path: &Path) -> Result<SecretString, SecretError> {
    let text = std::fs::read_to_string(path).map_err(|source| SecretError::Read {
        key,
        path: path.to_path_buf(),
        source,
    })?;
    let value = text.trim_end_matches(['\n', '\r']);
    if value.is_empty() {
        return Err(SecretError::Empty {
            key,
            path: path.to_path_buf(),
        });
    }
    Ok(SecretString::new(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(path: &Path, text: &str, mode: u32) {
        std::fs::write(path, text).expect("write");
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
    }

    #[test]
    fn file_secret_must_be_private() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("secret");
        write(&path, "s3cr3t\n", 0o644);
        let storage = StorageConfig {
            secret_access_key_file: Some(path.clone()),
            ..StorageConfig::default()
        };
        let err = resolve(&storage, &RuntimeEnv::default()).expect_err("too open");
        assert!(err.to_string().contains("chmod 600"), "{err}");
        write(&path, "s3cr3t\n", 0o600);
        let secret = resolve(&storage, &RuntimeEnv::default())
            .expect("ok")
            .expect("some");
        assert_eq!(secret.expose(), "s3cr3t");
        assert_eq!(format!("{secret:?}"), "SecretString(<redacted>)");
    }

    #[test]
    fn credential_directory_is_the_fallback() {
        let dir = tempfile::tempdir().expect("tempdir");
        write(&dir.path().join("s3-secret-access-key"), "fromcred", 0o400);
        let runtime = RuntimeEnv {
            credentials_directory: Some(dir.path().to_path_buf()),
            ..RuntimeEnv::default()
        };
        let secret = resolve(&StorageConfig::default(), &runtime)
            .expect("ok")
            .expect("some");
        assert_eq!(secret.expose(), "fromcred");
    }
}
