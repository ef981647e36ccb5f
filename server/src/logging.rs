//! Logging with `tracing`: to journald with structured fields when stderr is
//! the journal stream systemd set up (`$JOURNAL_STREAM` names stderr's device
//! and inode), else human-readable lines on stderr. The filter is the
//! config's `[log] level`, unless `$RUST_LOG` is set.

use std::os::unix::fs::MetadataExt;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Where log lines go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogTarget {
    Journald,
    Stderr,
}

/// Why logging could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum LoggingError {
    #[error("invalid log filter {filter:?}: {message}")]
    Filter { filter: String, message: String },
    #[error("a global logger is already installed: {0}")]
    AlreadySet(String),
}

/// Install the global subscriber. `level` is the config's filter.
pub fn init(level: &str) -> Result<LogTarget, LoggingError> {
    let filter_text = std::env::var("RUST_LOG")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| level.to_string());
    let filter = EnvFilter::builder()
        .parse(&filter_text)
        .map_err(|e| LoggingError::Filter {
            filter: filter_text.clone(),
            message: e.to_string(),
        })?;
    let registry = tracing_subscriber::registry().with(filter);
    if stderr_is_journal()
        && let Ok(journald) = tracing_journald::layer()
    {
        let journald = journald
            .with_syslog_identifier("asset-catalog-server".into())
            .with_field_prefix(None);
        registry
            .with(journald)
            .try_init()
            .map_err(|e| LoggingError::AlreadySet(e.to_string()))?;
        return Ok(LogTarget::Journald);
    }
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    registry
        .with(fmt)
        .try_init()
        .map_err(|e| LoggingError::AlreadySet(e.to_string()))?;
    Ok(LogTarget::Stderr)
}

/// `$JOURNAL_STREAM` is `DEV:INODE` of the journal socket; it counts only if
/// stderr still is that socket (not redirected by a wrapper).
fn stderr_is_journal() -> bool {
    let Ok(value) = std::env::var("JOURNAL_STREAM") else {
        return false;
    };
    let Some((dev, ino)) = value.split_once(':') else {
        return false;
    };
    let (Ok(dev), Ok(ino)) = (dev.parse::<u64>(), ino.parse::<u64>()) else {
        return false;
    };
    std::fs::metadata("/proc/self/fd/2").is_ok_and(|m| m.dev() == dev && m.ino() == ino)
}
