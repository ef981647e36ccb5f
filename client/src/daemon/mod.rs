//! Wiring: `run` (the daemon: watcher + indexer + pipeline until SIGTERM)
//! and `scan` (one pass: index everything, upload, exit). Both take the
//! state lock, open the state database and run on one actix (tokio
//! current-thread) runtime, with hashing and indexing on other threads.

mod event_loop;
mod scan;

use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use tokio::sync::mpsc::UnboundedReceiver;

use crate::config::Settings;
use crate::indexer::{IndexCmd, IndexEvent, Indexer};
use crate::paths::{Paths, PathsError};
use crate::pipeline::Control;
use crate::state::{State, StateError, StateLock};
use crate::watch::WatchRegistry;

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

/// Grace period for in-flight transfers at shutdown.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// The pieces both modes share.
struct Core {
    _lock: StateLock,
    state: Rc<State>,
    ctl: Rc<Control>,
    cmd: std::sync::mpsc::Sender<IndexCmd>,
    events: UnboundedReceiver<IndexEvent>,
    indexer: std::thread::JoinHandle<()>,
    cancel: Arc<AtomicBool>,
    rescan_pending: Arc<AtomicBool>,
}

impl Core {
    fn start(ctx: &Context, registry: Option<WatchRegistry>) -> Result<Self, DaemonError> {
        ctx.paths.ensure_state_dir()?;
        let lock = StateLock::acquire(&ctx.paths.lock_file())?;
        let db = ctx.paths.state_db();
        let state = Rc::new(State::open(&db)?);
        state.verify(&db)?;
        let requeued = state
            .retry_failed_with(&crate::error::AUTH_FAILURE_PREFIXES, crate::state::now_ms())?;
        if requeued > 0 {
            tracing::info!(
                files = requeued,
                "files refused for credentials are queued again"
            );
        }
        let ctl = Rc::new(Control::new(STOP_GRACE));
        let (ev_tx, events) = tokio::sync::mpsc::unbounded_channel();
        let (cmd, cmd_rx) = std::sync::mpsc::channel();
        let cancel = Arc::new(AtomicBool::new(false));
        let rescan_pending = Arc::new(AtomicBool::new(false));
        let indexer = Indexer {
            state: State::open(&db)?,
            roots: ctx.settings.roots.clone(),
            ignore: ctx.settings.ignore.clone(),
            registry,
            events: ev_tx,
            work: Arc::clone(&ctl.work),
            rescan_pending: Arc::clone(&rescan_pending),
            cancel: Arc::clone(&cancel),
        }
        .spawn(cmd_rx)
        .map_err(DaemonError::Thread)?;
        Ok(Self {
            _lock: lock,
            state,
            ctl,
            cmd,
            events,
            indexer,
            cancel,
            rescan_pending,
        })
    }

    /// Let the indexer finish what it was sent (not a running walk) and wait
    /// for its thread.
    async fn stop_indexer(
        cmd: std::sync::mpsc::Sender<IndexCmd>,
        handle: std::thread::JoinHandle<()>,
        cancel: &AtomicBool,
    ) {
        cancel.store(true, std::sync::atomic::Ordering::SeqCst);
        drop(cmd);
        let joined = tokio::task::spawn_blocking(move || handle.join());
        if tokio::time::timeout(Duration::from_secs(30), joined)
            .await
            .is_err()
        {
            tracing::warn!("the indexer did not stop in time");
        }
    }
}

/// Run the daemon until SIGTERM or SIGINT.
pub fn run_daemon(ctx: Context) -> Result<(), DaemonError> {
    actix_rt::System::new().block_on(event_loop::run(ctx))
}

/// Index everything once, upload, and exit.
pub fn run_scan(ctx: Context, opts: ScanOptions) -> Result<ScanOutcome, DaemonError> {
    actix_rt::System::new().block_on(scan::run(ctx, opts))
}
