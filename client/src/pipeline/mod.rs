//! The upload pipeline: takes due jobs from the persistent queue (a bounded
//! window of them at a time, so memory stays flat whatever the backlog),
//! runs each as its own task (hash → check → sighting or upload, see
//! `job.rs`; large files resumably, `resume.rs`), and records how each ended. Slow or failing files never hold
//! up the others; retries wait in the database, not in memory.

mod check;
mod hold;
mod job;
mod outage;
mod resume;

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::{Notify, Semaphore, mpsc, watch};
use tokio::time::Instant;

use crate::api::ApiClient;
use crate::backoff::Backoff;
use crate::config::Settings;
use crate::hasher::Hasher;
use crate::state::{JobUpdate, State, StateError, counters, now_ms};
use check::Checker;
use job::{JobDone, Worker};

/// Tuning of the pipeline.
#[derive(Debug, Clone)]
pub struct PipelineSettings {
    /// Most jobs in progress at once.
    pub window: usize,
    /// Most hashes per check request.
    pub check_batch: usize,
    pub backoff: Backoff,
}

impl Default for PipelineSettings {
    fn default() -> Self {
        Self {
            window: 1024,
            check_batch: 2000,
            backoff: Backoff::default(),
        }
    }
}

/// Live counters of this process (persisted to the state database by
/// the pipeline every few seconds).
#[derive(Debug, Default)]
pub struct Counters {
    pub bytes_hashed: Arc<AtomicU64>,
    pub bytes_sent: Arc<AtomicU64>,
    pub uploads: AtomicU64,
    pub sightings: AtomicU64,
    pub synced: AtomicU64,
    pub failed: AtomicU64,
    pub retried: AtomicU64,
    /// The latest server-wide error (unreachable, refused token, 5xx).
    pub last_error: RefCell<Option<String>>,
}

/// How the pipeline decides it is finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Runs until stopped.
    Daemon,
    /// Runs until the scan is done and the queue holds nothing it can
    /// still do in this run: a file that failed `retries` times with a
    /// retryable error is left queued for later.
    Drain { retries: u32 },
}

/// Signals into a running pipeline.
#[derive(Debug)]
pub struct Control {
    /// Notified (from any thread) when new work was queued.
    pub work: Arc<Notify>,
    /// Set to true to stop; in-flight jobs get `grace` to finish.
    pub stop: watch::Sender<bool>,
    /// In drain mode: set when no more work will be queued.
    pub scan_done: Cell<bool>,
    pub grace: Duration,
}

impl Control {
    pub fn new(grace: Duration) -> Self {
        Self {
            work: Arc::new(Notify::new()),
            stop: watch::channel(false).0,
            scan_done: Cell::new(false),
            grace,
        }
    }
}

/// What a drained pipeline leaves behind.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// Files still queued because of retryable errors in this run, or
    /// held back by the server for longer than a scan waits.
    pub deferred: usize,
    /// The last retryable error seen, to explain `deferred`.
    pub last_error: Option<String>,
}

/// The pipeline over one state database and one server.
#[derive(Debug)]
pub struct Pipeline {
    worker: Rc<Worker>,
    mode: Mode,
    window: usize,
}

impl Pipeline {
    /// Must be called inside the actix local runtime (it starts the check
    /// batcher task).
    pub fn new(
        state: Rc<State>,
        settings: &Settings,
        counters: Rc<Counters>,
        tuning: PipelineSettings,
        mode: Mode,
    ) -> Self {
        let api = ApiClient::new(settings, Arc::clone(&counters.bytes_sent));
        let checker = Checker::spawn(api.clone(), tuning.check_batch);
        let worker = Worker {
            state,
            api,
            hasher: Hasher::new(settings.hash_workers, Arc::clone(&counters.bytes_hashed)),
            checker,
            roots: settings.roots.clone(),
            upload_permits: Semaphore::new(settings.upload_concurrency),
            small_permits: Semaphore::new(settings.small_upload_concurrency),
            sighting_permits: Semaphore::new(settings.upload_concurrency * 2),
            hash_locks: RefCell::new(HashMap::new()),
            outage: outage::Outage::default(),
            holds: hold::Holds::default(),
            counters,
            settings: tuning.clone(),
            resumable_from: settings.resumable_threshold,
        };
        // What an earlier run met is not known to hold now.
        worker.holds.save(&worker.state);
        Self {
            worker: Rc::new(worker),
            mode,
            window: tuning.window.max(2),
        }
    }

