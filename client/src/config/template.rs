//! `asset-watcher init`: renders a commented config file holding every key
//! with its default, and writes it only where none exists (or with `--force`),
//! atomically and readable only by the user.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::{DEFAULT_IGNORE, default_hash_workers, default_server};

/// What `init` was asked to put in the file.
#[derive(Debug, Clone, Default)]
pub struct InitOptions {
    pub server: Option<String>,
    pub watch: Vec<String>,
    pub client_id: Option<String>,
    pub token_file: Option<String>,
    pub force: bool,
}

/// `init` could not write the file.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error("{0} already exists; pass --force to replace it")]
    Exists(PathBuf),
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

fn quote(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

/// The file `init` writes; `@NAME@` markers are filled in by `render_template`.
const TEMPLATE: &str = r#"# asset-watcher configuration, written by `asset-watcher init`.
# Check it with `asset-watcher check-config`. Every key is optional; unset
# keys take the default shown. ASSET_WATCHER__<KEY> environment variables
# override keys here, e.g. ASSET_WATCHER__SERVER=http://catalog:8000.

# Base URL of the asset-catalog server (plain http).
server = @SERVER@

# Names this machine and user on the server: 1-64 of A-Z a-z 0-9 . _ -
# Default: "<hostname>-<user>".
@CLIENT_ID@
# Bearer token for the server, if it requires one. Keep it in a file only
# you can read (chmod 600); `token = "..."` works too but is discouraged.
# Under systemd, a credential named "asset-watcher-token" is used when
# neither is set.
@TOKEN_FILE@
# Directories to watch, recursively ("~" is your home directory). Files
# already there are uploaded at start; new and changed ones as they appear.
# The watcher never writes inside them and never modifies a file.
@WATCH@
# Never uploaded. A pattern without "/" matches a file or directory name at
# any depth; one with "/" matches the path inside the watched directory; a
# trailing "/" matches directories only. Setting this replaces the list.
ignore = [
@IGNORE@]

# Upload a file this long after it was closed or moved into place (a file
# still open for writing waits for its close, or 30 s without writes).
quiet_period_ms = 50

# Files sent to the server at the same time.
upload_concurrency = 4

# Small files (under 1 MiB) sent at the same time, on top of those: each
# costs a round trip more than bandwidth, so more of them overlap.
small_upload_concurrency = 16

# Threads hashing files (default: one per CPU, here @HASH_WORKERS@).
#hash_workers = @HASH_WORKERS@

# Full rescan to catch anything inotify could not report; 0 turns it off.
# Unchanged files are never read again, so a rescan is cheap.
rescan_interval_secs = 3600

# Network timeouts in seconds: connecting, and waiting for an answer (or
# for an upload to make progress).
connect_timeout_secs = 10
request_timeout_secs = 60

# Files at least this large (bytes; default 64 MiB) go up as resumable
# uploads: after a network cut or a restart of either side the upload
# continues where the server last committed it instead of starting over.
# Smaller files go up in one request.
resumable_threshold_bytes = 67108864
"#;

fn list_items<'a>(items: impl Iterator<Item = &'a str>) -> String {
    items.map(|i| format!("  {},\n", quote(i))).collect()
}

/// The commented config text.
pub fn render_template(opts: &InitOptions) -> String {
    let server = opts.server.clone().unwrap_or_else(default_server);
    let watch = if opts.watch.is_empty() {
        "watch = [\n  # \"~/Pictures\",\n]\n".to_owned()
    } else {
        format!(
            "watch = [\n{}]\n",
            list_items(opts.watch.iter().map(String::as_str))
        )
    };
    let client_id = match &opts.client_id {
        Some(id) => format!("client_id = {}\n", quote(id)),
        None => "#client_id = \"myhost-alice\"\n".to_owned(),
    };
    let token_file = match &opts.token_file {
        Some(f) => format!("token_file = {}\n", quote(f)),
        None => "#token_file = \"~/.config/asset-watcher/token\"\n".to_owned(),
    };
    TEMPLATE
        .replace("@SERVER@", &quote(&server))
        .replace("@CLIENT_ID@", &client_id)
        .replace("@TOKEN_FILE@", &token_file)
        .replace("@WATCH@", &watch)
        .replace("@IGNORE@", &list_items(DEFAULT_IGNORE.iter().copied()))
        .replace("@HASH_WORKERS@", &default_hash_workers().to_string())
}

/// Write the rendered config to `path` (mode 0600, parent created), refusing
/// to replace an existing file unless `opts.force`.
pub fn write_new_config(path: &Path, opts: &InitOptions) -> Result<(), InitError> {
    use std::os::unix::fs::OpenOptionsExt;
    if path.exists() && !opts.force {
        return Err(InitError::Exists(path.to_path_buf()));
    }
    let err = |source| InitError::Write {
        path: path.to_path_buf(),
        source,
    };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(err)?;
    }
    let tmp = path.with_extension("toml.new");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(err)?;
    f.write_all(render_template(opts).as_bytes()).map_err(err)?;
    f.sync_all().map_err(err)?;
    std::fs::rename(&tmp, path).map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::FileConfig;

    #[test]
    fn template_parses_with_and_without_options() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("a/config.toml");
        write_new_config(&p, &InitOptions::default()).expect("write");
        let l = FileConfig::load(&p, &[]).expect("parse default template");
        assert!(l.config.watch.is_empty());
        assert_eq!(l.config.ignore.len(), DEFAULT_IGNORE.len());
        assert_eq!(
            l.config.resumable_threshold_bytes,
            crate::config::DEFAULT_RESUMABLE_THRESHOLD_BYTES
        );

        let opts = InitOptions {
            server: Some("http://catalog:9000".into()),
            watch: vec!["~/Pictures".into(), "/srv/a \"b\"".into()],
            client_id: Some("box-1".into()),
            token_file: Some("~/.tok".into()),
            force: false,
        };
        let e = write_new_config(&p, &opts).expect_err("exists");
        assert!(e.to_string().contains("--force"), "{e}");
        write_new_config(
            &p,
            &InitOptions {
                force: true,
                ..opts
            },
        )
        .expect("force");
        let l = FileConfig::load(&p, &[]).expect("parse");
        assert_eq!(l.config.server, "http://catalog:9000");
        assert_eq!(l.config.watch[1], "/srv/a \"b\"");
        assert_eq!(l.config.client_id.as_deref(), Some("box-1"));
    }
}
