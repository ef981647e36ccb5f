//! `FileConfig::validate`: checks every key, collects every problem (one
//! line each, saying what to change) and resolves the result into
//! [`Settings`]: absolute watch roots, the token, the ignore matcher, durations.

use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use super::{ConfigError, FileConfig, Secret, default_client_id, valid_client_id};
use crate::ignore::IgnoreSet;
use crate::paths::Paths;

/// A watched directory and the label that prefixes its files' paths on the
/// server (`<label>/<path inside the root>`), its base name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Root {
    pub path: PathBuf,
    pub label: String,
}

/// Files under this size are "small": they go up through their own, wider
/// window of uploads (`small_upload_concurrency`).
pub const SMALL_FILE_BYTES: u64 = 1 << 20;

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    pub server: url::Url,
    pub client_id: String,
    pub token: Option<Secret>,
    pub roots: Vec<Root>,
    pub ignore: IgnoreSet,
    pub quiet_period: Duration,
    pub upload_concurrency: usize,
    /// Uploads of files under [`SMALL_FILE_BYTES`] in flight at once.
    pub small_upload_concurrency: usize,
    pub hash_workers: usize,
    /// `None` disables the periodic rescan.
    pub rescan_interval: Option<Duration>,
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
    /// Files of at least this size go up as resumable (tus) uploads.
    pub resumable_threshold: u64,
    /// Extra trusted CA certificates (PEM) for an `https://` server.
    pub ca_file: Option<PathBuf>,
}

/// What validation needs from the environment.
#[derive(Debug, Clone)]
pub struct Environment<'a> {
    pub home: Option<PathBuf>,
    pub user: Option<String>,
    pub credentials_dir: Option<PathBuf>,
    pub paths: &'a Paths,
}

impl<'a> Environment<'a> {
    /// Take HOME, USER and CREDENTIALS_DIRECTORY from `env`.
    pub fn from_vars(env: &[(String, String)], paths: &'a Paths) -> Self {
        let get = |k: &str| env.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone());
        Self {
            home: get("HOME").map(PathBuf::from),
            user: get("USER").or_else(|| get("LOGNAME")),
            credentials_dir: get("CREDENTIALS_DIRECTORY").map(PathBuf::from),
            paths,
        }
    }
}

impl FileConfig {
    /// Check everything; `source_name` names the config in the error.
    pub fn validate(
        &self,
        source_name: &str,
        env: &Environment<'_>,
    ) -> Result<Settings, ConfigError> {
        let mut problems = Vec::new();
        let server = check_server(&self.server, self.allow_plain_http, &mut problems);
        let ca_file = self
            .ca_file
            .as_ref()
            .map(|f| expand_tilde(f, env.home.as_deref()));
        if let Some(f) = &ca_file
            && let Err(e) = read_ca_file(f)
        {
            problems.push(e);
        }
        let client_id = match &self.client_id {
            Some(id) if !valid_client_id(id) => {
                problems.push(format!(
                    "client_id {id:?}: use 1 to 64 characters from A-Z a-z 0-9 . _ -"
                ));
                id.clone()
            }
            Some(id) => id.clone(),
            None => default_client_id(env.user.as_deref()),
        };
        let token = self.resolve_token(env, &mut problems);
        let roots = self.check_roots(env, &mut problems);
        let ignore = IgnoreSet::new(&self.ignore).unwrap_or_else(|errs| {
            problems.extend(errs);
            IgnoreSet::empty()
        });
        self.check_numbers(&mut problems);
        match server {
            Some(server) if problems.is_empty() => Ok(Settings {
                server,
                client_id,
                token,
                roots,
                ignore,
                quiet_period: Duration::from_millis(self.quiet_period_ms),
                upload_concurrency: self.upload_concurrency,
                small_upload_concurrency: self.small_upload_concurrency,
                hash_workers: self.hash_workers,
                rescan_interval: (self.rescan_interval_secs > 0)
                    .then(|| Duration::from_secs(self.rescan_interval_secs)),
                connect_timeout: Duration::from_secs(self.connect_timeout_secs),
                request_timeout: Duration::from_secs(self.request_timeout_secs),
                resumable_threshold: self.resumable_threshold_bytes,
                ca_file,
            }),
            _ => Err(ConfigError::Invalid {
                source_name: source_name.to_owned(),
                problems,
            }),
        }
    }