    /// Work until stopped (daemon) or drained (scan).
    pub async fn run(self, ctl: &Control) -> Result<Summary, StateError> {
        let (done_tx, mut done_rx) = mpsc::unbounded_channel::<JobDone>();
        let mut sched = Scheduler::default();
        let mut stop_rx = ctl.stop.subscribe();
        let mut flusher = Flusher::default();
        let mut flush_tick = tokio::time::interval(Duration::from_secs(2));
        let mut wake_at: Option<Instant> = None;
        let mut grace_end: Option<Instant> = None;
        let mut need_refill = true;
        loop {
            if need_refill && grace_end.is_none() && sched.in_flight <= self.window / 2 {
                need_refill = false;
                wake_at = self.refill(&mut sched, &done_tx)?;
            }
            if grace_end.is_some() && sched.in_flight == 0 {
                break;
            }
            if self.drained(ctl, &sched)? {
                break;
            }
            let far = Instant::now() + Duration::from_secs(3600);
            tokio::select! {
                Some(done) = done_rx.recv() => {
                    let mut ended = vec![done];
                    while let Ok(more) = done_rx.try_recv() {
                        ended.push(more);
                    }
                    self.record(&ended);
                    for done in ended {
                        sched.finish(done, self.mode, &self.worker.counters, now_ms());
                    }
                    need_refill = true;
                }
                () = ctl.work.notified() => need_refill = true,
                () = tokio::time::sleep_until(wake_at.unwrap_or(far)), if wake_at.is_some() => {
                    wake_at = None;
                    need_refill = true;
                }
                _ = flush_tick.tick() => flusher.flush(&self.worker.state, &self.worker.counters)?,
                r = stop_rx.changed(), if grace_end.is_none() => {
                    if r.is_err() || *stop_rx.borrow() {
                        tracing::info!(in_flight = sched.in_flight, "pipeline stopping");
                        grace_end = Some(Instant::now() + ctl.grace);
                    }
                }
                () = tokio::time::sleep_until(grace_end.unwrap_or(far)), if grace_end.is_some() => {
                    tracing::info!(in_flight = sched.in_flight, "stopping with transfers unfinished; they stay queued");
                    break;
                }
            }
        }
        // Jobs that ended while the loop was stopping.
        let mut ended = Vec::new();
        while let Ok(done) = done_rx.try_recv() {
            ended.push(done);
        }
        self.record(&ended);
        flusher.flush(&self.worker.state, &self.worker.counters)?;
        Ok(Summary {
            deferred: sched.deferred.len(),
            last_error: sched.last_error,
        })
    }

    /// Record the ends of jobs that finished together, in one transaction,
    /// before their ids leave the scheduler's skip set (so that a refill
    /// cannot fetch a finished job again).
    fn record(&self, ended: &[JobDone]) {
        if ended.is_empty() {
            return;
        }
        let rows = ended
            .iter()
            .filter_map(|d| d.record.map(|version| (d.id, version, &d.update)));
        if let Err(e) = self.worker.state.finish_jobs(rows, now_ms()) {
            tracing::error!(error = %e, jobs = ended.len(), "cannot record the end of finished jobs; they stay queued");
        }
    }

