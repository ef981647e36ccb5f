//! Loading the configuration in layers: built-in defaults → TOML file →
//! `ASSET_CATALOG__SECTION__KEY` environment variables (→ command line, applied
//! by the caller). Every problem is reported, one line each: parse errors name
//! the file, line and column; environment errors name the variable.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::{Config, RuntimeEnv};

/// Where the packaged configuration lives.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/asset-catalog/server.toml";
/// Prefix of environment overrides: `ASSET_CATALOG__STORAGE__URL=…`.
pub const ENV_PREFIX: &str = "ASSET_CATALOG__";

/// Which file the configuration came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigSource {
    /// The file given with `--config` or the default path, which existed.
    File(PathBuf),
    /// The default path did not exist: built-in defaults (plus environment).
    Defaults,
}

/// Why the configuration cannot be used: every problem, one line each.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", problems.join("\n"))]
pub struct ConfigError {
    pub problems: Vec<String>,
}

impl ConfigError {
    fn one(problem: String) -> Self {
        Self {
            problems: vec![problem],
        }
    }
}

impl Config {
    /// Load from `explicit` (`--config`; must exist) or the default path (may be
    /// missing), apply overrides from `env`, then validate.
    pub fn load(
        explicit: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<(Self, ConfigSource), ConfigError> {
        let env: Vec<(String, String)> = env.into_iter().collect();
        let (text, source) = read_file(explicit)?;
        let origin = match &source {
            ConfigSource::File(path) => path.display().to_string(),
            ConfigSource::Defaults => "(built-in defaults)".to_string(),
        };
        let mut config = parse_layers(&text, &origin, &env)?;
        config.runtime = runtime_env(&env);
        let problems = config.validate();
        if problems.is_empty() {
            Ok((config, source))
        } else {
            Err(ConfigError { problems })
        }
    }

    /// Load using the real process environment.
    pub fn load_from_process(explicit: Option<&Path>) -> Result<(Self, ConfigSource), ConfigError> {
        Self::load(explicit, std::env::vars())
    }
}

fn read_file(explicit: Option<&Path>) -> Result<(String, ConfigSource), ConfigError> {
    let path = explicit.unwrap_or(Path::new(DEFAULT_CONFIG_PATH));
    match std::fs::read_to_string(path) {
        Ok(text) => Ok((text, ConfigSource::File(path.to_path_buf()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && explicit.is_none() => {
            Ok((String::new(), ConfigSource::Defaults))
        }
        Err(e) => Err(ConfigError::one(format!(
            "{}: cannot read the configuration file: {e}",
            path.display()
        ))),
    }
}

/// Parse the file (for line-accurate errors), then overlay the environment.
fn parse_layers(text: &str, origin: &str, env: &[(String, String)]) -> Result<Config, ConfigError> {
    if let Err(e) = toml::from_str::<Config>(text) {
        return Err(ConfigError::one(describe_toml_error(origin, text, &e)));
    }
    let mut table: toml::Table = toml::from_str(text)
        .map_err(|e| ConfigError::one(describe_toml_error(origin, text, &e)))?;
    let mut problems = Vec::new();
    let overrides = env.iter().filter(|(k, _)| k.starts_with(ENV_PREFIX));
    for (name, value) in overrides {
        if let Err(problem) = apply_override(&mut table, name, value) {
            problems.push(problem);
        }
    }
    if !problems.is_empty() {
        return Err(ConfigError { problems });
    }
    Config::deserialize(table).map_err(|e| {
        ConfigError::one(format!(
            "environment override ({ENV_PREFIX}SECTION__KEY): {}",
            e.message().trim()
        ))
    })
}

/// `ASSET_CATALOG__SERVER__LISTEN=0.0.0.0:8000` → `table.server.listen`.
/// The value's type follows the key's built-in default (integer, boolean, else string).
fn apply_override(table: &mut toml::Table, name: &str, raw: &str) -> Result<(), String> {
    let rest = &name[ENV_PREFIX.len()..];
    let parts: Vec<String> = rest.split("__").map(str::to_ascii_lowercase).collect();
    let [section, key] = parts.as_slice() else {
        return Err(format!(
            "{name}: environment overrides are named {ENV_PREFIX}SECTION__KEY (e.g. {ENV_PREFIX}STORAGE__URL)"
        ));
    };
    let value = typed_value(section, key, raw).map_err(|what| format!("{name}: {what}"))?;
    let entry = table
        .entry(section.clone())
        .or_insert_with(|| toml::Value::Table(toml::Table::new()));
    match entry {
        toml::Value::Table(section_table) => {
            section_table.insert(key.clone(), value);
            Ok(())
        }
        _ => Err(format!("{name}: [{section}] is not a section")),
    }
}

fn typed_value(section: &str, key: &str, raw: &str) -> Result<toml::Value, String> {
    let defaults = toml::Table::try_from(Config::default()).unwrap_or_default();
    let default = defaults
        .get(section)
        .and_then(|s| s.as_table())
        .and_then(|s| s.get(key));
    match default {
        Some(toml::Value::Integer(_)) => raw
            .trim()
            .parse::<i64>()
            .map(toml::Value::Integer)
            .map_err(|_| format!("expected a whole number, got {raw:?}")),
        Some(toml::Value::Boolean(_)) => match raw.trim() {
            "true" | "1" | "yes" => Ok(toml::Value::Boolean(true)),
            "false" | "0" | "no" => Ok(toml::Value::Boolean(false)),
            _ => Err(format!("expected true or false, got {raw:?}")),
        },
        _ => Ok(toml::Value::String(raw.to_string())),
    }
}

fn runtime_env(env: &[(String, String)]) -> RuntimeEnv {
    let get = |name: &str| {
        env.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    };
    RuntimeEnv {
        // systemd passes one path per StateDirectory= entry, separated by ':'.
        state_directory: get("STATE_DIRECTORY")
            .and_then(|v| v.split(':').next())
            .map(PathBuf::from),
        credentials_directory: get("CREDENTIALS_DIRECTORY").map(PathBuf::from),
    }
}

/// `FILE:LINE:COL: message` from a toml error's byte span.
fn describe_toml_error(origin: &str, text: &str, error: &toml::de::Error) -> String {
    let message = error.message().trim().replace('\n', " ");
    match error.span() {
        Some(span) => {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before
                .rfind('\n')
                .map_or(before.len(), |i| before.len() - i - 1)
                + 1;
            format!("{origin}:{line}:{column}: {message}")
        }
        None => format!("{origin}: {message}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn load_text(text: &str, vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("server.toml");
        std::fs::write(&path, text).expect("write");
        Config::load(Some(&path), env(vars)).map(|(c, _)| c)
    }

    #[test]
    fn file_then_env_layers() {
        let text = "[server]\nlisten = \"127.0.0.1:9000\"\nstate_dir = \"/tmp/x\"\n";
        let config = load_text(
            text,
            &[
                ("ASSET_CATALOG__SERVER__MAX_UPLOAD_BYTES", "1024"),
                ("ASSET_CATALOG__METRICS__ENABLED", "false"),
                ("ASSET_CATALOG__STORAGE__URL", "memory://"),
                ("CREDENTIALS_DIRECTORY", "/run/credentials/x"),
            ],
        )
        .expect("valid");
        assert_eq!(config.server.listen, "127.0.0.1:9000");
        assert_eq!(config.server.max_upload_bytes, 1024);
        assert!(!config.metrics.enabled);
        assert_eq!(config.storage_url(), "memory://");
        assert_eq!(
            config.runtime.credentials_directory,
            Some(PathBuf::from("/run/credentials/x"))
        );
    }

    #[test]
    fn parse_errors_name_file_line_and_column() {
        let err = load_text("[server]\nlisten = \"x\"\nlisten_typo = 1\n", &[]).expect_err("bad");
        assert_eq!(err.problems.len(), 1);
        let line = &err.problems[0];
        assert!(line.contains("server.toml:3:1:"), "{line}");
        assert!(line.contains("listen_typo"), "{line}");
    }

    #[test]
    fn env_errors_name_the_variable() {
        let err = load_text(
            "",
            &[
                ("ASSET_CATALOG__SERVER__MAX_UPLOAD_BYTES", "lots"),
                ("ASSET_CATALOG__NOPE", "1"),
            ],
        )
        .expect_err("bad");
        assert_eq!(err.problems.len(), 2, "{err}");
        assert!(err.problems[0].starts_with("ASSET_CATALOG__SERVER__MAX_UPLOAD_BYTES:"));
        let unknown = load_text("", &[("ASSET_CATALOG__SERVER__LISSEN", "x")]).expect_err("bad");
        assert!(unknown.problems[0].contains("lissen"), "{unknown}");
    }

    #[test]
    fn missing_explicit_file_is_an_error_but_missing_default_is_not() {
        let err = Config::load(Some(Path::new("/nonexistent/server.toml")), env(&[]))
            .expect_err("missing");
        assert!(err.problems[0].contains("/nonexistent/server.toml"));
    }

    #[test]
    fn validation_reports_every_problem() {
        let text = "[server]\nlisten = \"nope\"\nmax_upload_bytes = 0\n[storage]\npart_size_bytes = 1\n[log]\nlevel = \"==\"\n";
        let err = load_text(text, &[]).expect_err("invalid");
        assert_eq!(err.problems.len(), 4, "{err}");
    }
}
