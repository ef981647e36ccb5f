//! The API token: from `token`, a `token_file` (refused when other users
//! can read it) or the systemd credential, checked to be one word of
//! visible ASCII and kept as a [`Secret`] from then on.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use super::{Environment, FileConfig, Secret, expand_tilde};

/// Name of the systemd credential that holds the token (`LoadCredential=token:...`).
pub const TOKEN_CREDENTIAL: &str = "asset-watcher-token";

impl FileConfig {
    /// The token the config names, if any; a problem is added to `problems`.
    pub(super) fn resolve_token(
        &self,
        env: &Environment<'_>,
        problems: &mut Vec<String>,
    ) -> Option<Secret> {
        let value = match (&self.token, &self.token_file) {
            (Some(_), Some(_)) => {
                problems.push("token and token_file are both set: keep only token_file".into());
                return None;
            }
            (Some(t), None) => t.expose().to_owned(),
            (None, Some(f)) => read_token_file(&expand_tilde(f, env.home.as_deref()), problems)?,
            (None, None) => {
                let cred = env.credentials_dir.as_ref()?.join(TOKEN_CREDENTIAL);
                if !cred.exists() {
                    return None;
                }
                read_token_file(&cred, problems)?
            }
        };
        if value.is_empty() || !value.bytes().all(|b| b.is_ascii_graphic()) {
            problems.push("token: must be non-empty visible ASCII without spaces".into());
            return None;
        }
        Some(Secret::new(value))
    }
}

/// Read a token file, refusing one that others can read.
fn read_token_file(path: &Path, problems: &mut Vec<String>) -> Option<String> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) => {
            problems.push(format!(
                "token_file {}: cannot read it ({e})",
                path.display()
            ));
            return None;
        }
    };
    if meta.mode() & 0o077 != 0 {
        problems.push(format!(
            "token_file {}: readable by other users; run `chmod 600 {}`",
            path.display(),
            path.display()
        ));
        return None;
    }
    match std::fs::read_to_string(path) {
        Ok(s) => Some(s.trim().to_owned()),
        Err(e) => {
            problems.push(format!(
                "token_file {}: cannot read it ({e})",
                path.display()
            ));
            None
        }
    }
}