    /// Start due jobs up to the window; returns when to look again if
    /// nothing more is due now.
    fn refill(
        &self,
        sched: &mut Scheduler,
        done_tx: &mpsc::UnboundedSender<JobDone>,
    ) -> Result<Option<Instant>, StateError> {
        let want = self.window - sched.in_flight;
        // One clock reading for both questions: with two, a job that came
        // due between them was neither taken nor waited for, and with
        // nothing in flight the pipeline slept until new work arrived.
        let now = now_ms();
        let jobs = self.worker.state.due_jobs(now, want, &sched.skip)?;
        let got = jobs.len();
        for job in jobs {
            sched.skip.insert(job.id);
            sched.in_flight += 1;
            let worker = Rc::clone(&self.worker);
            let tx = done_tx.clone();
            actix_rt::spawn(async move {
                let done = worker.process(job).await;
                let _ = tx.send(done);
            });
        }
        if got == want {
            return Ok(None);
        }
        let Some(next) = self.worker.state.next_due_after(now)? else {
            return Ok(None);
        };
        let wait = u64::try_from(next.saturating_sub(now)).unwrap_or(1).max(1);
        Ok(Some(
            Instant::now() + Duration::from_millis(wait.min(60_000)),
        ))
    }

    fn drained(&self, ctl: &Control, sched: &Scheduler) -> Result<bool, StateError> {
        if self.mode == Mode::Daemon || !ctl.scan_done.get() || sched.in_flight > 0 {
            return Ok(false);
        }
        Ok(self
            .worker
            .state
            .due_jobs(i64::MAX, 1, &sched.skip)?
            .is_empty())
    }
}

/// Book-keeping of the jobs in progress.
#[derive(Debug, Default)]
struct Scheduler {
    in_flight: usize,
    /// In-flight and deferred job ids: not to be fetched again.
    skip: HashSet<i64>,
    deferred: HashSet<i64>,
    run_attempts: HashMap<i64, u32>,
    last_error: Option<String>,
}

/// A scan waits this long at most for a file the server holds back.
const SCAN_WAITS_FOR_HOLD_MS: i64 = 60_000;

impl Scheduler {
    fn finish(&mut self, done: JobDone, mode: Mode, counters: &Counters, now: i64) {
        self.in_flight -= 1;
        self.skip.remove(&done.id);
        match &done.update {
            JobUpdate::Synced => {
                counters.synced.fetch_add(1, Ordering::Relaxed);
            }
            JobUpdate::Failed { .. } => {
                counters.failed.fetch_add(1, Ordering::Relaxed);
            }
            JobUpdate::Retry {
                error, next_try_ms, ..
            } => {
                counters.retried.fetch_add(1, Ordering::Relaxed);
                self.last_error = Some(error.clone());
                let Mode::Drain { retries } = mode else {
                    return;
                };
                // A hold is not the file's failure: it does not use up the
                // file's retries, but a scan does not wait for a long one.
                let give_up = if done.held {
                    next_try_ms.saturating_sub(now) > SCAN_WAITS_FOR_HOLD_MS
                } else {
                    let n = self.run_attempts.entry(done.id).or_default();
                    *n += 1;
                    *n >= retries
                };
                if give_up {
                    self.deferred.insert(done.id);
                    self.skip.insert(done.id);
                }
            }
            JobUpdate::Rehash | JobUpdate::Drop => {}
        }
    }
}

/// Moves the live counters into the database's lifetime counters.
#[derive(Debug, Default)]
struct Flusher {
    done: [u64; 4],
}

impl Flusher {
    fn flush(&mut self, state: &State, c: &Counters) -> Result<(), StateError> {
        let now = [
            c.bytes_hashed.load(Ordering::Relaxed),
            c.bytes_sent.load(Ordering::Relaxed),
            c.uploads.load(Ordering::Relaxed),
            c.sightings.load(Ordering::Relaxed),
        ];
        let keys = [
            counters::BYTES_HASHED,
            counters::BYTES_SENT,
            counters::UPLOADS,
            counters::SIGHTINGS,
        ];
        if now == self.done {
            return Ok(());
        }
        state.in_transaction(|s| {
            for i in 0..4 {
                s.add_counter(keys[i], now[i] - self.done[i])?;
            }
            Ok(())
        })?;
        self.done = now;
        Ok(())
    }
}
