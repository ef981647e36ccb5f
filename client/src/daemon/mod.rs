//! Wiring: `run` (the daemon: watcher + indexer + pipeline until SIGTERM,
//! `event_loop.rs`) and `scan` (one pass: index everything, upload, exit,
//! `scan.rs`). Both start the same core (`startup.rs`: state lock and
//! database, indexer thread, pipeline) and run on one actix (tokio
//! current-thread) runtime, with hashing and indexing on other threads.

mod event_loop;
mod scan;
mod startup;

use std::path::PathBuf;

use crate::config::Settings;
use crate::paths::{Paths, PathsError};
use crate::state::StateError;

pub use scan::{ScanOptions, ScanOutcome};

/// What the daemon and the scan need.
#[derive(Debug, Clone)]
pub struct Context {
    pub settings: Settings,
    pub paths: Paths,
    /// The config file in use (`None`: built-in defaults).
    pub config_file: Option<PathBuf>,
}

/// Why `run` or `scan` stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error(transparent)]
    Paths(#[from] PathsError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error("cannot set up inotify: {0}")]
    Inotify(std::io::Error),
    #[error("cannot start the indexer thread: {0}")]
    Thread(std::io::Error),
    #[error("cannot listen for signals: {0}")]
    Signal(std::io::Error),
}

/// Run the daemon until SIGTERM or SIGINT.
pub fn run_daemon(ctx: Context) -> Result<(), DaemonError> {
    actix_rt::System::new().block_on(event_loop::run(ctx))
}

/// Index everything once, upload, and exit.
pub fn run_scan(ctx: Context, opts: ScanOptions) -> Result<ScanOutcome, DaemonError> {
    actix_rt::System::new().block_on(scan::run(ctx, opts))
}
