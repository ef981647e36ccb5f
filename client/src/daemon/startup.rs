//! The one place that starts what `run` and `scan` share: the state lock
//! and database (its headers checked, with files refused for credentials queued again),
//! the indexer thread with its channels, and the pipeline (its own API
//! client, hasher and counters) as a task on the current runtime. Each mode
//! then adds its own driver: the event loop, or the one-pass scan.

use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::sync::mpsc::UnboundedReceiver;

use super::{Context, DaemonError};
use crate::indexer::{IndexCmd, IndexEvent, Indexer};
use crate::pipeline::{Control, Counters, Mode, Pipeline, PipelineSettings, Summary};
use crate::state::{State, StateError, StateLock};
use crate::watch::WatchRegistry;

/// Grace period for in-flight transfers at shutdown.
const STOP_GRACE: Duration = Duration::from_secs(5);
/// How long a stop waits for the indexer thread.
const INDEXER_STOP: Duration = Duration::from_secs(30);

/// The pipeline task's result.
pub(super) type PipelineTask = actix_rt::task::JoinHandle<Result<Summary, StateError>>;

/// The running pieces both modes share.
pub(super) struct Core {
    _lock: StateLock,
    pub(super) state: Rc<State>,
    pub(super) ctl: Rc<Control>,
    pub(super) counters: Rc<Counters>,
    pub(super) indexer: IndexerLink,
    pub(super) pipeline: PipelineTask,
}

/// The indexer thread and the channels to and from it.
pub(super) struct IndexerLink {
    cmd: Sender<IndexCmd>,
    pub(super) events: UnboundedReceiver<IndexEvent>,
    /// Set while a full rescan is asked for and not yet started.
    pub(super) rescan_pending: Arc<AtomicBool>,
    cancel: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Core {
    /// Take the state lock, open and check the state database, start the
    /// indexer (watching through `registry` when there is one) and the
    /// pipeline in `mode`. Must be called inside the actix runtime.
    pub(super) fn start(
        ctx: &Context,
        registry: Option<WatchRegistry>,
        mode: Mode,
    ) -> Result<Self, DaemonError> {
        ctx.paths.ensure_state_dir()?;
        let lock = StateLock::acquire(&ctx.paths.lock_file())?;
        let db = ctx.paths.state_db();
        let state = Rc::new(State::open_checked(&db)?);
        let requeued = state
            .retry_failed_with(&crate::error::AUTH_FAILURE_PREFIXES, crate::state::now_ms())?;
        if requeued > 0 {
            tracing::info!(
                files = requeued,
                "files refused for credentials are queued again"
            );
        }
        let ctl = Rc::new(Control::new(STOP_GRACE));
        let indexer = IndexerLink::spawn(ctx, State::open(&db)?, registry, &ctl)?;
        let counters = Rc::new(Counters::default());
        let pipeline = Pipeline::new(
            Rc::clone(&state),
            &ctx.settings,
            Rc::clone(&counters),
            PipelineSettings::default(),
            mode,
        );
        let task_ctl = Rc::clone(&ctl);
        let pipeline = actix_rt::spawn(async move { pipeline.run(&task_ctl).await });
        Ok(Self {
            _lock: lock,
            state,
            ctl,
            counters,
            indexer,
            pipeline,
        })
    }
}

impl IndexerLink {
    fn spawn(
        ctx: &Context,
        state: State,
        registry: Option<WatchRegistry>,
        ctl: &Control,
    ) -> Result<Self, DaemonError> {
        let (ev_tx, events) = tokio::sync::mpsc::unbounded_channel();
        let (cmd, cmd_rx) = std::sync::mpsc::channel();
        let cancel = Arc::new(AtomicBool::new(false));
        let rescan_pending = Arc::new(AtomicBool::new(false));
        let thread = Indexer {
            state,
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
            cmd,
            events,
            rescan_pending,
            cancel,
            thread: Some(thread),
        })
    }

    /// Hand the indexer a command; an indexer that is gone is logged.
    pub(super) fn send(&self, cmd: IndexCmd) {
        if self.cmd.send(cmd).is_err() {
            tracing::error!("the indexer is gone");
        }
    }

    /// Let the indexer finish what it was sent (not a running walk) and wait
    /// for its thread. Commands sent after this go nowhere.
    pub(super) async fn stop(&mut self) {
        self.cancel.store(true, Ordering::SeqCst);
        self.cmd = std::sync::mpsc::channel().0;
        let Some(handle) = self.thread.take() else {
            return;
        };
        let joined = tokio::task::spawn_blocking(move || handle.join());
        if tokio::time::timeout(INDEXER_STOP, joined).await.is_err() {
            tracing::warn!("the indexer did not stop in time");
        }
    }
}