    fn check_numbers(&self, problems: &mut Vec<String>) {
        let usize_u64 = |v: usize| u64::try_from(v).unwrap_or(u64::MAX);
        check_range(
            "quiet_period_ms",
            self.quiet_period_ms,
            0,
            600_000,
            problems,
        );
        check_range(
            "upload_concurrency",
            usize_u64(self.upload_concurrency),
            1,
            64,
            problems,
        );
        check_range(
            "small_upload_concurrency",
            usize_u64(self.small_upload_concurrency),
            1,
            256,
            problems,
        );
        check_range(
            "hash_workers",
            usize_u64(self.hash_workers),
            1,
            256,
            problems,
        );
        check_range(
            "connect_timeout_secs",
            self.connect_timeout_secs,
            1,
            3600,
            problems,
        );
        check_range(
            "request_timeout_secs",
            self.request_timeout_secs,
            1,
            86_400,
            problems,
        );
        // Below the server's smallest part (5 MiB) a resumable upload is one
        // part anyway; 1 MiB still lets tests cross parts with small files.
        check_range(
            "resumable_threshold_bytes",
            self.resumable_threshold_bytes,
            1 << 20,
            1 << 50,
            problems,
        );
    }

    fn check_roots(&self, env: &Environment<'_>, problems: &mut Vec<String>) -> Vec<Root> {
        let mut roots: Vec<Root> = Vec::new();
        for raw in &self.watch {
            let path = normalize(&expand_tilde(Path::new(raw), env.home.as_deref()));
            if !path.is_absolute() {
                problems.push(format!(
                    "watch {raw:?}: use an absolute path or one starting with ~/"
                ));
                continue;
            }
            if path == Path::new("/") {
                problems
                    .push("watch \"/\": watching the whole file system is not supported".into());
                continue;
            }
            for own in [&env.paths.state_dir, &env.paths.cache_dir] {
                if own.starts_with(&path) {
                    problems.push(format!(
                        "watch {raw:?} contains {} where the watcher keeps its own files; \
                         watch subdirectories instead or move XDG_STATE_HOME/XDG_CACHE_HOME",
                        own.display()
                    ));
                }
            }
            if let Some(other) = roots
                .iter()
                .find(|r| r.path.starts_with(&path) || path.starts_with(&r.path))
            {
                problems.push(format!(
                    "watch {raw:?} overlaps {}: list each directory tree once",
                    other.path.display()
                ));
                continue;
            }
            let label = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            if roots.iter().any(|r| r.label == label) {
                problems.push(format!(
                    "watch {raw:?}: another watched directory is also named {label:?}; \
                     the server tells files apart by this name, so rename or drop one"
                ));
                continue;
            }
            roots.push(Root { path, label });
        }
        roots
    }
}

fn check_server(raw: &str, allow_plain_http: bool, problems: &mut Vec<String>) -> Option<url::Url> {
    match url::Url::parse(raw) {
        Ok(u) if u.scheme() == "https" && u.host().is_some() => Some(u),
        Ok(u) if u.scheme() == "http" && u.host().is_some() => {
            let loopback = match u.host() {
                Some(url::Host::Domain(d)) => d == "localhost",
                Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
                Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
                None => false,
            };
            if !loopback && !allow_plain_http {
                problems.push(format!(
                    "server {raw:?}: plain http to another machine would send the token in clear; \
                     use https:// (with ca_file for a private CA) or set allow_plain_http = true"
                ));
            }
            Some(u)
        }
        Ok(_) => {
            problems.push(format!(
                "server {raw:?}: use an http(s):// URL with a host, e.g. https://catalog.example.org:8000"
            ));
            None
        }
        Err(e) => {
            problems.push(format!(
                "server {raw:?}: not a URL ({e}); e.g. http://127.0.0.1:8000"
            ));
            None
        }
    }
}

/// The certificates in a PEM `ca_file`; an error names the file and the fix.
pub fn read_ca_file(
    path: &Path,
) -> Result<Vec<rustls::pki_types::CertificateDer<'static>>, String> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let fail = |e: &dyn std::fmt::Display| format!("ca_file {}: {e}", path.display());
    let certs: Vec<_> = CertificateDer::pem_file_iter(path)
        .map_err(|e| fail(&e))?
        .collect::<Result<_, _>>()
        .map_err(|e| fail(&e))?;
    if certs.is_empty() {
        return Err(fail(
            &"no PEM certificate (-----BEGIN CERTIFICATE-----) in it",
        ));
    }
    Ok(certs)
}

