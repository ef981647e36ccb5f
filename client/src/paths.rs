//! Where the watcher keeps its files, resolved through the XDG base
//! directories (`xdg` crate): config in `$XDG_CONFIG_HOME/asset-watcher/`,
//! state (the SQLite database and the lock) in `$XDG_STATE_HOME/asset-watcher/`,
//! cache in `$XDG_CACHE_HOME/asset-watcher/`. Nothing here creates anything;
//! `ensure_state_dir` does, on demand.

use std::path::{Path, PathBuf};

use crate::APP_NAME;

/// Config file name inside the config directory.
pub const CONFIG_FILE: &str = "config.toml";
/// State database file name inside the state directory.
pub const STATE_DB: &str = "state.sqlite3";
/// Lock file that keeps two watchers off one state database.
pub const LOCK_FILE: &str = "asset-watcher.lock";

/// Resolved per-user locations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paths {
    pub config_file: PathBuf,
    pub state_dir: PathBuf,
    pub cache_dir: PathBuf,
}

/// The XDG environment gave no usable home directory.
#[derive(Debug, thiserror::Error)]
pub enum PathsError {
    #[error("cannot find the {0} directory: set HOME or XDG_{1}_HOME to an absolute path")]
    NoHome(&'static str, &'static str),
    #[error("cannot create the state directory {path}: {source}")]
    Create {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl Paths {
    /// Resolve from the process environment; `config_override` replaces the
    /// config file location (the `--config` option).
    pub fn from_env(config_override: Option<&Path>) -> Result<Self, PathsError> {
        let dirs = xdg::BaseDirectories::with_prefix(APP_NAME);
        let config_file = match config_override {
            Some(p) => p.to_path_buf(),
            None => dirs
                .get_config_file(CONFIG_FILE)
                .ok_or(PathsError::NoHome("config", "CONFIG"))?,
        };
        let state_dir = dirs
            .get_state_home()
            .ok_or(PathsError::NoHome("state", "STATE"))?;
        let cache_dir = dirs
            .get_cache_home()
            .ok_or(PathsError::NoHome("cache", "CACHE"))?;
        Ok(Self {
            config_file,
            state_dir,
            cache_dir,
        })
    }

    /// The SQLite state database.
    pub fn state_db(&self) -> PathBuf {
        self.state_dir.join(STATE_DB)
    }

    /// The lock file next to the state database.
    pub fn lock_file(&self) -> PathBuf {
        self.state_dir.join(LOCK_FILE)
    }

    /// Create the state directory (mode 0700) if it does not exist.
    pub fn ensure_state_dir(&self) -> Result<(), PathsError> {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.state_dir)
            .map_err(|source| PathsError::Create {
                path: self.state_dir.clone(),
                source,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn override_replaces_only_the_config_file() {
        let p = Paths::from_env(Some(Path::new("/tmp/x.toml"))).expect("paths");
        assert_eq!(p.config_file, Path::new("/tmp/x.toml"));
        assert!(p.state_db().ends_with("asset-watcher/state.sqlite3"));
        assert!(p.lock_file().starts_with(&p.state_dir));
    }
}
