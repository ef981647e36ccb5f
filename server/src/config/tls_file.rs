//! Where the TLS certificate and key are read from. The packaged unit hands
//! every regular file of [`TLS_DIR`] to the service as the systemd credential
//! `tls_<file name>` (`LoadCredential=tls:/etc/asset-catalog/tls`): the
//! service runs as a dynamic user that cannot read a root-only key there. So a
//! configured path directly in [`TLS_DIR`] is read from
//! `$CREDENTIALS_DIRECTORY/tls_<file name>` when that credential exists, and
//! from the path itself otherwise (outside systemd, or a command run by root).
//! Any other path is always read as it is.

use std::fmt;
use std::path::{Path, PathBuf};

use super::RuntimeEnv;

/// The directory whose files the packaged unit delivers as `tls_*` credentials.
pub const TLS_DIR: &str = "/etc/asset-catalog/tls";
/// Prefix of those credentials' names (`LoadCredential=tls:…` adds `tls_`).
pub const TLS_CREDENTIAL_PREFIX: &str = "tls_";

/// A TLS file as the configuration names it, and the credential read instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFile {
    /// The path written in `server.toml`.
    pub configured: PathBuf,
    /// `$CREDENTIALS_DIRECTORY/tls_<name>`, when the unit delivered it.
    pub credential: Option<PathBuf>,
}

impl TlsFile {
    /// A file read as it is, never from a credential.
    pub fn plain(path: &Path) -> Self {
        Self {
            configured: path.to_path_buf(),
            credential: None,
        }
    }

    /// The file for `configured` under `runtime` (see the module docs).
    pub fn resolve(configured: &Path, runtime: &RuntimeEnv) -> Self {
        resolve_in(Path::new(TLS_DIR), configured, runtime)
    }

    /// The path actually read: the credential if there is one.
    pub fn read_path(&self) -> &Path {
        self.credential.as_deref().unwrap_or(&self.configured)
    }
}

impl fmt::Display for TlsFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.configured.display())?;
        if let Some(name) = self.credential.as_deref().and_then(Path::file_name) {
            write!(f, " (as systemd credential {})", name.to_string_lossy())?;
        }
        Ok(())
    }
}

fn resolve_in(tls_dir: &Path, configured: &Path, runtime: &RuntimeEnv) -> TlsFile {
    let credential = match (
        &runtime.credentials_directory,
        configured.parent(),
        configured.file_name(),
    ) {
        (Some(credentials), Some(parent), Some(name)) if parent == tls_dir => {
            let mut id = std::ffi::OsString::from(TLS_CREDENTIAL_PREFIX);
            id.push(name);
            Some(credentials.join(id)).filter(|path| path.is_file())
        }
        _ => None,
    };
    TlsFile {
        configured: configured.to_path_buf(),
        credential,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runtime(credentials: &Path) -> RuntimeEnv {
        RuntimeEnv {
            credentials_directory: Some(credentials.to_path_buf()),
            ..RuntimeEnv::default()
        }
    }

    #[test]
    fn a_file_in_the_tls_dir_is_read_from_its_credential() {
        let creds = tempfile::tempdir().expect("tempdir");
        std::fs::write(creds.path().join("tls_key.pem"), "key").expect("write");
        let tls_dir = Path::new("/etc/asset-catalog/tls");
        let key = resolve_in(tls_dir, &tls_dir.join("key.pem"), &runtime(creds.path()));
        assert_eq!(key.read_path(), creds.path().join("tls_key.pem"));
        assert_eq!(
            key.to_string(),
            "/etc/asset-catalog/tls/key.pem (as systemd credential tls_key.pem)"
        );
        // A trailing slash or doubled separator names the same directory.
        let odd = resolve_in(
            tls_dir,
            Path::new("/etc/asset-catalog//tls/key.pem"),
            &runtime(creds.path()),
        );
        assert_eq!(odd.read_path(), creds.path().join("tls_key.pem"));
    }

    #[test]
    fn the_path_itself_is_read_otherwise() {
        let creds = tempfile::tempdir().expect("tempdir");
        std::fs::write(creds.path().join("tls_key.pem"), "key").expect("write");
        let tls_dir = Path::new(TLS_DIR);
        // Not under systemd (no $CREDENTIALS_DIRECTORY): the path.
        let key = tls_dir.join("key.pem");
        let outside = resolve_in(tls_dir, &key, &RuntimeEnv::default());
        assert_eq!(outside.read_path(), key);
        assert_eq!(outside.to_string(), "/etc/asset-catalog/tls/key.pem");
        // Elsewhere than the TLS directory, or in a subdirectory of it: the path.
        for other in ["/srv/tls/key.pem", "/etc/asset-catalog/tls/old/key.pem"] {
            let file = resolve_in(tls_dir, Path::new(other), &runtime(creds.path()));
            assert_eq!(file.read_path(), Path::new(other));
        }
        // In the TLS directory but not delivered (e.g. a symlink, which
        // systemd skips): the path, whose error then names it.
        let cert = resolve_in(tls_dir, &tls_dir.join("cert.pem"), &runtime(creds.path()));
        assert_eq!(cert.read_path(), tls_dir.join("cert.pem"));
        assert_eq!(cert.credential, None);
    }

    #[test]
    fn the_packaged_directory_is_the_one_mapped() {
        let creds = tempfile::tempdir().expect("tempdir");
        std::fs::write(creds.path().join("tls_cert.pem"), "cert").expect("write");
        let file = TlsFile::resolve(
            Path::new("/etc/asset-catalog/tls/cert.pem"),
            &runtime(creds.path()),
        );
        assert_eq!(file.read_path(), creds.path().join("tls_cert.pem"));
        let plain = TlsFile::plain(Path::new("/etc/asset-catalog/tls/cert.pem"));
        assert_eq!(
            plain.read_path(),
            Path::new("/etc/asset-catalog/tls/cert.pem")
        );
    }
}