fn check_range(key: &str, value: u64, min: u64, max: u64, problems: &mut Vec<String>) {
    if !(min..=max).contains(&value) {
        problems.push(format!("{key} = {value}: use a value from {min} to {max}"));
    }
}

/// `~` and `~/x` become paths in `home`; anything else is unchanged.
pub fn expand_tilde(path: &Path, home: Option<&Path>) -> PathBuf {
    match (path.strip_prefix("~"), home) {
        (Ok(rest), Some(home)) => home.join(rest),
        _ => path.to_path_buf(),
    }
}

/// Lexically drop `.` and resolve `..` (no symlinks are followed).
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(dir: &Path) -> Paths {
        Paths {
            config_file: dir.join("cfg/config.toml"),
            state_dir: dir.join("state/asset-watcher"),
            cache_dir: dir.join("cache/asset-watcher"),
        }
    }

    fn env<'a>(p: &'a Paths, home: &Path) -> Environment<'a> {
        Environment {
            home: Some(home.to_path_buf()),
            user: Some("alice".into()),
            credentials_dir: None,
            paths: p,
        }
    }

    #[test]
    fn defaults_validate() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = paths(dir.path());
        let s = FileConfig::default()
            .validate("defaults", &env(&p, dir.path()))
            .expect("valid");
        assert_eq!(s.server.as_str(), "http://127.0.0.1:8000/");
        assert!(s.client_id.ends_with("-alice"), "{}", s.client_id);
        assert!(s.roots.is_empty());
        assert!(s.token.is_none());
    }

    #[test]
    fn every_problem_is_listed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = paths(dir.path());
        let cfg = FileConfig {
            server: "ftp://x".into(),
            client_id: Some("bad id!".into()),
            watch: vec![
                "relative".into(),
                "~/a".into(),
                "~/a/b".into(),
                dir.path().display().to_string(),
            ],
            ignore: vec!["[".into()],
            upload_concurrency: 0,
            small_upload_concurrency: 300,
            resumable_threshold_bytes: 4096,
            ..FileConfig::default()
        };
        let e = cfg
            .validate("test.toml", &env(&p, dir.path()))
            .expect_err("invalid");
        let ConfigError::Invalid { problems, .. } = &e else {
            panic!("unexpected {e}");
        };
        assert_eq!(problems.len(), 11, "{e}");
        assert!(
            e.to_string()
                .contains("resumable_threshold_bytes = 4096: use a value from 1048576"),
            "{e}"
        );
        assert!(
            e.to_string()
                .contains("small_upload_concurrency = 300: use a value from 1"),
            "{e}"
        );
        assert!(
            e.to_string().starts_with("test.toml has 11 problem(s):"),
            "{e}"
        );
    }

    #[test]
    fn roots_are_expanded_and_labelled() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = paths(dir.path());
        let cfg = FileConfig {
            watch: vec!["~/Pictures/".into(), "/srv/./media/../music".into()],
            ..FileConfig::default()
        };
        let s = cfg
            .validate("t", &env(&p, Path::new("/home/alice")))
            .expect("valid");
        assert_eq!(s.roots[0].path, Path::new("/home/alice/Pictures"));
        assert_eq!(s.roots[0].label, "Pictures");
        assert_eq!(s.roots[1].path, Path::new("/srv/music"));
    }

    #[test]
    fn token_file_must_be_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let p = paths(dir.path());
        let f = dir.path().join("token");
        std::fs::write(&f, "s3cret\n").expect("write");
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let cfg = FileConfig {
            token_file: Some(f.clone()),
            ..FileConfig::default()
        };
        let e = cfg
            .validate("t", &env(&p, dir.path()))
            .expect_err("world readable");
        assert!(e.to_string().contains("chmod 600"), "{e}");
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        let s = cfg.validate("t", &env(&p, dir.path())).expect("private");
        assert_eq!(s.token.as_ref().map(Secret::expose), Some("s3cret"));
    }
}
